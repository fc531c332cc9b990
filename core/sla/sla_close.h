/* Closing the loops (docs/sla.md, "Closing the loops"), configured under close: in the SLA
 * file:
 *
 *   no_reply   a case that awaits the citizen's reply for this much business time (on the
 *              SLA calendar) is closed: event "closed_no_reply", and the citizen's notice
 *              notice.closed_no_reply (migration 0032 queues it);
 *   no_rating  a resolved or answered case not rated within this time is closed: event
 *              "closed_no_rating";
 *   reopen_window  (read by the rating, core/cases/case_rating.c) how long after its
 *              resolution a case can be rated or reopened.
 *
 * How: the events that start a wait (ask / ask_citizen to awaiting_citizen, resolve, answer)
 * each queue a job "case.autoclose" (case_event_jobs, migration 0032). Its first run computes
 * when the wait ends and queues itself at that run_at (one job per event, deduplicated on
 * the event); the second run closes the case — only if it is still in the state that event
 * put it in and no later event changed the status — as the state machine's "close" by the
 * system (core/cases/case_state.c), with its case event, in one statement. No scan: one
 * pending job per waiting case. Off (no key) means the job ends at once.
 *
 * Calls: base, config (calendar), db, jobs, cases (state machine). */
#ifndef RB_SLA_CLOSE_H
#define RB_SLA_CLOSE_H

struct rb_server;

#define RB_SLA_CLOSE_JOB "case.autoclose"

/* Registers the job handler on srv->jobs (before rb_jobs_start). srv is borrowed; its current
 * srv->sla is read at each run (a reload takes effect for the waits armed after it). */
int rb_sla_close_register(struct rb_server *srv);

#endif
