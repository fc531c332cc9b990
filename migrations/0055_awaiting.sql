-- 0055_awaiting: the cases that await a phone's answer on a channel, written once. Intake's
-- HOLD extra (a submission not stored while such a case exists; core/intake/intake_store.c)
-- asks it for the channel the submission names; rabta_sms_awaiting (0037), the SMS plugin's
-- look-up, is now this function for channel 'sms', so the two can no longer disagree.
-- A case awaits the answer of a phone on a channel when its citizen has that phone, its status
-- is awaiting_citizen and a question went to that phone on that channel since it began waiting.
--
-- STABLE, not STRICT, one SELECT: PostgreSQL inlines both functions into the calling query,
-- so the plans stay those of the statements they replace (index cases_awaiting, 0022).
CREATE FUNCTION rabta_awaiting(phone text, channel text)
RETURNS TABLE (id bigint, tracking_no text, citizen_id bigint, paused_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.tracking_no, c.citizen_id, c.paused_at
    FROM citizens ci JOIN cases c ON c.citizen_id = ci.id
    WHERE ci.phone = $1 AND c.status = 'awaiting_citizen'
      AND EXISTS (SELECT 1 FROM messages q WHERE q.case_id = c.id AND q.channel = $2
                  AND q.to_address = $1 AND q.created_at >= c.paused_at)
$$;

CREATE OR REPLACE FUNCTION rabta_sms_awaiting(phone text)
RETURNS TABLE (id bigint, tracking_no text, citizen_id bigint, paused_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT a.id, a.tracking_no, a.citizen_id, a.paused_at FROM rabta_awaiting($1, 'sms') a
$$;
