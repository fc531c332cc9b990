-- 0051_message_data: what a channel's sender needs beyond an address and a text (docs/plugins.md,
-- "The schema contract"). A call (channel "call", plugin ivr_asterisk) names its call script,
-- its trunk, and where the keypad answers go: {"script", "trunk", "reply_kind", "ref"}. Core
-- stores the object and hands it to the sender as it is (struct rb_message_info.data_json).
-- Core refuses data over 8 KiB before it gets here (RB_MESSAGE_DATA_MAX); the bound below is
-- a backstop with room for jsonb's own spacing of the same object.
ALTER TABLE messages ADD COLUMN data jsonb
    CHECK (data IS NULL OR (jsonb_typeof(data) = 'object' AND octet_length(data::text) <= 16384));

-- rabta_message_queue gains `data` (one object per message, or NULL), last and with a default,
-- so every existing caller (positional or named) is untouched. The old signature goes: two
-- functions of one name with defaults would make a call ambiguous.
DROP FUNCTION rabta_message_queue(text[], text[], text[], bigint[], bigint[], text[], text[],
                                  boolean[], boolean[], bigint[], text[], float8);

CREATE FUNCTION rabta_message_queue(
    channel text[], to_address text[], body text[],
    case_id bigint[] DEFAULT NULL, citizen_id bigint[] DEFAULT NULL,
    template text[] DEFAULT NULL, language text[] DEFAULT NULL,
    notice boolean[] DEFAULT NULL, urgent boolean[] DEFAULT NULL,
    event_id bigint[] DEFAULT NULL, subject text[] DEFAULT NULL,
    delay float8 DEFAULT 0, data jsonb[] DEFAULT NULL)
RETURNS TABLE (message_id bigint, message_channel text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH i AS (
        SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13)
        AS t(channel, to_address, body, case_id, citizen_id, template, language, notice,
             urgent, event_id, subject, data)
        WHERE t.channel IS NOT NULL),
    m AS (
        INSERT INTO messages (case_id, citizen_id, channel, to_address, body, template,
                              language, notice, urgent, event_id, subject, data)
        SELECT i.case_id,
               coalesce(i.citizen_id, (SELECT z.id FROM citizens z WHERE z.phone = i.to_address)),
               i.channel, i.to_address, i.body, i.template, i.language,
               coalesce(i.notice, false), coalesce(i.urgent, true), i.event_id, i.subject, i.data
        FROM i
        ON CONFLICT (event_id, template, to_address) WHERE event_id IS NOT NULL DO NOTHING
        RETURNING messages.id, messages.channel, messages.urgent),
    j AS (
        INSERT INTO jobs (kind, payload, run_at)
        SELECT 'message.send.' || m.channel, jsonb_build_object('message_id', m.id),
               now() + make_interval(secs => CASE WHEN m.urgent THEN 0
                                                  ELSE greatest(coalesce($12, 0), 0) END)
        FROM m)
    SELECT m.id, m.channel FROM m;
END
$$;
