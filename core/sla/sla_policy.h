/* Service-level agreements: policies (time to acknowledge, time to resolve, warnings) in
 * business time on a calendar, overrides per department/service/kind, and the escalation
 * ladder that climbs once a deadline has passed. Loaded from the file rabta.yaml names under
 * `sla:` (config/sla.yaml in the sample). See docs/sla.md. */
#ifndef RB_SLA_H
#define RB_SLA_H

#include <stddef.h>
#include <stdint.h>
#include "config/config.h"
#include "config/yaml_doc.h"

struct rb_calendar;

#define RB_SLA_MAX_WARN 4

struct rb_sla_policy {
    char *name; /* owned */
    double acknowledge, resolve; /* business seconds */
    double warn_at[RB_SLA_MAX_WARN]; /* fractions of resolve, ascending, in (0, 1) */
    int n_warn;
};

enum rb_sla_action_type {
    RB_SLA_NOTIFY = 1,     /* notify: supervisor|head|oversight|duty_officer, via: inbox or a channel */
    RB_SLA_REASSIGN = 2,   /* reassign: supervisor */
    RB_SLA_RAISE = 3,      /* raise_priority: N (1 = one step more urgent) */
    RB_SLA_FLAG = 4,       /* flag: oversight */
};

struct rb_sla_action {
    enum rb_sla_action_type type;
    char *target; /* owned; role for notify/reassign/flag */
    char *via;    /* owned; notify only: "inbox" (staff notifications) or a channel name (a plugin
                   * must send it: --check) */
    const struct rb_node *via_node; /* borrowed from the sla's doc: where via is written */
    int amount;   /* raise_priority */
};

struct rb_sla_level {
    double after; /* business seconds after the breach */
    struct rb_sla_action *actions; /* owned */
    size_t n;
};

struct rb_sla_override {
    char *department, *service, *kind; /* owned; NULL matches anything */
    const struct rb_sla_policy *policy; /* borrowed from the policies */
};

/* Closing the loops (docs/sla.md): 0 turns each off. */
struct rb_sla_close {
    double no_reply;      /* business seconds awaiting the citizen's reply, then closed */
    double no_rating;     /* seconds a resolved or answered case waits for a rating */
    double reopen_window; /* seconds after the resolution in which a citizen may rate/reopen */
};

struct rb_sla {
    struct rb_calendar *cal; /* owned */
    const char *notify_language; /* "ur" (default) or "en": escalation texts to staff */
    struct rb_sla_close close;
    struct rb_sla_policy *policies;
    size_t n_policies;
    struct rb_sla_override *overrides;
    size_t n_overrides;
    struct rb_sla_level *levels;
    size_t n_levels;
    struct rb_doc *doc; /* owned */
};

/* Loads path (relative paths inside it resolve against its directory). Returns NULL with
 * every error (file:line:col, key) added. cfg is used to check department, service ids. */
struct rb_sla *rb_sla_load(const char *path, const struct rb_config *cfg, struct rb_errors *errs);
void rb_sla_free(struct rb_sla *sla);

/* The policy for a case: the first matching override, else the policy the rules named, else
 * "default". Never NULL when the file defines "default" (it must). */
const struct rb_sla_policy *rb_sla_pick(const struct rb_sla *sla, const char *department,
                                        const char *service, const char *kind,
                                        const char *rules_policy);

/* Deadlines of a case created at t (epoch seconds). */
void rb_sla_deadlines(const struct rb_sla *sla, const struct rb_sla_policy *p, int64_t t,
                      int64_t *ack_due, int64_t *resolve_due);

#endif
