-- The citizen's "registered" notice is stored by intake itself, in the batch statement that
-- stores the cases (core/intake.c: a messages row and its message.send job per case), rather
-- than by a notice job per new case: per case that saved a job's claim, a read, a write and a
-- delete, which were most of PostgreSQL's work after intake's own. The notices of later
-- events (acknowledged, transferred, resolved, answered) still come from core/notice.c.
DELETE FROM case_event_jobs WHERE event = 'routed' AND kind = 'notice';
