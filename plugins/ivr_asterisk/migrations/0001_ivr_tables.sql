-- 0001_ivr_tables: the outbound calls of the IVR plugin (docs/ivr.md, "Outbound calls").
-- A call is a message of channel "call" (core's messages table, rabta_message_queue); the
-- plugin is its sender and keeps here what a message row cannot: the dials and the answers.

-- One call message being placed: the script it runs, its dials so far and, once final, the
-- last dial's outcome and the keypad answers.
CREATE TABLE ivr_calls (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  bigint NOT NULL UNIQUE,        -- the call message (messages.id): one call each
    script      text NOT NULL,
    phone       text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    language    text NOT NULL CHECK (language IN ('ur', 'en')),
    trunk       text NOT NULL,
    state       text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'failed')),
    attempts    int NOT NULL DEFAULT 0,        -- dials so far
    outcome     text,                          -- the last dial's
    answers     jsonb NOT NULL DEFAULT '{}',   -- question step -> key pressed
    reply_kind  text,                          -- the job kind told the result, or NULL
    ref         jsonb,                         -- the queuer's own reference, handed back
    replied_at  timestamptz,                   -- when the reply job was queued
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One dial of a call: Asterisk's outcome and cause.
CREATE TABLE ivr_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id      bigint NOT NULL REFERENCES ivr_calls (id),
    n            int NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz,
    outcome      text CHECK (outcome IN ('completed', 'hung_up_early', 'busy', 'no_answer',
                                         'congestion', 'failed', 'machine', 'unknown')),
    reason       int,                          -- OriginateResponse Reason
    cause        int,                          -- Hangup Cause (Q.850)
    amd          text,                         -- AMDSTATUS when the dialplan ran AMD()
    uniqueid     text,
    UNIQUE (call_id, n)
);
