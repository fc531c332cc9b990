-- 0052_outreach_contacts: the per-citizen cap of proactive feedback ("surveyed at most once in
-- per_citizen_days", docs/feedback.md) as one row per phone: the transaction whose survey last
-- contacted that phone, and when. An outreach step claims the row before it contacts anyone
-- (INSERT ... ON CONFLICT DO UPDATE ... WHERE the window is over or the row is its own), so two
-- steps for two transactions of one citizen, in one process or in two, never both contact
-- that citizen: the second waits for the first's commit and finds the window taken.
CREATE TABLE outreach_contacts (
    phone           text PRIMARY KEY CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    transaction_id  bigint NOT NULL REFERENCES transactions (id),
    at              timestamptz NOT NULL DEFAULT now()
);

-- The contacts made before this table: each phone's latest attempt.
INSERT INTO outreach_contacts (phone, transaction_id, at)
SELECT DISTINCT ON (t.phone) t.phone, t.id, a.started_at
FROM outreach_attempts a JOIN transactions t ON t.id = a.transaction_id
WHERE t.phone IS NOT NULL
ORDER BY t.phone, a.started_at DESC;
