-- 0030_plugin_contract: views core publishes for plugins (docs/plugins.md, "The schema
-- contract"). A plugin reads core data through these (and the functions of 0029), never
-- core's tables, so core may change its tables behind them.
--
-- Plugins' own tables now live in plugins/<name>/migrations/ (core/db/migrate.c, recorded in
-- rabta_migrations with the plugin's name as owner). The tables core's migrations made for
-- plugins before (sms_mo and the view sms_received for sms_kannel) belong to their plugin
-- from here on: its first migration declares them (IF NOT EXISTS, so a database that has them
-- keeps its rows) and every later change to them is a migration of the plugin.

-- How each case arrived, as its channel kept it: the idempotency key it was submitted with
-- (scope, key) and the "submitted" event's data.origin (host API case_submit's origin).
CREATE VIEW rabta_case_origins AS
    SELECT k.scope, k.key, k.case_id, e.data -> 'origin' AS origin, e.at
    FROM idempotency_keys k
    JOIN case_events e ON e.case_id = k.case_id AND e.event = 'submitted';
