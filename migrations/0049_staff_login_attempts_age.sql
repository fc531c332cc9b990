-- 0049_staff_login_attempts_age: a failed staff sign-in deletes rows of staff_login_attempts
-- that no longer count (last failure older than the lock window, not locked), oldest first
-- (core/staff/staff_api.c), so the table holds the names of one window, not every name ever
-- tried; this index finds them.
CREATE INDEX staff_login_attempts_last_failed ON staff_login_attempts (last_failed_at);
