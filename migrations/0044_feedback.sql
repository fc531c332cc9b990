-- 0044_feedback: proactive feedback (CFMP, docs/feedback.md). Offices and their officials,
-- the public-service transactions offices record, the outreach that asks each citizen how it
-- went (one 'outreach.step' job at a time per transaction), every attempt with its AAPOR
-- disposition, and the roll-ups the evidence reports read.

-- An office that delivers public services: a district's licensing centre, a police station.
-- supervisor: the staff username its negative feedback goes to (never the official concerned).
CREATE TABLE offices (
    id             text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name_en        text NOT NULL CHECK (length(name_en) BETWEEN 1 AND 200),
    name_ur        text NOT NULL DEFAULT '' CHECK (length(name_ur) <= 200),
    department_id  text NOT NULL CHECK (length(department_id) BETWEEN 1 AND 64),
    district_id    text NOT NULL CHECK (length(district_id) BETWEEN 1 AND 64),
    services       text[] NOT NULL DEFAULT '{}',
    supervisor     text CHECK (supervisor ~ '^[A-Za-z0-9._@-]{1,64}$'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER offices_touch BEFORE UPDATE ON offices
    FOR EACH ROW EXECUTE FUNCTION rabta_touch_updated_at();

-- The people in an office who deliver a service and answer for it.
CREATE TABLE officials (
    id           text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    designation  text NOT NULL DEFAULT '' CHECK (length(designation) <= 200),
    office_id    text NOT NULL REFERENCES offices (id),
    phone        text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX officials_office ON officials (office_id);
CREATE TRIGGER officials_touch BEFORE UPDATE ON officials
    FOR EACH ROW EXECUTE FUNCTION rabta_touch_updated_at();

-- An office's API key (POST /api/v1/transactions): the key submits for that office only.
ALTER TABLE api_keys ADD COLUMN office_id text REFERENCES offices (id);
-- Office staff: a staff member of an office may submit its transactions with their token.
ALTER TABLE staff ADD COLUMN office_id text REFERENCES offices (id);
-- Agents call citizens of the random sample (GET /api/v1/staff/agent/next).
ALTER TABLE staff DROP CONSTRAINT staff_role_check;
ALTER TABLE staff ADD CONSTRAINT staff_role_check
    CHECK (role IN ('officer', 'supervisor', 'oversight', 'admin', 'agent'));

-- An SMS that answered an outreach survey (plugins/sms_kannel: the host's survey_answer).
ALTER TABLE sms_mo DROP CONSTRAINT sms_mo_command_check;
ALTER TABLE sms_mo ADD CONSTRAINT sms_mo_command_check CHECK (command IN (
    'complaint', 'status', 'help', 'stop', 'start', 'rating', 'flood', 'reply', 'survey'));

-- Recorded actions against a registered official (the staff API's "actions"). Append-only
-- but for the follow-up, which is written once the action has been carried out.
CREATE TABLE official_actions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    official_id   text NOT NULL REFERENCES officials (id),
    action        text NOT NULL CHECK (action IN ('warning', 'show_cause', 'coaching',
                                                  'suspension')),
    case_id       bigint REFERENCES cases (id),
    staff_id      bigint REFERENCES staff (id),
    note          text CHECK (length(note) <= 4000),
    at            timestamptz NOT NULL DEFAULT now(),
    followed_up_at timestamptz,
    follow_up     text CHECK (length(follow_up) <= 4000)
);
CREATE INDEX official_actions_official ON official_actions (official_id, at);

-- One public service delivered to a citizen, as the office recorded it. The office's own
-- reference is unique per office: a second submission is the same transaction.
-- state: waiting (for its next outreach step), call (a call is out), sms (questions by SMS
-- await answers), agent (in the random sample, waiting for an agent), done, skipped (opted
-- out, surveyed recently, or a service without feedback).
CREATE TABLE transactions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- office_id and official_id name rows of offices and officials, checked by
    -- rabta_transactions_add (the one writer) rather than by foreign keys, which cost a
    -- third of an import's time (offices and officials are never deleted)
    office_id      text NOT NULL,
    reference      text NOT NULL CHECK (length(reference) BETWEEN 1 AND 64),
    service_id     text NOT NULL CHECK (length(service_id) BETWEEN 1 AND 64),
    official_id    text,
    citizen_name   text CHECK (length(citizen_name) <= 200),
    phone          text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'), -- NULL: none or invalid
    completed_at   timestamptz NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    language       text NOT NULL DEFAULT 'ur' CHECK (language IN ('ur', 'en')),
    state          text NOT NULL DEFAULT 'waiting' CHECK (state IN (
                       'waiting', 'call', 'sms', 'agent', 'done', 'skipped')),
    step           smallint NOT NULL DEFAULT 0 CHECK (step >= 0),
    next_at        timestamptz,            -- its first step is due then (outreach.schedule)
    sampled        boolean NOT NULL DEFAULT false, -- for a call by an agent
    agent_id       bigint REFERENCES staff (id),
    agent_at       timestamptz,
    question       text,                   -- the question awaiting an answer
    answers        jsonb NOT NULL DEFAULT '{}',
    disposition    text CHECK (disposition IN ('complete', 'partial', 'refusal',
                       'non_contact', 'unknown')),
    skipped_why    text,
    answered_by    text,                   -- channel of the answers: call, sms, agent
    sms_ref        text,                   -- the gateway's id of the last SMS answer taken
    case_id        bigint REFERENCES cases (id),
    closed_at      timestamptz,
    UNIQUE (office_id, reference)
);
CREATE INDEX transactions_phone ON transactions (phone, office_id) WHERE phone IS NOT NULL;
CREATE INDEX transactions_due ON transactions (next_at) WHERE next_at IS NOT NULL;
CREATE INDEX transactions_open_sms ON transactions (phone) WHERE state = 'sms';
CREATE INDEX transactions_agent ON transactions (id) WHERE state = 'agent';

-- Every contact attempt and how it ended (AAPOR dispositions; NULL while it is under way).
CREATE TABLE outreach_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  bigint NOT NULL REFERENCES transactions (id),
    channel         text NOT NULL CHECK (channel IN ('call', 'sms', 'agent')),
    message_id      bigint,
    staff_id        bigint REFERENCES staff (id),
    started_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    disposition     text CHECK (disposition IN ('complete', 'partial', 'refusal',
                        'non_contact', 'unknown'))
);
CREATE INDEX outreach_attempts_tx ON outreach_attempts (transaction_id);

-- The evidence, kept up to date as transactions, attempts and answers arrive: one row per
-- day (of completion, UTC), office, official ('' for none) and service. Reports sum these
-- rows, so a report over millions of transactions reads thousands of rows.
CREATE TABLE feedback_rollup (
    day            date NOT NULL,
    office_id      text NOT NULL,
    official_id    text NOT NULL DEFAULT '',
    service_id     text NOT NULL,
    transactions   bigint NOT NULL DEFAULT 0,
    invalid_phone  bigint NOT NULL DEFAULT 0,
    repeated_phone bigint NOT NULL DEFAULT 0,
    skipped        bigint NOT NULL DEFAULT 0,
    contacted_call bigint NOT NULL DEFAULT 0,
    contacted_sms  bigint NOT NULL DEFAULT 0,
    contacted_agent bigint NOT NULL DEFAULT 0,
    complete       bigint NOT NULL DEFAULT 0,
    partial        bigint NOT NULL DEFAULT 0,
    refusal        bigint NOT NULL DEFAULT 0,
    non_contact    bigint NOT NULL DEFAULT 0,
    unknown        bigint NOT NULL DEFAULT 0,
    satisfied_n    bigint NOT NULL DEFAULT 0, -- answered the satisfaction question
    dissatisfied   bigint NOT NULL DEFAULT 0,
    bribe_n        bigint NOT NULL DEFAULT 0, -- answered the bribe question
    bribe          bigint NOT NULL DEFAULT 0,
    delayed_n      bigint NOT NULL DEFAULT 0,
    delayed        bigint NOT NULL DEFAULT 0,
    cases          bigint NOT NULL DEFAULT 0,
    appreciation   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, office_id, official_id, service_id)
);

-- Adds n to one counter of the roll-up row of transaction tx. The one way code changes the
-- roll-up besides the bulk insert of transactions.
CREATE FUNCTION rabta_feedback_count(p_tx bigint, p_what text, p_n bigint DEFAULT 1)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    IF p_what NOT IN ('skipped', 'contacted_call', 'contacted_sms', 'contacted_agent',
                      'complete', 'partial', 'refusal', 'non_contact', 'unknown',
                      'satisfied_n', 'dissatisfied', 'bribe_n', 'bribe', 'delayed_n', 'delayed',
                      'cases', 'appreciation') THEN
        RAISE EXCEPTION 'rabta_feedback_count: no counter %', p_what;
    END IF;
    SELECT (completed_at AT TIME ZONE 'UTC')::date AS day, office_id,
           coalesce(official_id, '') AS official_id, service_id
      INTO t FROM transactions WHERE id = p_tx;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    EXECUTE format('INSERT INTO feedback_rollup (day, office_id, official_id, service_id, %1$I)'
                   ' VALUES ($1, $2, $3, $4, $5) ON CONFLICT (day, office_id, official_id,'
                   ' service_id) DO UPDATE SET %1$I = feedback_rollup.%1$I + $5', p_what)
        USING t.day, t.office_id, t.official_id, t.service_id, p_n;
END
$$;

-- Stores a batch of transactions (the CSV import and POST /api/v1/transactions), one array
-- element per row: checks each against the registry, keeps the good ones (the first of each
-- office + reference; a repeat is the same transaction), queues each one's first outreach
-- step and counts it in the roll-up.
-- The first steps are not a job each (a job row costs as much as the transaction itself):
-- next_at says when each is due, and the one 'outreach.schedule' job (moved earlier when a
-- new transaction is due before it) turns due transactions into 'outreach.step' jobs in
-- batches (core/outreach/outreach.c). Answers one row per input row: its line, outcome
-- ('added', 'duplicate', 'refused'), the reason of a refusal and the transaction's id.
--   p_only_office: an office's key or staff submits for that office only (NULL: any).
--   p_fb_*: the services with feedback, the delay after completion (s) and the share of
--   transactions set aside for calls by agents (config/outreach.yaml).
CREATE FUNCTION rabta_transactions_add(
    p_line int[], p_ref text[], p_office text[], p_service text[], p_official text[],
    p_name text[], p_phone text[], p_bad_phone boolean[], p_completed timestamptz[],
    p_language text[], p_only_office text,
    p_fb_service text[], p_fb_delay float8[], p_fb_sample float8[])
RETURNS TABLE (line int, outcome text, reason text, id bigint)
-- The planner cannot see how many rows the arrays hold and would join them row by row: hash
-- joins, always (a batch of 50,000 took minutes with nested loops, a second with hashes).
LANGUAGE sql SET enable_nestloop = off AS $$
WITH i AS (
    SELECT * FROM unnest(p_line, p_ref, p_office, p_service, p_official, p_name, p_phone,
                         p_bad_phone, p_completed, p_language)
        AS u(line, ref, office, service, official, name, phone, bad_phone, completed, language)),
 fb AS (SELECT * FROM unnest(p_fb_service, p_fb_delay, p_fb_sample) AS x(service, delay, sample)),
 v AS (
    SELECT i.*, CASE
        WHEN o.id IS NULL THEN format('unknown office "%s"', i.office)
        WHEN p_only_office IS NOT NULL AND i.office <> p_only_office
            THEN format('office "%s": this key submits for office "%s" only', i.office,
                        p_only_office)
        WHEN NOT (i.service = ANY (o.services))
            THEN format('office "%s" does not deliver service "%s"', i.office, i.service)
        WHEN i.official IS NOT NULL AND f.id IS NULL
            THEN format('unknown official "%s"', i.official)
        WHEN i.official IS NOT NULL AND f.office_id <> i.office
            THEN format('official "%s" is not of office "%s"', i.official, i.office)
        WHEN i.completed > now() + interval '10 minutes' THEN 'completed_at is in the future'
        END AS reason
    FROM i LEFT JOIN offices o ON o.id = i.office LEFT JOIN officials f ON f.id = i.official),
 firsts AS (
    SELECT DISTINCT ON (v.office, v.ref) v.* FROM v WHERE v.reason IS NULL
    ORDER BY v.office, v.ref, v.line),
 ins AS (
    INSERT INTO transactions (office_id, reference, service_id, official_id, citizen_name,
        phone, completed_at, language, state, sampled, disposition, skipped_why, closed_at,
        next_at)
    SELECT s.office, s.ref, s.service, s.official, s.name, s.phone, s.completed,
        coalesce(s.language, 'ur'),
        CASE WHEN fb.service IS NULL THEN 'skipped' WHEN s.phone IS NULL THEN 'done'
             ELSE 'waiting' END,
        fb.service IS NOT NULL AND s.phone IS NOT NULL AND random() < fb.sample,
        CASE WHEN fb.service IS NOT NULL AND s.phone IS NULL THEN 'unknown' END,
        CASE WHEN fb.service IS NULL THEN 'service without feedback' END,
        CASE WHEN fb.service IS NULL OR s.phone IS NULL THEN now() END,
        CASE WHEN fb.service IS NOT NULL AND s.phone IS NOT NULL
             THEN greatest(now(), s.completed + make_interval(secs => fb.delay)) END
    FROM firsts s LEFT JOIN fb ON fb.service = s.service ORDER BY s.line
    ON CONFLICT (office_id, reference) DO NOTHING
    RETURNING transactions.id, office_id, reference, service_id, official_id, phone,
        completed_at, state, next_at),
 sched AS (
    INSERT INTO jobs AS j (kind, run_at, dedup_key, max_attempts)
    SELECT 'outreach.schedule', min(next_at), 'outreach.schedule', 1000000 FROM ins
    HAVING min(next_at) IS NOT NULL
    ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running')
    DO UPDATE SET run_at = least(j.run_at, excluded.run_at) WHERE j.state = 'queued'),
 counted AS (
    SELECT ins.*, ins.phone IS NOT NULL AND (
            count(*) OVER (PARTITION BY ins.office_id, ins.phone ORDER BY ins.id) > 1
            OR EXISTS (SELECT 1 FROM transactions t WHERE t.phone = ins.phone
                       AND t.office_id = ins.office_id)) AS repeated,
        s.bad_phone
    FROM ins JOIN firsts s ON s.office = ins.office_id AND s.ref = ins.reference),
 roll AS (
    INSERT INTO feedback_rollup AS r (day, office_id, official_id, service_id, transactions,
        invalid_phone, repeated_phone, skipped, unknown)
    SELECT (completed_at AT TIME ZONE 'UTC')::date, office_id, coalesce(official_id, ''),
        service_id, count(*), count(*) FILTER (WHERE bad_phone), count(*) FILTER (WHERE repeated),
        count(*) FILTER (WHERE state = 'skipped'),
        count(*) FILTER (WHERE state = 'done')
    FROM counted GROUP BY 1, 2, 3, 4
    ON CONFLICT (day, office_id, official_id, service_id) DO UPDATE SET
        transactions = r.transactions + excluded.transactions,
        invalid_phone = r.invalid_phone + excluded.invalid_phone,
        repeated_phone = r.repeated_phone + excluded.repeated_phone,
        skipped = r.skipped + excluded.skipped,
        unknown = r.unknown + excluded.unknown)
SELECT v.line,
    CASE WHEN v.reason IS NOT NULL THEN 'refused' WHEN ins.id IS NOT NULL THEN 'added'
         ELSE 'duplicate' END,
    v.reason,
    coalesce(ins.id, (SELECT t.id FROM transactions t WHERE t.office_id = v.office
                      AND t.reference = v.ref))
FROM v LEFT JOIN firsts s ON s.line = v.line
    LEFT JOIN ins ON ins.office_id = s.office AND ins.reference = s.ref
ORDER BY v.line
$$;
