-- 0017_sms_reply: a citizen's SMS answering an officer's question is attached to the case
-- awaiting their answer (plugins/sms_kannel, docs/sms.md "Answering a question").

-- 'reply': the text was the citizen's answer (case_id: the case it was added to, its comment
-- event holding the text), or named a tracking number that is not one of theirs awaiting an
-- answer (case_id NULL, the text kept here).
ALTER TABLE sms_mo DROP CONSTRAINT sms_mo_command_check;
ALTER TABLE sms_mo ADD CONSTRAINT sms_mo_command_check CHECK (command IN (
    'complaint', 'status', 'help', 'stop', 'start', 'rating', 'flood', 'reply'));
