-- 0003_intake: what intake needs besides the core tables.

-- A retried submission (same scope and Idempotency-Key) gets the first answer; the same key
-- with a different request is refused. Written in the same transaction as the case.
CREATE TABLE idempotency_keys (
    scope         text NOT NULL CHECK (length(scope) <= 100),  -- "citizen:42", "apikey:7", ...
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash  text NOT NULL CHECK (request_hash ~ '^[0-9a-f]{64}$'),
    case_id       bigint NOT NULL REFERENCES cases (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Public status look-ups go by tracking number (already unique); staff and citizens list a
-- citizen's cases newest first.
CREATE INDEX cases_citizen_created ON cases (citizen_id, created_at DESC);
DROP INDEX cases_citizen;

-- Citizens' app sessions: a random token given after the one-time code is verified; only its
-- SHA-256 is stored.
CREATE TABLE citizen_tokens (
    token_hash    bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    citizen_id    bigint NOT NULL REFERENCES citizens (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX citizen_tokens_citizen ON citizen_tokens (citizen_id);
