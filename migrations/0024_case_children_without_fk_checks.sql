-- 0024: the rows written with a case, in the case's own statement, reference it without a
-- foreign-key check: its events, its idempotency key, its messages (and the event a notice
-- answers), and the SMS that became it. PostgreSQL checks a foreign key row by row (an index
-- probe and a row lock on the case per referencing row): eight checks per SMS complaint, 13%
-- of the CPU of the SMS intake path (tests/bench/bench_sms.sh: 4,000 -> 4,500 MO/s).
--
-- What the checks guarded cannot happen here: cases are never deleted (nothing in Rabta
-- deletes one; their events are append-only by trigger), and every statement that writes
-- one of these rows takes the case id from the case row it reads or writes in that same
-- statement. The references that carry a rule stay checked: a case's and a message's
-- citizen (ON DELETE SET NULL, for erasing a citizen), staff, OTP messages, SLA firings and
-- attachments.
ALTER TABLE case_events DROP CONSTRAINT case_events_case_id_fkey;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_case_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_case_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_event_id_fkey;
ALTER TABLE sms_mo DROP CONSTRAINT sms_mo_case_id_fkey;
