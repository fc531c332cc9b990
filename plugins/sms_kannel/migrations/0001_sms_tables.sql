-- 0001_sms_tables: the sms_kannel plugin's own tables (docs/sms.md "Tables").
--
-- Made by core's migrations 0008, 0014, 0017, 0024 and 0026 before plugins had migrations of
-- their own; declared here as they are now, so a database that has them keeps them with their
-- rows and a new one gets them from this file. Every later change is a migration of this
-- folder.

-- Every SMS a citizen sent us that did not become a case (commands, answers, texts past the
-- flood limit; complaints before core's 0026), once: Kannel retries a request with the same
-- message id (%I) until it gets a 2xx, so kannel_id is unique.
CREATE TABLE IF NOT EXISTS sms_mo (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kannel_id    text NOT NULL UNIQUE CHECK (length(kannel_id) BETWEEN 1 AND 100),
    phone        text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    to_number    text CHECK (length(to_number) <= 32),  -- our short code as Kannel saw it
    command      text NOT NULL CONSTRAINT sms_mo_command_check CHECK (command IN (
                     'complaint', 'status', 'help', 'stop', 'start', 'rating', 'flood', 'reply')),
    case_id      bigint,                                -- the case it went to (no FK: 0024)
    received_at  timestamptz NOT NULL DEFAULT now(),
    text         text CHECK (length(text) <= 20000)
);
CREATE INDEX IF NOT EXISTS sms_mo_phone ON sms_mo (phone, id DESC);
CREATE INDEX IF NOT EXISTS sms_mo_case ON sms_mo (case_id) WHERE case_id IS NOT NULL;

-- Every SMS received, once, whichever holds it: sms_mo, or the case it became (found through
-- core's view rabta_case_origins: its idempotency key, scope sms_kannel and key %I).
CREATE OR REPLACE VIEW sms_received AS
    SELECT kannel_id, phone, to_number, command, case_id, text, received_at FROM sms_mo
    UNION ALL
    SELECT o.key, o.origin ->> 'from', o.origin ->> 'to', 'complaint', o.case_id, NULL, o.at
    FROM rabta_case_origins o
    WHERE o.scope = 'sms_kannel' AND o.origin ->> 'kannel_id' = o.key;
