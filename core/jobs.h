/* The durable jobs queue (DESIGN.md: "One queue for all deferred work"). Rows in table jobs
 * with a run_at; this module stores them. Claiming and running them is added with the SLA
 * engine. */
#ifndef RB_JOBS_H
#define RB_JOBS_H

#include "db.h"

/* Stores a job asynchronously: kind (e.g. "message.send"), payload_json (an object, or NULL
 * for {}), due after delay_s seconds, de-duplicated on dedup_key while an earlier job with the
 * same key is still pending (NULL: none). fn (may be NULL) gets the row {id} or, for a
 * duplicate, an empty result; err on failure. Returns as rb_db_query. */
int rb_jobs_enqueue(struct rb_db *db, const char *kind, const char *payload_json, double delay_s,
                    const char *dedup_key, rb_db_fn fn, void *arg);

#endif
