-- bench_inbox.sh: :n open cases of department :dept (the inbox under test) and :other cases of
-- other departments, shaped like intake's (status routed/acknowledged/in_progress, deadlines
-- spread over +-30 days around now so that some are overdue), plus closed ones of :dept.
\set ON_ERROR_STOP 1
BEGIN;
INSERT INTO cases (tracking_no, kind, status, channel, service_id, department_id, category,
                   priority, sla_policy, district_id, text, language, anonymous,
                   created_at, updated_at, ack_due_at, resolve_due_at)
SELECT 'IB-' || g, 'complaint',
       (ARRAY['routed', 'acknowledged', 'in_progress'])[1 + g % 3],
       'app', (ARRAY['fir_registration', 'character_certificate'])[1 + g % 2], :'dept',
       'general', 1 + g % 5, 'default',
       (ARRAY['lahore', 'multan', 'faisalabad', 'rawalpindi'])[1 + g % 4],
       'open case number ' || g, 'en', false,
       now() - interval '40 days' + (g % 864000) * interval '1 second',
       now(), now() + interval '1 day',
       now() - interval '30 days' + (g * 7919 % 5184000) * interval '1 second'
FROM generate_series(1, :n) g;
INSERT INTO cases (tracking_no, kind, status, channel, service_id, department_id, category,
                   priority, sla_policy, district_id, text, language, anonymous,
                   created_at, updated_at, ack_due_at, resolve_due_at)
SELECT 'IO-' || g, 'complaint', CASE WHEN g % 2 = 0 THEN 'routed' ELSE 'closed' END,
       'app', 'domicile_certificate', 'district_administration', 'general', 3, 'default',
       'lahore', 'other department ' || g, 'en', false, now(), now(), now(),
       now() - interval '30 days' + (g * 7919 % 5184000) * interval '1 second'
FROM generate_series(1, :other) g;
INSERT INTO cases (tracking_no, kind, status, channel, service_id, department_id, category,
                   priority, sla_policy, district_id, text, language, anonymous,
                   created_at, updated_at, ack_due_at, resolve_due_at)
SELECT 'IC-' || g, 'complaint', 'closed', 'app', 'fir_registration', :'dept', 'general', 3,
       'default', 'lahore', 'closed case ' || g, 'en', false, now(), now(), now(),
       now() - interval '30 days' + (g * 7919 % 5184000) * interval '1 second'
FROM generate_series(1, :closed) g;
COMMIT;
ANALYZE cases;
