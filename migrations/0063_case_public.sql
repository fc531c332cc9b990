-- 0063_case_public: what the public may see of a case itself, per channel, as the schema
-- contract for plugins that answer the public about the cases they brought in (the open311
-- plugin's requests and service request updates; docs/plugins.md). Never the citizen, their
-- phone, e-mail or name, the official named, or internal notes: the columns below only.
-- media_url: the first the reporter posted, kept in the "submitted" event's origin (a
-- channel's case_submit origin, docs/plugins.md). status_notes: the words of the last public
-- event by the bureau (rabta_case_public_events, migration 0028).
CREATE VIEW rabta_case_public AS
    SELECT c.id, c.tracking_no, c.channel, c.kind, c.status, c.service_id, c.department_id,
           c.text, c.lat, c.long, c.created_at, c.updated_at, c.resolve_due_at,
           (SELECT e.data #>> '{origin,media_url}' FROM case_events e
            WHERE e.case_id = c.id AND e.event = 'submitted' ORDER BY e.id LIMIT 1)
               AS media_url,
           (SELECT p.description FROM rabta_case_public_events p
            WHERE p.case_id = c.id AND p.actor_type <> 'citizen' ORDER BY p.id DESC LIMIT 1)
               AS status_notes
    FROM cases c;
