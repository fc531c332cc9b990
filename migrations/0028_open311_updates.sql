-- 0028_open311_updates: what the public may see of a case's history, and a public update on a
-- case, as the schema contract the open311 plugin uses for Open311's service request updates
-- (docs/open311.md, "Service request updates").
--
-- Public events. A case's timeline is mostly internal. An event is public when it
--   - changes the case's status (to_status set), except the filing itself (intake's
--     "submitted" and first "routed": the request is not an update of itself);
--   - is a staff note written for the citizen (event "note", data.internal = false);
--   - is a public update posted through Open311 (event "comment", data.channel = "open311").
-- Its description is its note, except when the event is internal (data.internal = true), a
-- transfer (a reason between offices), or a citizen's words that came through another
-- channel (the app, SMS: said to the bureau, not to the public). data is never shown: it holds
-- who posted an update (names, email, phone), only media_url comes out. status is the case's
-- status right after the event.
CREATE VIEW rabta_case_public_events AS
    SELECT e.id, e.case_id, e.at, e.event, e.actor_type,
           coalesce(e.to_status,
                    (SELECT p.to_status FROM case_events p
                     WHERE p.case_id = e.case_id AND p.id < e.id AND p.to_status IS NOT NULL
                     ORDER BY p.id DESC LIMIT 1)) AS status,
           CASE WHEN coalesce(e.data ->> 'internal', '') = 'true' OR e.event = 'transfer'
                  OR (e.actor_type = 'citizen'
                      AND coalesce(e.data ->> 'channel', '') <> 'open311')
                THEN NULL ELSE nullif(e.note, '') END AS description,
           CASE WHEN e.event = 'comment' THEN e.data ->> 'media_url' END AS media_url
    FROM case_events e
    WHERE (e.to_status IS NOT NULL
           AND NOT (e.actor_type = 'system' AND e.actor_id IN ('intake', 'routing')))
       OR (e.event = 'note' AND e.data ->> 'internal' = 'false')
       OR (e.event = 'comment' AND e.data ->> 'channel' = 'open311');

-- Updates are asked for by time window across all cases (GET servicerequestupdates).
CREATE INDEX case_events_at ON case_events (at);

-- A public update on case p_tracking of channel p_channel, as a citizen's "comment" event with
-- data {channel, client, client_update_id, ...p_data}. p_client names the API client (its
-- key's name); an update whose (p_client, p_client_update_id) is already on the case is not
-- written again: its first row comes back with replayed = true (a client retrying a POST
-- whose answer it lost). No row: no such case on that channel.
CREATE FUNCTION rabta_case_public_comment(p_tracking text, p_channel text, p_client text,
                                          p_client_update_id text, p_note text, p_data jsonb)
RETURNS TABLE (event_id bigint, at timestamptz, replayed boolean)
LANGUAGE sql AS $$
    WITH c AS (
        SELECT id FROM cases
        WHERE tracking_no = p_tracking AND channel = p_channel AND kind = 'complaint'
        FOR UPDATE),
    old AS (
        SELECT e.id, e.at FROM case_events e JOIN c ON e.case_id = c.id
        WHERE p_client_update_id IS NOT NULL AND e.event = 'comment'
          AND e.data ->> 'client' = p_client
          AND e.data ->> 'client_update_id' = p_client_update_id
        ORDER BY e.id LIMIT 1),
    ins AS (
        INSERT INTO case_events (case_id, actor_type, actor_id, event, note, data)
        SELECT c.id, 'citizen', p_client, 'comment', p_note,
               coalesce(p_data, '{}') || jsonb_build_object('channel', p_channel,
                   'client', p_client, 'client_update_id', p_client_update_id)
        FROM c WHERE NOT EXISTS (SELECT 1 FROM old)
        RETURNING id, at)
    SELECT id, at, false FROM ins
    UNION ALL
    SELECT id, at, true FROM old
$$;
