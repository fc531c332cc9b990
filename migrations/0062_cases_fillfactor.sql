-- 0062_cases_fillfactor: room on each page of cases for the new version of a row updated in
-- place. An escalation raises a case's priority and level, and an assignment or a status step
-- changes a column or two; with a full page every such update writes the row elsewhere and a
-- new entry into each of the table's indexes (nine). With room on the page, an update that
-- changes no indexed column (an escalation's priority and level, its updated_at) stays on the
-- page without touching an index (a heap-only tuple). Pages written from now on keep 15% free;
-- existing pages get the room as they are rewritten (VACUUM FULL, CLUSTER) — nothing is moved
-- here, so the migration is instant on a large table.
ALTER TABLE cases SET (fillfactor = 85);
