-- 0037_sms_awaiting: the cases that await a phone's answer by SMS, written once. The SMS
-- channel's direct path relies on two statements agreeing on it: intake refuses a free text
-- with 409 while such a case exists (rb_case_submission.unless_awaiting), and then the SMS
-- plugin's look-up must find that case (plugins/sms_kannel/sms_mo.c; docs/sms.md "Answering
-- a question"). A case awaits the answer of a phone when its citizen has that phone, its status
-- is awaiting_citizen and a question went to that phone by SMS since it began waiting.
--
-- STABLE, not STRICT, one SELECT: PostgreSQL inlines it into the calling query (as a subquery
-- in FROM), so the plans stay those of the statements it replaces (index cases_awaiting, 0022).
CREATE FUNCTION rabta_sms_awaiting(phone text)
RETURNS TABLE (id bigint, tracking_no text, citizen_id bigint, paused_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.tracking_no, c.citizen_id, c.paused_at
    FROM citizens ci JOIN cases c ON c.citizen_id = ci.id
    WHERE ci.phone = $1 AND c.status = 'awaiting_citizen'
      AND EXISTS (SELECT 1 FROM messages q WHERE q.case_id = c.id AND q.channel = 'sms'
                  AND q.to_address = $1 AND q.created_at >= c.paused_at)
$$;
