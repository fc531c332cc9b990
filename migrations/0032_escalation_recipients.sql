-- 0032_escalation_recipients: escalations name people, not addresses (docs/sla.md,
-- "Who is told"), and the loops close by themselves (docs/sla.md, "Closing the loops").

-- A staff member's own phone (E.164) and e-mail, for the escalations that text or mail them
-- (`rabtad staff add ... --phone P --email E`, PATCH /api/v1/staff/accounts/:username).
ALTER TABLE staff ADD COLUMN phone text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$');
ALTER TABLE staff ADD COLUMN email text
    CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254);

-- Notifications in a staff member's inbox (escalation `via: inbox`), read through
-- GET /api/v1/staff/notifications. One per person and case event, which is also its key: a
-- retried job writes none twice, the person's list and unread count read this one index in
-- order, and an escalation writes one index entry per person told. The case and the event are
-- referenced without a foreign-key check, as in 0024: the rows are written from the event's
-- own row, and cases and events are never deleted.
CREATE TABLE staff_notifications (
    staff_id    bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    event_id    bigint NOT NULL,          -- the sla.escalated event; the notification's id
    case_id     bigint NOT NULL,
    kind        text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),  -- sla.escalated
    level       smallint,
    body        text NOT NULL CHECK (length(body) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz,
    PRIMARY KEY (staff_id, event_id)
);

-- Closing the loops: a question to the citizen, a resolution or an answer arms one
-- 'case.autoclose' job per event (core/sla/sla_close.c), which closes the case at its time
-- unless the case has moved on. The staff API writes 'ask', a department's callback
-- 'ask_citizen'.
INSERT INTO case_event_jobs (event, kind, to_status) VALUES
    ('ask', 'case.autoclose', 'awaiting_citizen'),
    ('ask_citizen', 'case.autoclose', 'awaiting_citizen'),
    ('resolve', 'case.autoclose', 'resolved'),
    ('answer', 'case.autoclose', 'answered');

-- The citizen hears that a case was closed for want of their reply.
INSERT INTO case_event_jobs (event, kind) VALUES ('closed_no_reply', 'notice');

-- The inbox filter flagged=true for oversight, who read every department: the flagged open
-- cases are few, in the inbox's order.
CREATE INDEX cases_flagged ON cases ((coalesce(resolve_due_at, 'infinity'::timestamptz)), id)
    WHERE flagged_oversight_at IS NOT NULL;
