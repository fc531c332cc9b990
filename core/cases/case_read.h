/* Reading cases by tracking number, in batches: every look-up that arrives in one turn of
 * the event loop is answered by one query (tracking_no = ANY($1)), so that public status
 * look-ups cost a fraction of a query each under load. */
#ifndef RB_CASE_READ_H
#define RB_CASE_READ_H

#include <stddef.h>
#include "base/tracking.h"

/* SQL: may the department see the complainant's contact (phone, e-mail, name) of case c?
 * Only when the citizen agreed to share it, or when the case is neither anonymous nor about
 * a named official (DESIGN.md, privacy). One definition for the staff API and deliveries. */
#define RB_SQL_CONTACT_VISIBLE                                                                \
    "(c.share_contact OR (NOT c.anonymous AND c.names_official IS NULL))"

struct event_base;
struct rb_db;
struct rb_case_read;

/* A case as the public may see it, plus what the caller needs to check who is asking. */
struct rb_case_status {
    long long id;
    long long citizen_id; /* 0 when anonymous or unknown */
    char tracking_no[RB_TRACKING_LEN];
    char kind[16];
    char status[24];
    char service[64];     /* "" when none */
    char department[64];  /* "" when not routed */
    char created_at[32];  /* ISO 8601 UTC */
    char updated_at[32];
    char resolve_due_at[32]; /* "" when no deadline */
    char phone_last4[5];  /* "" when the citizen has no phone */
    char sla[160];        /* {"deadline", "time_left", "paused"} as JSON (rabta_sla_view) */
};

/* st is NULL when there is no such case (err NULL) or the database failed (err set). */
typedef void (*rb_case_status_fn)(const struct rb_case_status *st, const char *err, void *arg);

struct rb_case_read *rb_case_read_new(struct event_base *base, struct rb_db *db);
void rb_case_read_free(struct rb_case_read *r); /* pending look-ups fail with "shutting down" */

/* tracking must be canonical (rb_tracking_parse). fn is called exactly once, later.
 * RB_OK, or RB_EAGAIN when too many look-ups are waiting (fn not called). */
int rb_case_status_get(struct rb_case_read *r, const char *tracking, rb_case_status_fn fn,
                       void *arg);
size_t rb_case_read_pending(const struct rb_case_read *r);

#endif
