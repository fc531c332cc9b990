-- 0040_ivr: the IVR channel on Asterisk (plugin ivr_asterisk, docs/ivr.md). These tables
-- belong to the plugin; they move to plugins/ivr_asterisk/migrations/ once plugins carry
-- their own migrations.

-- A voice complaint keeps its recording as the case's attachment (intake checks the bytes).
ALTER TABLE case_attachments DROP CONSTRAINT case_attachments_content_type_check;
ALTER TABLE case_attachments ADD CONSTRAINT case_attachments_content_type_check
    CHECK (content_type IN ('image/jpeg', 'image/png', 'audio/wav'));

-- The schema contract for "status by phone": a citizen's latest cases by their E.164 phone.
CREATE FUNCTION rabta_cases_by_phone(p_phone text, p_limit int)
RETURNS TABLE (tracking_no text, kind text, status text, created_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.tracking_no, c.kind, c.status, c.created_at
    FROM citizens z JOIN cases c ON c.citizen_id = z.id
    WHERE z.phone = p_phone
    ORDER BY c.created_at DESC, c.id DESC
    LIMIT greatest(p_limit, 0)
$$;

-- One outbound call someone queued (a job "ivr.call"): the script it runs, its attempts so
-- far and, once done, its outcome and the keypad answers.
CREATE TABLE ivr_calls (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      bigint NOT NULL UNIQUE,        -- the job that asked for it (one call a job)
    script      text NOT NULL,
    phone       text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    language    text NOT NULL CHECK (language IN ('ur', 'en')),
    trunk       text NOT NULL,
    state       text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'failed')),
    attempts    int NOT NULL DEFAULT 0,
    outcome     text,                          -- the last attempt's, when state is final
    answers     jsonb NOT NULL DEFAULT '{}',   -- question id -> key pressed
    reply_kind  text,                          -- a job kind told the result, or NULL
    ref         jsonb,                         -- the queuer's own reference, handed back
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
