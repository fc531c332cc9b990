/* core/db/: PostgreSQL. The asynchronous connection pool on the loop (db), the embedded private
 * cluster (pgembed), the numbered migrations applied at start (migrate). Calls: base, config
 * (its error list). */
/* PostgreSQL from the event loop: non-blocking libpq connections in a small pool, queries with
 * parameters and a callback, pipelined batches (optionally as one transaction).
 *
 * When the database is unreachable, queries fail at once with RB_EUNAVAIL through their
 * callback (no hang); the pool keeps reconnecting with back-off and recovers by itself. */
#ifndef RB_DB_H
#define RB_DB_H

#include <stddef.h>
#include <libpq-fe.h>
#include "base/common.h"

struct event_base;
struct rb_db;

/* res is borrowed (valid until the callback returns) and NULL on failure, with err set to a
 * one-line message. For a batch, results[i] belongs to stmts[i]. */
typedef void (*rb_db_fn)(PGresult *res, const char *err, void *arg);
typedef void (*rb_db_batch_fn)(PGresult **results, int n, const char *err, void *arg);

struct rb_db_stmt {
    const char *sql;
    int nparams;
    const char *const *params; /* text format; NULL entries are SQL NULL */
    int prepare; /* 1: a named prepared statement per connection (see rb_db_query_prepared) */
};

struct rb_db_stats {
    int size;        /* configured connections */
    int connected;   /* connections up */
    int busy;        /* connections running a query */
    size_t waiting;  /* queries queued for a connection */
    unsigned long long queries, failures, reconnects;
};

/* conninfo is copied. Connections are opened by rb_db_start, never blocking. */
struct rb_db *rb_db_new(struct event_base *base, const char *conninfo, int pool_size,
                        size_t max_queue);
int rb_db_start(struct rb_db *db);
void rb_db_free(struct rb_db *db); /* fails pending queries with "shutting down" */

/* sql and params are copied. Returns RB_OK (fn will be called exactly once, never from inside
 * this call), or RB_EAGAIN when the wait queue is full, RB_EINVAL for bad arguments, or
 * RB_EUNAVAIL once rb_db_free has begun (fn is not called). Not for COPY. fn must not call
 * rb_db_free. */
int rb_db_query(struct rb_db *db, const char *sql, int nparams, const char *const *params,
                rb_db_fn fn, void *arg);
/* As rb_db_query, for a hot statement with a fixed text: each connection parses and plans it
 * once (PQsendPrepare, pipelined ahead of its first use) and then only binds and executes it.
 * Parsing and planning were a third of PostgreSQL's CPU per submitted case. Only for SQL whose
 * text does not vary (each distinct text is a statement kept on every connection, at most
 * RB_DB_PREPARED_MAX of them; beyond that it runs unnamed) and whose best plan does not depend
 * on the parameters' values (PostgreSQL may switch to a generic plan after five runs): not
 * for "$1 IS NULL OR ..." filters. */
#define RB_DB_PREPARED_MAX 64
int rb_db_query_prepared(struct rb_db *db, const char *sql, int nparams,
                         const char *const *params, rb_db_fn fn, void *arg);
/* Runs n statements back to back in pipeline mode on one connection; with txn they are one
 * transaction (BEGIN/COMMIT added; any failure rolls back and err names the statement).
 * With txn, results is NULL whenever err is set (nothing was committed). Without txn each
 * statement commits on its own; err names the first that failed and results[i] is NULL for
 * every statement that failed. */
int rb_db_batch(struct rb_db *db, const struct rb_db_stmt *stmts, int n, int txn,
                rb_db_batch_fn fn, void *arg);

/* Background work: requests made between rb_db_background(db, 1) and (db, 0), and those made
 * from the callbacks of background requests, wait behind every request made otherwise (the
 * users') and take at most half the pool (at least one connection). core/jobs/jobs.c runs job handlers in
 * it, so a backlog of deferred work never delays an answer to a citizen. Nests. */
void rb_db_background(struct rb_db *db, int enter);

/* Jobs queued by this pool's own statements (migrations 0018, 0023: the jobs trigger tells
 * pool sessions by a notice instead of NOTIFY, which would serialise their commits): once the
 * request that queued them is complete, fn gets each kind (NULL: one or more kinds unknown)
 * with its earliest run_at (epoch seconds). One hook; core/jobs/jobs.c sets it. */
typedef void (*rb_db_jobs_fn)(const char *kind, double due_epoch, void *arg);
void rb_db_on_jobs(struct rb_db *db, rb_db_jobs_fn fn, void *arg);

/* The err of a request whose statements had reached the server when its connection was lost
 * or timed out starts with this: they may have been committed or not (a write's outcome is
 * unknown; say so, never "nothing was saved"). Same text as RB_OUTCOME_UNKNOWN in
 * rabta/plugin.h, which plugins see. */
#define RB_DB_OUTCOME_UNKNOWN "outcome unknown: "
int rb_db_outcome_unknown(const char *err); /* 1 when err starts with RB_DB_OUTCOME_UNKNOWN */

int rb_db_available(const struct rb_db *db); /* 1 if at least one connection is up */
void rb_db_get_stats(const struct rb_db *db, struct rb_db_stats *out);

/* Start-up only (before the loop runs): a blocking connection with a timeout. Returns NULL
 * and a new message in *err (caller frees) on failure. */
PGconn *rb_db_connect_blocking(const char *conninfo, double timeout_s, char **err);

/* Timeouts for the pool: connecting (default 10 s) and a query from the moment it was
 * submitted, queue wait included (default 30 s; on expiry the connection running it is closed
 * and err is "query timed out"). Values <= 0 leave the setting unchanged. */
void rb_db_set_timeouts(struct rb_db *db, double connect_s, double query_s);

/* LISTEN on channel over a dedicated extra connection (not one of the pool's). fn is called
 * with each NOTIFY payload (borrowed strings, valid until fn returns) and, after that
 * connection was lost and re-established, once with payload NULL: notifications may have been
 * missed meanwhile. channel is copied. Returns RB_OK or RB_EINVAL (empty or > 63 bytes). */
typedef void (*rb_db_notify_fn)(const char *channel, const char *payload, void *arg);
int rb_db_listen(struct rb_db *db, const char *channel, rb_db_notify_fn fn, void *arg);

/* A growing string, for PostgreSQL array literals passed as one text parameter ("{...}"):
 * start with rb_sbuf_puts(&b, "{"), add elements with rb_sbuf_elem (NULL is SQL NULL; "," is
 * added after the first), end with "}". b.p is owned by the caller (free). */
struct rb_sbuf {
    char *p; /* owned */
    size_t n, cap;
};
void rb_sbuf_putn(struct rb_sbuf *b, const char *s, size_t n);
void rb_sbuf_puts(struct rb_sbuf *b, const char *s);
void rb_sbuf_elem(struct rb_sbuf *b, const char *s);

#endif
