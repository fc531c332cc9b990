-- 0029_message_queue: messages are a core service (docs/plugins.md, docs/sms.md "Sending").
--
-- One SQL function queues messages: rabta_message_queue stores each message and its send job
-- in one statement. The send job is per channel ("message.send.<channel>"), run by the plugin
-- that registered itself as that channel's sender (host API message_sender). The channels are
-- what the loaded plugins register, so the CHECK with a fixed list goes; a channel is a name.
ALTER TABLE messages DROP CONSTRAINT messages_channel_check;
ALTER TABLE messages ADD CONSTRAINT messages_channel_name
    CHECK (channel ~ '^[a-z][a-z0-9_]{0,31}$');
-- An e-mail's subject (NULL for channels without one), and how many times a sender tried it.
ALTER TABLE messages ADD COLUMN subject text CHECK (length(subject) <= 500);
ALTER TABLE messages ADD COLUMN attempts int NOT NULL DEFAULT 0 CHECK (attempts >= 0);

-- Jobs of the one old kind become their message's channel's kind; the SMS pace's schedule
-- follows its kind.
UPDATE jobs j SET kind = 'message.send.' || m.channel
FROM messages m
WHERE j.kind = 'message.send' AND m.id = (j.payload->>'message_id')::bigint;
UPDATE job_paces SET kind = 'message.send.sms' WHERE kind = 'message.send'
    AND NOT EXISTS (SELECT 1 FROM job_paces WHERE kind = 'message.send.sms');

-- Queues messages: the arrays are parallel, one element per message (channel, to_address and
-- body are required; the others may be NULL or shorter, missing elements being NULL).
--   case_id, citizen_id  what the message is about and to whom (NULL citizen: the citizen
--                        whose phone to_address is, if any)
--   template, language   what it was rendered from ("ur" or "en")
--   notice               not sent to a citizen who opted out (STOP); default false
--   urgent               sent at once; otherwise due after `delay` seconds (quiet hours);
--                        default true
--   event_id             at most one message per case event, template and address: a
--                        duplicate is not stored and has no job
--   subject              an e-mail's subject
-- Returns the messages stored (a duplicate has no row), with their channel. The caller checks
-- that every channel has a sender in its process (the database cannot know which plugins are
-- loaded): a message of a channel nobody sends waits in the queue.
CREATE FUNCTION rabta_message_queue(
    channel text[], to_address text[], body text[],
    case_id bigint[] DEFAULT NULL, citizen_id bigint[] DEFAULT NULL,
    template text[] DEFAULT NULL, language text[] DEFAULT NULL,
    notice boolean[] DEFAULT NULL, urgent boolean[] DEFAULT NULL,
    event_id bigint[] DEFAULT NULL, subject text[] DEFAULT NULL,
    delay float8 DEFAULT 0)
RETURNS TABLE (message_id bigint, message_channel text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH i AS (
        SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        AS t(channel, to_address, body, case_id, citizen_id, template, language, notice,
             urgent, event_id, subject)
        WHERE t.channel IS NOT NULL),
    m AS (
        INSERT INTO messages (case_id, citizen_id, channel, to_address, body, template,
                              language, notice, urgent, event_id, subject)
        SELECT i.case_id,
               coalesce(i.citizen_id, (SELECT z.id FROM citizens z WHERE z.phone = i.to_address)),
               i.channel, i.to_address, i.body, i.template, i.language,
               coalesce(i.notice, false), coalesce(i.urgent, true), i.event_id, i.subject
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

-- A channel's delivery report (e.g. an SMS gateway's): delivered, or failed with detail.
-- Only a message of that channel that is not final yet changes. Returns whether one did.
CREATE FUNCTION rabta_message_delivery(channel text, message_id bigint, delivered boolean,
                                       detail text DEFAULT NULL)
RETURNS boolean LANGUAGE sql VOLATILE AS $$
    WITH u AS (
        UPDATE messages SET
            status = CASE WHEN delivered THEN 'delivered' ELSE 'failed' END,
            delivered_at = CASE WHEN delivered THEN now() ELSE delivered_at END,
            last_error = CASE WHEN delivered THEN NULL ELSE left(detail, 500) END
        WHERE id = message_id AND messages.channel = rabta_message_delivery.channel
          AND status IN ('queued', 'sent')
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM u)
$$;

-- An API key's holder by the key's SHA-256 (plugins authenticating machine clients, e.g.
-- open311): no row when unknown or revoked.
CREATE FUNCTION rabta_api_key(key_hash bytea)
RETURNS TABLE (id bigint, name text) LANGUAGE sql STABLE AS $$
    SELECT k.id, k.name FROM api_keys k
    WHERE k.key_hash = rabta_api_key.key_hash AND k.revoked_at IS NULL
$$;
