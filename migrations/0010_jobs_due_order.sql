-- 0010: claims take due jobs "ORDER BY run_at, id"; an index in that order lets PostgreSQL
-- read the first rows instead of sorting every due row (with 100,000 due jobs the sort spilled
-- to disk and each claim of 500 took ~130 ms; tests/bench/bench_sla.sh).
CREATE INDEX jobs_due_order ON jobs (run_at, id) WHERE state = 'queued';
DROP INDEX jobs_due;
