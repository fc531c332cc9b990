-- Consequences of case events. A case event (a row of case_events, written by whatever path:
-- intake, the staff API, a department's callback, the SLA engine, a citizen's rating) may
-- call for deferred work: deliver the case to its department's plugin, send the citizen a
-- notice, recompute deadlines after a transfer, climb the escalation ladder. Which work each
-- event calls for is data, one row per (event, job kind) in case_event_jobs, and ONE
-- statement-level trigger turns the events of a statement into their jobs in the same
-- transaction: the work is queued exactly when the event is committed, by every path alike,
-- and a batch of a thousand events is one INSERT into jobs.
--
-- Later migrations add their rows (INSERT INTO case_event_jobs ...); a job kind that no
-- running process handles simply waits in the queue (`rabtad jobs list` shows it).
CREATE TABLE case_event_jobs (
    event       text NOT NULL CHECK (event ~ '^[a-z][a-z0-9_.]{0,63}$'),
    kind        text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),
    -- only events whose to_status is this one (NULL: any)
    to_status   text,
    PRIMARY KEY (event, kind)
);

-- The job's payload: {"case_id", "event_id", "event"}; handlers read the rest from the event.
CREATE FUNCTION rabta_case_event_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO jobs (kind, payload)
    SELECT k.kind, jsonb_build_object('case_id', n.case_id, 'event_id', n.id, 'event', n.event)
    FROM new_events n JOIN case_event_jobs k ON k.event = n.event
    WHERE k.to_status IS NULL OR k.to_status = n.to_status
    ORDER BY n.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER case_events_jobs AFTER INSERT ON case_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION rabta_case_event_jobs();
