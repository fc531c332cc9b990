-- 0013_sla_events: the SLA engine reacts to case events, and every API shows the deadline.
--
-- A citizen's "unsatisfied" rating (event escalation.requested, written by the app plugin)
-- performs the next escalation level's actions once: job sla.citizen, and its firing is a row
-- of sla_firings like any other (check_kind 'citizen', keyed on the request's time).
-- A transfer (event transfer, written by the staff API) recomputes the case's deadlines under
-- the new department's policy from the transfer's time: job sla.transfer (core/sla_engine.c).
ALTER TABLE sla_firings DROP CONSTRAINT sla_firings_check_kind_check;
ALTER TABLE sla_firings ADD CONSTRAINT sla_firings_check_kind_check
    CHECK (check_kind IN ('ack', 'warn', 'resolve', 'citizen'));

INSERT INTO case_event_jobs (event, kind) VALUES
    ('escalation.requested', 'sla.citizen'),
    ('transfer', 'sla.transfer');

-- A transfer replaces the case's pending sla.check job: find it by case without a scan.
CREATE INDEX jobs_sla_case ON jobs (((payload->>'case_id')::bigint))
    WHERE kind = 'sla.check' AND state = 'queued';

-- What every API shows of a case's SLA, in one place (docs/api.md, "Deadline and time
-- left"): the resolution deadline; the seconds left until it (negative when overdue; frozen at
-- what was left while the case waits for the citizen; null once the case is closed); and
-- whether the clock is paused.
CREATE FUNCTION rabta_sla_view(status text, resolve_due_at timestamptz, paused_at timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'deadline', to_char(resolve_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'time_left', CASE WHEN resolve_due_at IS NULL
                            OR status IN ('resolved', 'closed', 'rejected', 'answered') THEN NULL
                          ELSE floor(extract(epoch FROM resolve_due_at
                                               - coalesce(paused_at, now())))::bigint END,
        'paused', paused_at IS NOT NULL AND status = 'awaiting_citizen')
$$;

-- Each process counts the dead jobs every few seconds for /metrics (core/jobs.c); without an
-- index that was a scan of the whole queue (~300 ms with 1,000,000 open cases' jobs). Dead
-- jobs are few, so this index is small.
CREATE INDEX jobs_dead ON jobs (id) WHERE state = 'dead';
