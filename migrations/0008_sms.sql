-- 0008_sms: the SMS channel through Kannel (plugins/sms_kannel, docs/sms.md).

-- Every SMS a citizen sent us, once: Kannel retries a request with the same message id (%I)
-- until it gets a 2xx, so kannel_id is unique and the reply to an MO is only written by the
-- statement that inserts its row.
CREATE TABLE sms_mo (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kannel_id    text NOT NULL UNIQUE CHECK (length(kannel_id) BETWEEN 1 AND 100),
    phone        text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    to_number    text CHECK (length(to_number) <= 32),  -- our short code as Kannel saw it
    command      text NOT NULL CHECK (command IN ('complaint', 'status', 'help', 'stop', 'start')),
    case_id      bigint REFERENCES cases (id),          -- the complaint it became
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sms_mo_phone ON sms_mo (phone, id DESC);
CREATE INDEX sms_mo_case ON sms_mo (case_id) WHERE case_id IS NOT NULL;

-- A notice is a message the citizen did not just ask for (a status change, an outreach
-- survey): it is not sent to a citizen who opted out (citizens.opted_out_at, set by STOP).
-- Answers to what the citizen sent (tracking number, STATUS, one-time codes) are not notices.
ALTER TABLE messages ADD COLUMN notice boolean NOT NULL DEFAULT false;
