-- 0004_citizen_auth: citizens sign in to the app with a one-time code sent by SMS
-- (plugins/app/app_auth.c; the tokens it hands out live in citizen_tokens, 0003).

-- One-time codes. Only SHA-256(salt || code) is kept, with a random salt per code. Every
-- guess spends an attempt before it is compared; a new code for a phone sets the attempts of
-- its earlier live codes to 0. Rows a day past their expiry are deleted when the phone asks
-- for a new code.
CREATE TABLE citizen_otps (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone          text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    language       text NOT NULL DEFAULT 'ur' CHECK (language IN ('ur', 'en')),
    salt           bytea NOT NULL CHECK (length(salt) = 16),
    code_hash      bytea NOT NULL CHECK (length(code_hash) = 32),
    attempts_left  smallint NOT NULL CHECK (attempts_left >= 0),
    message_id     bigint REFERENCES messages (id), -- the SMS that carried it
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz                      -- a token was given for it
);
CREATE INDEX citizen_otps_phone ON citizen_otps (phone, id DESC);

-- Per-phone rate limit of codes: the times of the latest codes sent, oldest first, at most
-- as many as the limit per window. The row is locked by the INSERT ... ON CONFLICT DO UPDATE
-- that takes a code, so concurrent requests for one phone are counted exactly.
CREATE TABLE citizen_otp_limits (
    phone    text PRIMARY KEY CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    sent_at  timestamptz[] NOT NULL CHECK (cardinality(sent_at) >= 1)
);
