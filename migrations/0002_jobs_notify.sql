-- Wake every rabtad's job runner when jobs become due sooner than it expects: on any insert
-- or update that leaves a row queued, NOTIFY rabta_jobs with the earliest such run_at (epoch
-- seconds). Statement-level, so a batch of a thousand jobs is one notification; whatever SQL
-- adds the jobs (intake's transaction, the jobs CLI, an operator's psql) wakes the runners.
CREATE FUNCTION rabta_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    earliest timestamptz;
BEGIN
    SELECT min(run_at) INTO earliest FROM new_jobs WHERE state = 'queued';
    IF earliest IS NOT NULL THEN
        PERFORM pg_notify('rabta_jobs', extract(epoch FROM earliest)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION rabta_jobs_notify();
CREATE TRIGGER jobs_notify_update AFTER UPDATE ON jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION rabta_jobs_notify();
