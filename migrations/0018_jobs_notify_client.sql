-- NOTIFY serialises commits: PostgreSQL takes one database-wide lock in the commit of every
-- transaction that sent a notification and holds it until the commit is flushed, so
-- transactions that notify commit one fsync after another, never in a group. With every case
-- event queuing jobs (0011) and every job run queuing others, rabtad's own writes would all
-- queue behind that lock (measured: intake fell from ~2x pgbench to 0.6x).
--
-- So rabtad's pool sessions (which set rabta.jobs_notify = 'client' at connection start) get
-- the wake-up as a NOTICE with SQLSTATE RBJ01 instead, which costs no lock: core/db.c hands it
-- to core/jobs.c after the statement's commit, which re-arms its own timer and relays ONE
-- coalesced NOTIFY to the other processes (a few per second at most). Every other session
-- (psql, `rabtad jobs`, a migration) keeps the NOTIFY of 0002.
CREATE OR REPLACE FUNCTION rabta_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    earliest timestamptz;
BEGIN
    SELECT min(run_at) INTO earliest FROM new_jobs WHERE state = 'queued';
    IF earliest IS NOT NULL THEN
        IF current_setting('rabta.jobs_notify', true) = 'client' THEN
            RAISE NOTICE USING MESSAGE = extract(epoch FROM earliest)::text, ERRCODE = 'RBJ01';
        ELSE
            PERFORM pg_notify('rabta_jobs', extract(epoch FROM earliest)::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
