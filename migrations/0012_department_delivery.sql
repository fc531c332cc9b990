-- Delivery of cases to their department's plugin (core/deliver.c) and the webhook plugin's
-- replay guard.
--
-- A new case (its 'routed' event) and a transfer (its 'transfer' event, whose data names
-- to_department) each queue one 'case.deliver' job in the transaction that commits the event
-- (the trigger of 0011). The job hands the case to the plugin of the department it goes to:
-- the inbox plugin (staff work inside Rabta) or the webhook plugin (the department's own
-- system), which retries through the jobs table until the department has it.
INSERT INTO case_event_jobs (event, kind, to_status) VALUES
    ('routed', 'case.deliver', NULL),
    ('transfer', 'case.deliver', NULL);

-- A delivery is retried until the department's plugin gives up (the webhook plugin's
-- max_attempts, at most 100), not the queue's default of 10: its jobs may run 100 times.
CREATE FUNCTION rabta_case_deliver_attempts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.max_attempts := 100;
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_case_deliver_attempts BEFORE INSERT ON jobs
    FOR EACH ROW WHEN (NEW.kind = 'case.deliver')
    EXECUTE FUNCTION rabta_case_deliver_attempts();

-- Signatures of department callbacks already accepted (webhook plugin). A callback carries a
-- timestamp and an HMAC over "timestamp.body"; within the timestamp window the same
-- signature is refused a second time. Kept in PostgreSQL so that every rabtad process on the
-- database agrees; rows older than the window are useless and are deleted as callbacks come.
CREATE TABLE webhook_signatures (
    signature   bytea PRIMARY KEY CHECK (length(signature) = 32),
    department  text NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_signatures_seen_at ON webhook_signatures (seen_at);
