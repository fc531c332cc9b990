-- 0001_core: the core schema (DESIGN.md).
--
-- Conventions: every timestamp is timestamptz (UTC); enumerations are text with a CHECK
-- (a new value is one ALTER ... CHECK in a later migration, no enum type to migrate);
-- internal keys are bigint identities that never leave the server (citizens see tracking
-- numbers, staff see usernames). Append-only: never edit this file once applied; add
-- 0002_*.sql instead.

-- Sets updated_at on every UPDATE, so no code path can forget it.
CREATE FUNCTION rabta_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- For tables that are history: rows are added, never changed or removed.
CREATE FUNCTION rabta_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

-- People who contact the state. A phone (E.164) or an email identifies them.
CREATE TABLE citizens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone         text UNIQUE CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    email         text CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    name          text CHECK (length(name) <= 200),
    language      text NOT NULL DEFAULT 'ur' CHECK (language IN ('ur', 'en')),
    verified_at   timestamptz,          -- phone/email proven by OTP
    opted_out_at  timestamptz,          -- no more outreach calls or SMS
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (phone IS NOT NULL OR email IS NOT NULL)
);
-- Emails are unique regardless of case.
CREATE UNIQUE INDEX citizens_email_key ON citizens (lower(email)) WHERE email IS NOT NULL;

-- Complaints, feedback and information requests.
CREATE TABLE cases (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tracking_no     text NOT NULL UNIQUE CHECK (tracking_no ~ '^[0-9A-Z-]{4,32}$'),
    kind            text NOT NULL CHECK (kind IN ('complaint', 'feedback', 'information')),
    status          text NOT NULL DEFAULT 'submitted' CHECK (status IN (
                        'submitted', 'routed', 'acknowledged', 'in_progress',
                        'awaiting_citizen', 'resolved', 'closed', 'rejected',
                        'transferred', 'reopened', 'answered')),
    citizen_id      bigint REFERENCES citizens (id) ON DELETE SET NULL,
    channel         text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]{0,31}$'), -- app, sms, ivr, web, ...
    service_id      text,               -- config/services/<id>.yaml
    department_id   text,               -- config/departments/<id>.yaml; NULL until routed
    category        text,
    priority        int NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5), -- 1 most urgent
    sla_policy      text,
    district_id     text,
    text            text NOT NULL DEFAULT '' CHECK (length(text) <= 20000),
    language        text NOT NULL DEFAULT 'ur' CHECK (language ~ '^[a-z]{2,3}$'),
    lat             double precision CHECK (lat BETWEEN -90 AND 90),
    long            double precision CHECK (long BETWEEN -180 AND 180),
    anonymous       boolean NOT NULL DEFAULT false,
    share_contact   boolean NOT NULL DEFAULT false, -- citizen agreed to show the department their phone
    names_official  text,               -- the official the complaint is about: never routed to them
    rating          smallint CHECK (rating BETWEEN 1 AND 5),
    escalation_level smallint NOT NULL DEFAULT 0 CHECK (escalation_level >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    ack_due_at      timestamptz,
    resolve_due_at  timestamptz,
    acknowledged_at timestamptz,
    resolved_at     timestamptz,
    closed_at       timestamptz,
    CHECK ((lat IS NULL) = (long IS NULL))
);
CREATE INDEX cases_department_status_due ON cases (department_id, status, resolve_due_at);
CREATE INDEX cases_citizen ON cases (citizen_id);
CREATE INDEX cases_created ON cases (created_at);
CREATE TRIGGER cases_touch BEFORE UPDATE ON cases
    FOR EACH ROW EXECUTE FUNCTION rabta_touch_updated_at();

-- Everything that happened to a case, in order. Append-only.
CREATE TABLE case_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      bigint NOT NULL REFERENCES cases (id),
    at           timestamptz NOT NULL DEFAULT now(),
    actor_type   text NOT NULL CHECK (actor_type IN ('citizen', 'staff', 'system', 'department')),
    actor_id     text,                  -- staff username, plugin name, ...
    event        text NOT NULL CHECK (event ~ '^[a-z][a-z0-9_.]{0,63}$'), -- created, routed, status, note, ...
    from_status  text,
    to_status    text,
    note         text,
    data         jsonb
);
CREATE INDEX case_events_case ON case_events (case_id, id);
CREATE TRIGGER case_events_append_only BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION rabta_append_only();

-- The one queue for all deferred work (DESIGN.md "Decisions"). Claimed with
-- FOR UPDATE SKIP LOCKED; a dedup_key keeps one pending job per key.
CREATE TABLE jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,63}$'), -- sla.check, message.send, ...
    payload       jsonb NOT NULL DEFAULT '{}',
    run_at        timestamptz NOT NULL DEFAULT now(),
    state         text NOT NULL DEFAULT 'queued' CHECK (state IN (
                      'queued', 'running', 'done', 'failed', 'dead', 'cancelled')),
    attempts      int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts  int NOT NULL DEFAULT 10 CHECK (max_attempts >= 1),
    dedup_key     text,
    last_error    text,
    locked_by     text,                 -- "<host>:<pid>" of the worker running it
    locked_at     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- (NULL keys never collide. The predicate is what ON CONFLICT (dedup_key) WHERE state IN
-- ('queued', 'running') can prove, so core/jobs.c's insert finds this index.)
CREATE UNIQUE INDEX jobs_dedup ON jobs (dedup_key) WHERE state NOT IN ('done', 'cancelled');
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'queued';
CREATE INDEX jobs_running ON jobs (locked_at) WHERE state = 'running';
CREATE TRIGGER jobs_touch BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION rabta_touch_updated_at();

-- Every message to a citizen or a department, whatever carried it.
CREATE TABLE messages (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id       bigint REFERENCES cases (id),
    citizen_id    bigint REFERENCES citizens (id) ON DELETE SET NULL,
    channel       text NOT NULL CHECK (channel IN ('sms', 'call', 'webhook', 'inbox')),
    to_address    text NOT NULL,        -- E.164 phone, URL, department id
    body          text NOT NULL DEFAULT '',
    template      text,                 -- lua/templates name it was rendered from
    language      text CHECK (language IN ('ur', 'en')),
    status        text NOT NULL DEFAULT 'queued' CHECK (status IN (
                      'queued', 'sent', 'delivered', 'failed')),
    gateway_ref   text,                 -- the gateway's id, to match delivery reports
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    delivered_at  timestamptz,
    last_error    text
);
CREATE INDEX messages_case ON messages (case_id) WHERE case_id IS NOT NULL;
CREATE INDEX messages_citizen ON messages (citizen_id) WHERE citizen_id IS NOT NULL;
CREATE INDEX messages_gateway_ref ON messages (channel, gateway_ref) WHERE gateway_ref IS NOT NULL;

-- People who work cases: department officers, supervisors, oversight, administrators.
CREATE TABLE staff (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9._@-]{1,64}$'),
    display_name   text NOT NULL DEFAULT '',
    password_hash  text,                -- argon2id string (libsodium crypto_pwhash_str); NULL: cannot log in
    role           text NOT NULL CHECK (role IN ('officer', 'supervisor', 'oversight', 'admin')),
    department_id  text,                -- officers and supervisors: their department
    districts      text[] NOT NULL DEFAULT '{}', -- empty: all districts of the department
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    failed_logins  int NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until   timestamptz
);
CREATE INDEX staff_department ON staff (department_id);

-- Session tokens: only their SHA-256 is stored.
CREATE TABLE staff_tokens (
    token_hash  bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    staff_id    bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX staff_tokens_staff ON staff_tokens (staff_id);
