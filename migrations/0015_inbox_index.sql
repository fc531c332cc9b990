-- The department inbox (core/staff_api.c inbox_sql) lists a department's open cases by
-- deadline, 50 at a time, with a (deadline, id) cursor. This index holds exactly those rows in
-- exactly that order, so a page is an index range scan that stops after 51 rows whatever the
-- size of the backlog, with the cursor as an index condition; the filters (service, district,
-- priority, overdue) are checked on the rows read. It replaces (department_id, status,
-- resolve_due_at), which made every page read and sort the whole backlog: one index to
-- maintain per case either way. The status list is the inbox's "open" list, verbatim, so the
-- planner can prove the query's condition implies the index's.
DROP INDEX cases_department_status_due;
CREATE INDEX cases_inbox ON cases
    (department_id, (coalesce(resolve_due_at, 'infinity'::timestamptz)), id)
    WHERE status IN ('routed', 'acknowledged', 'in_progress', 'awaiting_citizen', 'transferred',
                     'reopened');
