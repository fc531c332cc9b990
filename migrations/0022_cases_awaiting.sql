-- 0022: the SMS channel asks, for every free text, whether one of the sender's cases awaits
-- their answer (plugins/sms_kannel/sms_mo.c). The planner answered it by AND-ing the sender's
-- cases with the whole open backlog of cases_inbox (21,000 index entries read per text during
-- tests/bench/bench_sms.sh); the cases awaiting a citizen are few, and this index holds only them.
CREATE INDEX cases_awaiting ON cases (citizen_id) WHERE status = 'awaiting_citizen';
