-- A new case's delivery to its department's plugin is queued by intake itself, in its batch
-- statement, and only when that plugin wants it (core/intake.c, host API department_wants):
-- an inbox department without a duty-officer SMS needs no job per case. A transfer's delivery
-- stays a consequence of the 'transfer' event (0012).
DELETE FROM case_event_jobs WHERE event = 'routed' AND kind = 'case.deliver';
