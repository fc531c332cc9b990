-- bench_sla.sh: open cases numbered :lo .. :hi and, for each, the one pending sla.check job that
-- intake would have stored with it (core/intake/intake.c's insert, core/sla/sla_engine.c's
-- rb_sla_event_payload): the first event of the case's plan to run, the rest of the plan in
-- "rest" as [check, level, due, deadline] (check 0 ack, 1 warn, 2 resolve), sorted by due.
-- The calendar is always open, so business time is wall time: due = created + duration.
--
-- Variables (psql -v): lo, hi; t0 (epoch: the newest created_at); ack, res (policy seconds);
-- warn (res * warn_at[0]); l1, l2 (escalation levels 2 and 3: seconds after the breach).
-- created_at is spread over the day before t0 so that deadlines are not all the same second.
\set ON_ERROR_STOP 1
BEGIN;
WITH ins AS (
    INSERT INTO cases (tracking_no, kind, status, channel, service_id, department_id, category,
                       priority, sla_policy, district_id, text, language, anonymous,
                       created_at, updated_at, ack_due_at, resolve_due_at)
    SELECT 'SB-' || g, 'complaint', 'routed', 'web', 'domicile_certificate',
           'district_administration', 'general', 3, 'default', 'lahore',
           'pre-loaded open case number ' || g, 'en', true,
           to_timestamp(c), to_timestamp(c), to_timestamp(c + :ack), to_timestamp(c + :res)
    FROM generate_series(:lo::bigint, :hi::bigint) g, LATERAL (SELECT :t0::bigint - g % 86400 AS c) t
    RETURNING id, extract(epoch FROM created_at)::bigint AS c)
INSERT INTO jobs (kind, payload, run_at, dedup_key)
SELECT 'sla.check',
       jsonb_build_object('check', 'ack', 'level', 0, 'due', c + :ack, 'deadline', c + :ack,
                          'rest', jsonb_build_array(
                              jsonb_build_array(1, 0, c + :warn, c + :res),
                              jsonb_build_array(2, 0, c + :res, c + :res),
                              jsonb_build_array(2, 1, c + :res + :l1, c + :res),
                              jsonb_build_array(2, 2, c + :res + :l2, c + :res)))
           || jsonb_build_object('case_id', id),
       to_timestamp(c + :ack),
       'sla:' || id || ':ack:0:' || (c + :ack)
FROM ins;
COMMIT;
