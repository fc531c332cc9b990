-- 0026_sms_received: an SMS that becomes a complaint is stored by the statement that stores
-- its case, not by a second one (plugins/sms_kannel; docs/sms.md,
-- "Endpoints" and "Tables"). Its case holds the text; the case's "submitted" event holds where it came from
-- (data.origin: Kannel's id %I, the sender, our short code); its idempotency key (scope
-- sms_kannel, key %I) recognises Kannel's retries. sms_mo keeps the texts that did not become
-- a case (commands, answers, texts past the flood limit); complaints stored before this
-- migration stay there too.
--
-- Every SMS received, once, whichever of the two holds it. A complaint is found through its
-- idempotency key, so a look-up by kannel_id is two index probes (the key, the case's events).
CREATE VIEW sms_received AS
    SELECT kannel_id, phone, to_number, command, case_id, text, received_at FROM sms_mo
    UNION ALL
    SELECT k.key, e.data #>> '{origin,from}', e.data #>> '{origin,to}', 'complaint', k.case_id,
           NULL, e.at
    FROM idempotency_keys k
    JOIN case_events e ON e.case_id = k.case_id AND e.event = 'submitted'
    WHERE k.scope = 'sms_kannel' AND e.data #>> '{origin,kannel_id}' = k.key;
