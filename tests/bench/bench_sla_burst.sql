-- bench_sla.sh: round :r of the burst: :n open cases (the oldest pre-loaded ones that no earlier
-- round took, listed in bench_burst with their round) pass their resolution deadline at the
-- same second :t (epoch). Each case's resolve deadline becomes :t and its pending sla.check job
-- becomes the event of that breach, shaped as rb_sla_event_payload writes it: escalation level
-- 1 (level 0 in the payload) due and deadline :t, the rest of the ladder (levels 2 and 3, :l1
-- and :l2 seconds after the breach) in "rest". One transaction: the jobs' NOTIFY trigger wakes
-- rabtad at COMMIT.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
BEGIN;
CREATE TABLE IF NOT EXISTS bench_burst (id bigint PRIMARY KEY, round int NOT NULL);
INSERT INTO bench_burst (id, round)
    SELECT id, :r FROM cases
    WHERE tracking_no LIKE 'SB-%'
      AND NOT EXISTS (SELECT 1 FROM bench_burst b WHERE b.id = cases.id)
    ORDER BY id LIMIT :n;
UPDATE cases c SET resolve_due_at = to_timestamp(:t),
                   ack_due_at = least(c.ack_due_at, to_timestamp(:t))
FROM bench_burst b WHERE c.id = b.id AND b.round = :r;
UPDATE jobs j SET run_at = to_timestamp(:t),
                  dedup_key = 'sla:' || b.id || ':resolve:0:' || :t,
                  payload = jsonb_build_object(
                      'case_id', b.id, 'check', 'resolve', 'level', 0, 'due', :t,
                      'deadline', :t,
                      'rest', jsonb_build_array(jsonb_build_array(2, 1, :t + :l1, :t),
                                                jsonb_build_array(2, 2, :t + :l2, :t)))
FROM bench_burst b
WHERE b.round = :r AND j.kind = 'sla.check' AND j.state = 'queued'
  AND (j.payload->>'case_id')::bigint = b.id;
COMMIT;
