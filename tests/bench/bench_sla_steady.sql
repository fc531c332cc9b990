-- bench_sla.sh: timer lateness at a steady rate. :n open cases that took no part in the burst
-- (listed in bench_steady) pass their resolution deadline spread evenly over :s seconds from
-- :t (epoch): :n / :s deadlines each second. Shaped as bench_sla_burst.sql (escalation level 1
-- due and deadline at the case's second, the rest of the ladder in "rest"). One transaction,
-- committed before :t.
\set ON_ERROR_STOP 1
BEGIN;
CREATE TABLE bench_steady AS
    SELECT id, :t::bigint + (row_number() OVER (ORDER BY id) - 1) % :s AS due
    FROM cases
    WHERE tracking_no LIKE 'SB-%'
      AND NOT EXISTS (SELECT 1 FROM bench_burst b WHERE b.id = cases.id)
    ORDER BY id LIMIT :n;
ALTER TABLE bench_steady ADD PRIMARY KEY (id);
UPDATE cases c SET resolve_due_at = to_timestamp(b.due),
                   ack_due_at = least(c.ack_due_at, to_timestamp(b.due))
FROM bench_steady b WHERE c.id = b.id;
UPDATE jobs j SET run_at = to_timestamp(b.due),
                  dedup_key = 'sla:' || b.id || ':resolve:0:' || b.due,
                  payload = jsonb_build_object(
                      'case_id', b.id, 'check', 'resolve', 'level', 0, 'due', b.due,
                      'deadline', b.due,
                      'rest', jsonb_build_array(jsonb_build_array(2, 1, b.due + :l1, b.due),
                                                jsonb_build_array(2, 2, b.due + :l2, b.due)))
FROM bench_steady b
WHERE j.kind = 'sla.check' AND j.state = 'queued' AND (j.payload->>'case_id')::bigint = b.id;
COMMIT;
