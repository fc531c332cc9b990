/* core/jobs/: the durable queue of deferred work in PostgreSQL (jobs): claims, retries, pacing
 * per kind, wake-ups by LISTEN/NOTIFY. Calls: base, db. */
/* The durable jobs queue (DESIGN.md: "One queue for all deferred work").
 *
 * Every piece of deferred work — an SLA check, an outgoing SMS, a webhook delivery, an
 * outreach call — is a row in table jobs with a run_at. Each process keeps ONE libevent timer
 * for the earliest due row, claims due rows with FOR UPDATE SKIP LOCKED (so several processes
 * never run the same job at once), and is woken through LISTEN/NOTIFY when anyone adds an
 * earlier job. Memory does not grow with the number of queued jobs.
 *
 * A run ends with rb_job_finish(): success deletes the row (its history belongs in
 * case_events); a failure re-queues it with exponential back-off until max_attempts, then it
 * stays as "dead" for an operator (`rabtad jobs retry ID`). A run that never finishes (the
 * process died) is re-queued after the lease expires. */
#ifndef RB_JOBS_H
#define RB_JOBS_H

#include <rabta/plugin.h>
#include "db/db.h"

struct event_base;
struct rb_metrics;
struct rb_jobs;
struct rb_job_run;

/* One claimed job, as its handler sees it: struct rb_job_info of the plugin ABI, so core
 * and plugin handlers share one shape. Strings are borrowed: valid until rb_job_finish. */
#define rb_job rb_job_info

/* A handler must call rb_job_finish(run, ...) exactly once, now or later. */
typedef rb_plugin_job_fn rb_job_fn;

struct rb_jobs_options {
    int concurrency;    /* jobs running at once in this process; default 256 */
    int batch;          /* rows claimed per query; default 256 */
    double lease;       /* seconds before a running job is presumed lost; default 300 */
    double backoff_base;/* first retry after this many seconds; default 10 */
    double backoff_max; /* cap; default 3600 */
    const char *worker_id; /* recorded in locked_by; default "host:pid" */
};

/* db and base are borrowed; m may be NULL. */
struct rb_jobs *rb_jobs_new(struct event_base *base, struct rb_db *db, struct rb_metrics *m,
                            const struct rb_jobs_options *opt);
/* Registers the handler for kind (copied). Call before rb_jobs_start. */
int rb_jobs_register(struct rb_jobs *jobs, const char *kind, rb_job_fn fn, void *arg);
/* A batch handler receives up to max claimed runs of its kind at once, oldest first (runs is
 * borrowed for the call; each run stays valid until it is finished) and must call
 * rb_job_finish() exactly once for each, now or later. For handlers that do their work set by
 * set (one query for the whole batch) instead of one transaction per job. */
typedef void (*rb_job_batch_fn)(struct rb_job_run **runs, size_t n, void *arg);
/* Registers a batch handler for kind (copied); max >= 1. Call before rb_jobs_start. */
int rb_jobs_register_batch(struct rb_jobs *jobs, const char *kind, rb_job_batch_fn fn,
                           size_t max, void *arg);
/* Paces kind (registered before): at most `rate` runs start a second, in bursts of at most
 * `burst` (a virtual schedule, GCRA, kept in table job_paces and shared by every process on
 * the database: N processes together keep the one rate). The runner claims them no more than a
 * second before their turn, holds them and starts each at its time, so a backlog of a paced
 * kind (an SMS gateway's queue) costs neither a claim nor a write per job while it waits;
 * runs still waiting when the process stops go back to the queue. May be called again, also
 * after rb_jobs_start, to change the pace (a reload). RB_OK, or RB_EINVAL (no such handler, rate outside 0.001..100000, burst outside 1..100000). */
int rb_jobs_pace(struct rb_jobs *jobs, const char *kind, double rate, int burst);
/* The claimed job of a run. Borrowed: valid until rb_job_finish(run, ...). */
const struct rb_job *rb_job_run_info(const struct rb_job_run *run);

/* Starts LISTEN, recovers expired leases and arms the timer. */
int rb_jobs_start(struct rb_jobs *jobs);
/* Stops claiming; runs already handed to handlers may still finish. */
void rb_jobs_stop(struct rb_jobs *jobs);
/* Runs handed to handlers and not finished, plus queries of ours in flight: shutdown waits
 * for this to reach 0. */
size_t rb_jobs_pending(const struct rb_jobs *jobs);
void rb_jobs_free(struct rb_jobs *jobs);

/* Ends a run. ok: 1 success; 0 failure with error (copied; may be NULL) and retry_after
 * seconds (< 0: use the back-off schedule; a permanent failure passes permanent = 1). */
void rb_job_finish(struct rb_job_run *run, int ok, const char *error, double retry_after,
                   int permanent);

/* The run may last longer than the lease (a phone call): until it is finished, this process
 * renews its lease with the lease recovery (every lease / 4, at most 5 s), so no other process
 * takes it while this one lives; if this process dies, the lease runs out as usual. */
void rb_job_hold(struct rb_job_run *run);

/* Ends a run that did nothing and must wait (quiet hours): back to the queue after delay
 * seconds, its attempt not counted; why (copied; may be NULL) becomes last_error. */
void rb_job_postpone(struct rb_job_run *run, double delay, const char *why);

/* Ends a successful run whose row the handler deleted itself, in the same transaction as its
 * work ("DELETE FROM jobs WHERE id = ANY(...) AND state = 'running'" in its statement), so
 * that the work and the end of the job commit together: a crash after the commit cannot run
 * the work again, and no separate delete is needed. */
void rb_job_finish_deleted(struct rb_job_run *run);

/* Stores a job asynchronously: kind (e.g. "message.send"), payload_json (an object, or NULL
 * for {}), due after delay_s seconds, de-duplicated on dedup_key while an earlier job with the
 * same key is still queued or running (NULL: none). fn (may be NULL) gets the row {id} or, for
 * a duplicate, an empty result; err on failure. Returns as rb_db_query. */
int rb_jobs_enqueue(struct rb_db *db, const char *kind, const char *payload_json, double delay_s,
                    const char *dedup_key, rb_db_fn fn, void *arg);

/* The SQL that enqueues, for callers that add jobs inside their own transaction (a batch):
 * parameters $1 kind, $2 payload json text or NULL, $3 delay seconds, $4 dedup key or NULL. */
extern const char rb_jobs_enqueue_sql[];

#endif
