-- 0006_sla: deadlines that fire exactly once, and the clock that pauses while a case waits
-- for the citizen.

-- Every SLA event processed for a case, once: the primary key is what makes a deadline fire
-- once and only once, however many rabtad processes run its job (DESIGN.md: "a uniqueness
-- constraint backs it, not luck").
CREATE TABLE sla_firings (
    case_id     bigint NOT NULL REFERENCES cases (id),
    check_kind  text NOT NULL CHECK (check_kind IN ('ack', 'warn', 'resolve')),
    level       smallint NOT NULL CHECK (level >= 0),
    due         timestamptz NOT NULL,
    breached    boolean NOT NULL,
    fired_at    timestamptz NOT NULL DEFAULT now(),
    lateness    interval,                 -- fired_at - due: how late the timer was
    PRIMARY KEY (case_id, check_kind, level, due)
);
CREATE INDEX sla_firings_fired ON sla_firings (fired_at);

ALTER TABLE cases ADD COLUMN paused_at timestamptz;   -- set while awaiting the citizen
ALTER TABLE cases ADD COLUMN flagged_oversight_at timestamptz;

-- The SLA clock stops when a case starts waiting for the citizen and resumes when it stops
-- waiting, whatever code path changed the status: a row trigger records the pause and, on
-- resume, queues an sla.resume job that moves the deadlines by the business time that was
-- left (core/sla_engine.c).
CREATE FUNCTION rabta_sla_pause() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'awaiting_citizen' AND OLD.status <> 'awaiting_citizen' THEN
        NEW.paused_at := now();
    ELSIF OLD.status = 'awaiting_citizen' AND NEW.status <> 'awaiting_citizen'
          AND OLD.paused_at IS NOT NULL THEN
        INSERT INTO jobs (kind, payload, dedup_key)
        VALUES ('sla.resume',
                jsonb_build_object('case_id', NEW.id,
                                   'paused_at', extract(epoch FROM OLD.paused_at),
                                   'resumed_at', extract(epoch FROM now())),
                'sla-resume:' || NEW.id || ':' || extract(epoch FROM OLD.paused_at));
        NEW.paused_at := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER cases_sla_pause BEFORE UPDATE OF status ON cases
    FOR EACH ROW EXECUTE FUNCTION rabta_sla_pause();
