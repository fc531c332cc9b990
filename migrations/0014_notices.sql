-- 0014_notices: notices to citizens on case events, quiet hours, and SMS flood limits
-- (core/notice.c, core/message.c, plugins/sms_kannel, docs/sms.md).

-- A notice job per event the citizen hears about: registered (the tracking number; skipped
-- for SMS cases, whose reply already carries it), acknowledged, transferred, resolved (with
-- the request to rate), information request answered.
INSERT INTO case_event_jobs (event, kind) VALUES
    ('routed', 'notice'),
    ('acknowledge', 'notice'),
    ('transfer', 'notice'),
    ('resolve', 'notice'),
    ('answer', 'notice');

-- One message per case event at most: a notice job that runs twice (a retry after a crash)
-- finds its message already there.
ALTER TABLE messages ADD COLUMN event_id bigint REFERENCES case_events (id);
CREATE UNIQUE INDEX messages_event ON messages (event_id) WHERE event_id IS NOT NULL;

-- Urgent messages (answers, one-time codes) go at once; the others wait for the end of
-- quiet hours. Rows written without saying are answers.
ALTER TABLE messages ADD COLUMN urgent boolean NOT NULL DEFAULT true;

-- SMS: a rating reply ("1" / "2") and a text past the flood limit are commands of their own;
-- a text past the limit is stored (nothing is lost) but creates no case.
ALTER TABLE sms_mo DROP CONSTRAINT sms_mo_command_check;
ALTER TABLE sms_mo ADD CONSTRAINT sms_mo_command_check CHECK (command IN (
    'complaint', 'status', 'help', 'stop', 'start', 'rating', 'flood'));
-- The text itself (the flood-limited ones have no case to keep it).
ALTER TABLE sms_mo ADD COLUMN text text CHECK (length(text) <= 20000);
