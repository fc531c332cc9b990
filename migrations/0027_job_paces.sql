-- 0027_job_paces: a paced kind's schedule is shared by every rabtad process (core/jobs.c,
-- rb_jobs_pace). A gateway's rate (e.g. an SMS gateway's messages a second) is the gateway's,
-- not one process's: with N processes on one database, a schedule kept in each process let
-- the gateway see up to N times the rate. Each claim of a paced kind locks the kind's row,
-- takes the turns that start within the next second from this schedule (GCRA: tat is the
-- "theoretical arrival time", epoch seconds) and moves it on by the turns it claimed.
CREATE TABLE job_paces (
    kind  text PRIMARY KEY CHECK (length(kind) BETWEEN 1 AND 64),
    tat   double precision NOT NULL DEFAULT 0
);
