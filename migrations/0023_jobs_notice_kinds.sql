-- 0023: rabtad's own sessions are told of the jobs they queue kind by kind (one RBJ01 notice
-- per kind, the kind in its DETAIL), so that a process wakes its runner only for kinds it
-- can take now. Before, every intake batch woke it for the SMS it queued, although those
-- wait for the gateway's pace: ~280 claims a second that found nothing (tests/bench/bench_sms.sh).
-- The whole function, as 0018 left it, with only the notice changed.
CREATE OR REPLACE FUNCTION rabta_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    earliest timestamptz;
    r record;
BEGIN
    IF current_setting('rabta.jobs_notify', true) = 'client' THEN
        FOR r IN SELECT kind, min(run_at) AS due FROM new_jobs WHERE state = 'queued'
                 GROUP BY kind LOOP
            RAISE NOTICE USING MESSAGE = extract(epoch FROM r.due)::text, DETAIL = r.kind,
                ERRCODE = 'RBJ01';
        END LOOP;
    ELSE
        SELECT min(run_at) INTO earliest FROM new_jobs WHERE state = 'queued';
        IF earliest IS NOT NULL THEN
            PERFORM pg_notify('rabta_jobs', extract(epoch FROM earliest)::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
