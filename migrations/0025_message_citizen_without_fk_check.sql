-- 0025: a message names its citizen without a foreign-key check, as 0024 did for a case's
-- children. The check cost ~17 us per message (the citizen row, usually added by the same
-- statement, locked once more), the second largest single cost of an SMS complaint after the
-- citizen's own row (tests/bench/bench_sms.sh, auto_explain). Its ON DELETE SET NULL did not
-- erase anything: a message keeps its to_address and body. Every statement that writes
-- messages.citizen_id takes it from the citizen (or case) row it reads or writes itself, and
-- nothing reads messages by citizen_id, so its index goes too. cases.citizen_id stays checked.
ALTER TABLE messages DROP CONSTRAINT messages_citizen_id_fkey;
DROP INDEX messages_citizen;
