-- 0021: each process claims the due jobs of the kinds it handles, kind by kind (core/jobs.c).
-- With one index in due order for all kinds, a backlog of one kind that a process may not
-- take now (an SMS queue held to the gateway's rate, or a kind no process here handles) was
-- read past, row by row, by every claim of the others: 60,000 queued SMS made each claim
-- scan them all (texteq in PostgreSQL's profile of tests/bench/bench_intake.sh).
CREATE INDEX jobs_due_kind ON jobs (kind, run_at, id) WHERE state = 'queued';
DROP INDEX jobs_due_order;
