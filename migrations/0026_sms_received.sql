-- 0026_sms_received: an SMS that becomes a complaint is stored by the statement that stores
-- its case, not by a second one (plugins/sms_kannel, docs/sms.md "Nothing lost, nothing
-- doubled"). Its case holds the text; the case's "submitted" event holds where it came from
-- (data.origin: Kannel's id %I, the sender, our short code); its idempotency key (scope
-- sms_kannel, key %I) recognises Kannel's retries. sms_mo keeps the texts that did not become
-- a case (commands, answers, texts past the flood limit); complaints stored before this
-- migration stay there too.
--
-- Every SMS received, once, whichever of the two holds it:
CREATE VIEW sms_received AS
    SELECT kannel_id, phone, to_number, command, case_id, text, received_at FROM sms_mo
    UNION ALL
    SELECT e.data #>> '{origin,kannel_id}', e.data #>> '{origin,from}',
           e.data #>> '{origin,to}', 'complaint', e.case_id, NULL, e.at
    FROM case_events e
    WHERE e.event = 'submitted' AND e.data ->> 'channel' = 'sms'
      AND e.data #>> '{origin,kannel_id}' IS NOT NULL;
