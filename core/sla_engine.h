/* The SLA engine: each open case has ONE pending job, "sla.check", for its next SLA event
 * (acknowledgement deadline, a warning, the resolution deadline, then each escalation level),
 * so memory and queue size do not grow with anything but the number of open cases. A check
 * records its event in sla_firings (primary key: exactly once), applies the escalation level's
 * actions if the case is in breach, and queues the next event — in one transaction.
 * "sla.resume" moves the deadlines after a pause for the citizen's reply. */
#ifndef RB_SLA_ENGINE_H
#define RB_SLA_ENGINE_H

#include <stdint.h>
#include "sla.h"

struct rb_jobs;
struct rb_db;
struct rb_metrics;
struct rb_sla_engine;

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

/* The event that follows after (NULL: the first) for a case with these deadlines. Returns 0
 * and fills next, or -1 when there is none. */
int rb_sla_next_event(const struct rb_sla *sla, const struct rb_sla_policy *p, int64_t created,
                      int64_t ack_due, int64_t resolve_due, const struct rb_sla_event *after,
                      struct rb_sla_event *next);

/* The job payload and dedup key of an event, for intake's transaction. Returns new strings. */
char *rb_sla_event_payload(long long case_id, const struct rb_sla_event *ev);
char *rb_sla_event_key(long long case_id, const struct rb_sla_event *ev);

#endif
