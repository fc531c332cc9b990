/* The durable jobs queue: enqueueing. */
#include "jobs.h"

#include <stdio.h>

#include "log.h"

static const char enqueue_sql[] =
    "INSERT INTO jobs (kind, payload, run_at, dedup_key) "
    "VALUES ($1, COALESCE($2::jsonb, '{}'::jsonb), now() + make_interval(secs => $3::float8), $4) "
    "ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running') DO NOTHING "
    "RETURNING id";

static void enqueue_done(PGresult *res, const char *err, void *arg)
{
    if (err)
        rb_warn("jobs", "could not store job: %s", err);
    (void)res;
    (void)arg;
}

int rb_jobs_enqueue(struct rb_db *db, const char *kind, const char *payload_json, double delay_s,
                    const char *dedup_key, rb_db_fn fn, void *arg)
{
    char delay[32];
    if (!kind || !*kind || delay_s < 0 || delay_s != delay_s)
        return RB_EINVAL;
    snprintf(delay, sizeof(delay), "%.3f", delay_s);
    const char *params[4] = {kind, payload_json, delay, dedup_key};
    return rb_db_query(db, enqueue_sql, 4, params, fn ? fn : enqueue_done, arg);
}
