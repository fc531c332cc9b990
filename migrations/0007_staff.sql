-- 0007_staff: what the staff API needs besides staff and staff_tokens (0001).

-- Who in the department is working a case (core/staff_api.c "assign"); cleared when the case
-- is transferred to another department.
ALTER TABLE cases ADD COLUMN assigned_staff_id bigint REFERENCES staff (id);
CREATE INDEX cases_assigned ON cases (assigned_staff_id) WHERE assigned_staff_id IS NOT NULL;

-- Failed sign-ins in a row per username, whether or not such a user exists, so that an
-- unknown username is locked out exactly as a real one is (the answer reveals nothing).
-- RB_STAFF_LOCK_FAILURES failures lock the name until locked_until; a success deletes the row.
CREATE TABLE staff_login_attempts (
    username        text PRIMARY KEY CHECK (length(username) BETWEEN 1 AND 64),
    failures        int NOT NULL CHECK (failures >= 0),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz
);
