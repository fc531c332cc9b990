/* core/sla/: deadlines. SLA policies, overrides and escalation ladders from config/sla.yaml
 * (sla_policy), the engine that fires them once each through the jobs queue (sla_engine) and
 * the waits for the citizen that close a case when they end (sla_close).
 * Calls: base, config, db, jobs, cases. */
/* The SLA engine: each open case has ONE pending job, "sla.check", for its next SLA event
 * (acknowledgement deadline, a warning, the resolution deadline, then each escalation level),
 * so memory and queue size do not grow with anything but the number of open cases. A check
 * records its event in sla_firings (primary key: exactly once), applies the escalation level's
 * actions if the case is in breach, and queues the next event — in one transaction.
 * "sla.resume" moves the deadlines after a pause for the citizen's reply. */
#ifndef RB_SLA_ENGINE_H
#define RB_SLA_ENGINE_H

#include <stdint.h>
#include "sla/sla_policy.h"

struct rb_jobs;
struct rb_db;
struct rb_metrics;
struct rb_sla_engine;

/* Escalation actions that found nobody (a reassignment without a supervisor, a notification
 * without anyone to reach): each is also a case event "sla.unreachable". */
#define RB_SLA_UNREACHABLE_METRIC "rabta_escalation_unreachable_total"
#define RB_SLA_UNREACHABLE_HELP                                                               \
    "Escalation actions with nobody to reach (each also a case event sla.unreachable)."

/* The job that tells the people of a batch's escalations (core/messages/escalation.c). */
#define RB_SLA_NOTIFY_JOB "sla.notify"

enum rb_sla_check { RB_SLA_ACK = 0, RB_SLA_WARN = 1, RB_SLA_RESOLVE = 2 };

/* One SLA event of a case. */
struct rb_sla_event {
    enum rb_sla_check check;
    int level;      /* warning index, or escalation level index */
    int64_t due;    /* when it happens (epoch seconds) */
    int64_t deadline; /* the deadline it belongs to (ack_due or resolve_due) */
};

/* sla is borrowed (replaced with rb_sla_engine_set at reload); may be NULL: no SLA. */
struct rb_sla_engine *rb_sla_engine_new(struct rb_db *db, struct rb_metrics *m,
                                        const struct rb_sla *sla);
void rb_sla_engine_set(struct rb_sla_engine *e, const struct rb_sla *sla);
int rb_sla_engine_register(struct rb_sla_engine *e, struct rb_jobs *jobs);
void rb_sla_engine_free(struct rb_sla_engine *e);

#define RB_SLA_PLAN_MAX (1 + RB_SLA_MAX_WARN + 16)

/* Every SLA event of a case, in time order: the acknowledgement deadline, the warnings and
 * the escalation levels (checks: a mask of 1 << RB_SLA_* to include). Computed ONCE, at
 * intake or at a resume, and carried in the job payload, so later runs never recompute a
 * time. Returns the number of events (at most RB_SLA_PLAN_MAX). */
int rb_sla_plan(const struct rb_sla *sla, const struct rb_sla_policy *p, int64_t created,
                int64_t ack_due, int64_t resolve_due, unsigned checks,
                struct rb_sla_event out[RB_SLA_PLAN_MAX]);

/* The job payload for ev[0] with ev[1..n) as the rest of the plan; case_id < 0 leaves the
 * case id out (intake adds it in SQL). Returns a new string. */
char *rb_sla_event_payload(long long case_id, const struct rb_sla_event *ev, int n);
/* The dedup key of an event. Returns a new string. */
char *rb_sla_event_key(long long case_id, const struct rb_sla_event *ev);

#endif
