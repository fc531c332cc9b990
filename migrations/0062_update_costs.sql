-- 0062_update_costs: what an update of a case or a job costs, for the statements that update
-- thousands at once (an SLA burst: each escalation updates its case, and every job is updated
-- when it is claimed).
--
-- Room on each page of cases for the new version of a row updated in place. An escalation
-- raises a case's priority and level; with a full page every such update writes the row
-- elsewhere and a new entry into each of the table's indexes (nine). With room on the page, an
-- update that changes no indexed column (an escalation's priority and level, updated_at)
-- stays on the page without touching an index (a heap-only tuple). Pages written from now on
-- keep 15% free; existing pages get the room as they are rewritten (VACUUM FULL, CLUSTER):
-- nothing is moved here, so the migration is instant on a large table.
ALTER TABLE cases SET (fillfactor = 85);

-- updated_at is set by a trigger only when the statement did not set it itself: the claim of
-- jobs and the SLA's update of cases set it, and skip a PL/pgSQL call per row (what the
-- trigger would write is the same: now()).
DROP TRIGGER cases_touch ON cases;
CREATE TRIGGER cases_touch BEFORE UPDATE ON cases
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION rabta_touch_updated_at();
DROP TRIGGER jobs_touch ON jobs;
CREATE TRIGGER jobs_touch BEFORE UPDATE ON jobs
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION rabta_touch_updated_at();
