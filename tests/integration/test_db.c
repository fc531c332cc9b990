/* core/db/db.c against a real PostgreSQL: the pool on a libevent loop, batches, the wait queue,
 * timeouts, an outage in the middle (pg_ctl stop -m immediate) and recovery, LISTEN. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "base/common.h"
#include "base/log.h"
#include "db/db.h"
#include "pgtest.h"

/* Fails with both strings shown unless hay contains needle. */
#define assert_contains(hay, needle)                                                          \
    do {                                                                                      \
        const char *h_ = (hay), *n_ = (needle);                                               \
        if (!h_ || !strstr(h_, n_))                                                           \
            fail_msg("expected \"%s\" in: %s", n_, h_ ? h_ : "(null)");                      \
    } while (0)

static struct pgtest pgt;
static struct event_base *base;

/* ---------------------------------------------------------------------------------------- */
/* Loop helpers */

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *flag >= want or timeout_s passes. Returns 1 if reached. */
static int run_until(const int *flag, int want, double timeout_s)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    double deadline = rb_now_mono() + timeout_s;
    while (*flag < want && rb_now_mono() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return *flag >= want;
}

static void run_for(double seconds)
{
    int never = 0;
    run_until(&never, 1, seconds);
}

/* Runs the loop until pred(db) holds (looked at every 10 ms), at most timeout_s; returns it. */
static int run_until_pool(struct rb_db *db, int (*pred)(struct rb_db *), double timeout_s)
{
    for (double deadline = rb_now_mono() + timeout_s; !pred(db); run_for(0.01))
        if (rb_now_mono() >= deadline)
            return 0;
    return 1;
}

static int all_connected(struct rb_db *db)
{
    struct rb_db_stats st;
    rb_db_get_stats(db, &st);
    return st.connected == st.size;
}

static int one_busy(struct rb_db *db)
{
    struct rb_db_stats st;
    rb_db_get_stats(db, &st);
    return st.busy >= 1;
}

static int unavailable(struct rb_db *db)
{
    return !rb_db_available(db);
}

static int available(struct rb_db *db)
{
    return rb_db_available(db);
}

/* One query's outcome. */
struct qres {
    int calls;
    char *err;        /* copied */
    char *value;      /* copied: row 0, column 0 */
    int ntuples;
    double done_at;
};

static void qres_clear(struct qres *q)
{
    free(q->err);
    free(q->value);
    memset(q, 0, sizeof(*q));
}

static void query_cb(PGresult *res, const char *err, void *arg)
{
    struct qres *q = arg;
    q->calls++;
    q->done_at = rb_now_mono();
    if (err) {
        q->err = rb_strdup(err);
        assert_null(res);
        return;
    }
    assert_non_null(res);
    q->ntuples = PQntuples(res);
    if (q->ntuples > 0 && PQnfields(res) > 0)
        q->value = PQgetisnull(res, 0, 0) ? rb_strdup("<null>") : rb_strdup(PQgetvalue(res, 0, 0));
}

/* Runs one query to completion; q is filled. */
static void query_sync(struct rb_db *db, const char *sql, int n, const char *const *params,
                       struct qres *q)
{
    memset(q, 0, sizeof(*q));
    assert_int_equal(rb_db_query(db, sql, n, params, query_cb, q), RB_OK);
    assert_true(run_until(&q->calls, 1, 20));
    assert_int_equal(q->calls, 1);
}

static struct rb_db *pool_new(int size, size_t max_queue)
{
    struct rb_db *db = rb_db_new(base, pgt.conninfo, size, max_queue);
    assert_non_null(db);
    assert_int_equal(rb_db_start(db), RB_OK);
    return db;
}

static int setup(void **state)
{
    (void)state;
    rb_log_min_level = RB_LOG_ERROR;
    if (pgtest_start(&pgt) != 0)
        return -1;
    base = event_base_new();
    return base ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    event_base_free(base);
    pgtest_stop(&pgt);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Tests */

static void test_query_with_params(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(2, 100);
    char a[8] = "7", b[8] = "35";
    const char *params[] = {a, b};
    struct qres q;
    memset(&q, 0, sizeof(q));
    assert_int_equal(rb_db_query(db, "SELECT $1::int + $2::int", 2, params, query_cb, &q), RB_OK);
    /* The pool copied the parameters: changing ours now must not change the query. */
    strcpy(a, "1000");
    strcpy(b, "1000");
    assert_true(run_until(&q.calls, 1, 10));
    assert_null(q.err);
    assert_string_equal(q.value, "42");
    qres_clear(&q);

    const char *u[] = {"رابطہ"};
    query_sync(db, "SELECT $1::text || '!'", 1, u, &q);
    assert_null(q.err);
    assert_string_equal(q.value, "رابطہ!");
    qres_clear(&q);

    /* Sessions are in UTC. */
    query_sync(db, "SHOW TimeZone", 0, NULL, &q);
    assert_string_equal(q.value, "UTC");
    qres_clear(&q);
    rb_db_free(db);
}

static void test_null_params_are_sql_null(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(1, 100);
    const char *params[] = {NULL, "x"};
    struct qres q;
    query_sync(db, "SELECT ($1::text IS NULL)::text || '/' || ($2::text IS NULL)::text", 2, params,
               &q);
    assert_null(q.err);
    assert_string_equal(q.value, "true/false");
    qres_clear(&q);
    rb_db_free(db);
}

static void test_bad_sql_sets_err_and_null_result(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(1, 100);
    struct qres q;
    query_sync(db, "SELEC 1", 0, NULL, &q);
    assert_non_null(q.err);
    assert_contains(q.err, "syntax error");
    assert_contains(q.err, "SQLSTATE 42601");
    assert_null(q.value);
    qres_clear(&q);
    /* The same (only) connection still works. */
    query_sync(db, "SELECT 'ok'", 0, NULL, &q);
    assert_null(q.err);
    assert_string_equal(q.value, "ok");
    qres_clear(&q);
    struct rb_db_stats st;
    rb_db_get_stats(db, &st);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.queries, 1);
    rb_db_free(db);
}

struct bres {
    int calls, n, null_results;
    char *err;
    char *last_value; /* the last statement's row 0 col 0 */
};

static void batch_cb(PGresult **results, int n, const char *err, void *arg)
{
    struct bres *b = arg;
    b->calls++;
    b->n = n;
    b->err = err ? rb_strdup(err) : NULL;
    if (!results) {
        b->null_results = 1;
        return;
    }
    PGresult *last = results[n - 1];
    if (last && PQntuples(last) > 0)
        b->last_value = rb_strdup(PQgetvalue(last, 0, 0));
    for (int i = 0; i < n; i++)
        if (!results[i])
            b->null_results++;
}

static void prepared_sync(struct rb_db *db, const char *sql, int n, const char *const *params,
                          struct qres *q)
{
    memset(q, 0, sizeof(*q));
    assert_int_equal(rb_db_query_prepared(db, sql, n, params, query_cb, q), RB_OK);
    assert_true(run_until(&q->calls, 1, 20));
    assert_int_equal(q->calls, 1);
}

/* Prepared statements: prepared once per connection, then bound; a statement that does not
 * parse fails like an unnamed one and leaves nothing behind; more distinct texts than slots
 * still run; a new session (after the backend is killed) prepares again. */
static void test_prepared_statements(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(1, 100);
    struct qres q;
    const char *sql = "SELECT $1::int * 2";
    for (int i = 0; i < 10; i++) {
        char v[16], want[16];
        snprintf(v, sizeof(v), "%d", i);
        snprintf(want, sizeof(want), "%d", i * 2);
        const char *p[] = {v};
        prepared_sync(db, sql, 1, p, &q);
        assert_null(q.err);
        assert_string_equal(q.value, want);
        qres_clear(&q);
    }
    /* One prepared statement on the session, however many runs. */
    query_sync(db, "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int * 2'",
               0, NULL, &q);
    assert_string_equal(q.value, "1");
    qres_clear(&q);

    prepared_sync(db, "SELEC $1::int", 1, (const char *const[]){"1"}, &q);
    assert_non_null(q.err);
    assert_contains(q.err, "syntax error");
    qres_clear(&q);
    prepared_sync(db, "SELEC $1::int", 1, (const char *const[]){"1"}, &q); /* tried again */
    assert_non_null(q.err);
    assert_contains(q.err, "syntax error");
    qres_clear(&q);

    /* In a transaction batch, a failing earlier statement aborts the Parse: still clean. */
    struct rb_db_stmt bad[] = {
        {"SELECT 1/0", 0, NULL, 0},
        {"SELECT $1::text || 'x'", 1, (const char *const[]){"a"}, 1},
    };
    struct bres b = {0};
    assert_int_equal(rb_db_batch(db, bad, 2, 1, batch_cb, &b), RB_OK);
    assert_true(run_until(&b.calls, 1, 10));
    assert_non_null(b.err);
    assert_contains(b.err, "division by zero");
    free(b.err);
    free(b.last_value);
    prepared_sync(db, "SELECT $1::text || 'x'", 1, (const char *const[]){"a"}, &q);
    assert_null(q.err);
    assert_string_equal(q.value, "ax");
    qres_clear(&q);

    /* More distinct texts than slots: the rest run unnamed, all answer. */
    for (int i = 0; i < RB_DB_PREPARED_MAX + 10; i++) {
        char text[64], want[16];
        snprintf(text, sizeof(text), "SELECT %d + $1::int", i);
        snprintf(want, sizeof(want), "%d", i + 1);
        prepared_sync(db, text, 1, (const char *const[]){"1"}, &q);
        assert_null(q.err);
        assert_string_equal(q.value, want);
        qres_clear(&q);
    }
    query_sync(db, "SELECT count(*) FROM pg_prepared_statements", 0, NULL, &q);
    assert_int_equal(atoi(q.value), RB_DB_PREPARED_MAX);
    qres_clear(&q);

    /* The session dies: the next run prepares on the new session. */
    query_sync(db, "SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL, &q);
    qres_clear(&q);
    for (int tries = 0; tries < 50; tries++) {
        prepared_sync(db, sql, 1, (const char *const[]){"21"}, &q);
        if (!q.err)
            break;
        qres_clear(&q);
        run_for(0.1);
    }
    assert_null(q.err);
    assert_string_equal(q.value, "42");
    qres_clear(&q);
    rb_db_free(db);
}

/* Background requests (jobs) wait behind users' requests and never take the last free
 * connection: with a pool of 2 and four slow background queries waiting, a foreground query
 * made afterwards runs at once, and the background ones run one at a time. */
static void test_background_waits_behind_foreground(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(2, 100);
    struct qres warm;
    query_sync(db, "SELECT 1", 0, NULL, &warm);
    qres_clear(&warm);
    assert_true(run_until_pool(db, all_connected, 10)); /* both connections up */
    struct qres bg[4], fg;
    memset(bg, 0, sizeof(bg));
    memset(&fg, 0, sizeof(fg));
    double t0 = rb_now_mono();
    rb_db_background(db, 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rb_db_query(db, "SELECT pg_sleep(0.25)", 0, NULL, query_cb, &bg[i]),
                         RB_OK);
    rb_db_background(db, 0);
    assert_int_equal(rb_db_query(db, "SELECT 'user'", 0, NULL, query_cb, &fg), RB_OK);
    assert_true(run_until(&fg.calls, 1, 10));
    assert_string_equal(fg.value, "user");
    assert_int_equal(bg[0].calls, 0); /* answered while the first background query runs */
    for (int i = 0; i < 4; i++) {
        assert_true(run_until(&bg[i].calls, 1, 10));
        assert_null(bg[i].err);
    }
    /* one connection only for the background: four 0.25 s queries took >= 1 s */
    assert_true(bg[3].done_at - t0 >= 0.95);
    for (int i = 1; i < 4; i++)
        assert_true(bg[i].done_at >= bg[i - 1].done_at); /* in their order */
    for (int i = 0; i < 4; i++)
        qres_clear(&bg[i]);
    qres_clear(&fg);
    rb_db_free(db);
}

static char *count_rows(struct rb_db *db, const char *table)
{
    struct qres q;
    char *sql = rb_sprintf("SELECT count(*) FROM %s", table);
    query_sync(db, sql, 0, NULL, &q);
    free(sql);
    assert_null(q.err);
    char *v = q.value;
    q.value = NULL;
    qres_clear(&q);
    return v;
}

static void test_batch_in_transaction_commits(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(2, 100);
    struct qres q;
    query_sync(db, "CREATE TABLE batch_ok (id int PRIMARY KEY, v text)", 0, NULL, &q);
    assert_null(q.err);
    qres_clear(&q);

    const char *p1[] = {"1", "one"}, *p2[] = {"2", NULL};
    struct rb_db_stmt stmts[] = {
        /* the same text twice, prepared: one Parse, pipelined ahead of both */
        {"INSERT INTO batch_ok VALUES ($1, $2)", 2, p1, 1},
        {"INSERT INTO batch_ok VALUES ($1, $2)", 2, p2, 1},
        {"SELECT count(*) FROM batch_ok", 0, NULL, 0},
    };
    struct bres b = {0};
    assert_int_equal(rb_db_batch(db, stmts, 3, 1, batch_cb, &b), RB_OK);
    assert_true(run_until(&b.calls, 1, 10));
    assert_null(b.err);
    assert_int_equal(b.n, 3);
    assert_int_equal(b.null_results, 0);
    assert_string_equal(b.last_value, "2"); /* the batch sees its own inserts */
    free(b.last_value);
    char *n = count_rows(db, "batch_ok");
    assert_string_equal(n, "2");
    free(n);
    rb_db_free(db);
}

static void test_batch_failure_rolls_back_everything(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(2, 100);
    struct qres q;
    query_sync(db, "CREATE TABLE batch_fail (id int PRIMARY KEY)", 0, NULL, &q);
    qres_clear(&q);

    const char *p1[] = {"1"}, *p2[] = {"not a number"};
    struct rb_db_stmt stmts[] = {
        {"INSERT INTO batch_fail VALUES ($1)", 1, p1, 0},
        {"INSERT INTO batch_fail VALUES ($1::int)", 1, p2, 1},
        {"INSERT INTO batch_fail VALUES (3)", 0, NULL, 0},
    };
    struct bres b = {0};
    assert_int_equal(rb_db_batch(db, stmts, 3, 1, batch_cb, &b), RB_OK);
    assert_true(run_until(&b.calls, 1, 10));
    assert_non_null(b.err);
    assert_contains(b.err, "statement 2 of 3");
    assert_contains(b.err, "invalid input syntax for type integer");
    assert_int_equal(b.null_results, 1); /* results is NULL: nothing was committed */
    free(b.err);
    char *n = count_rows(db, "batch_fail");
    assert_string_equal(n, "0");
    free(n);

    /* No connection was left inside the failed transaction: busy both connections at once
     * (one would answer "current transaction is aborted"), and the server lists none as idle
     * in transaction (polled: a backend reports its state a moment after answering). */
    /* Both connections must be up first (the second may still be connecting on a busy
     * machine, and then only one query could be running). */
    for (double deadline = rb_now_mono() + 5; rb_now_mono() < deadline;) {
        struct rb_db_stats up;
        rb_db_get_stats(db, &up);
        if (up.connected == 2 && up.busy == 0)
            break;
        run_for(0.01);
    }
    for (int round = 0; round < 3; round++) {
        struct qres two[2];
        memset(two, 0, sizeof(two));
        for (int i = 0; i < 2; i++)
            assert_int_equal(rb_db_query(db, "SELECT 'fine' FROM pg_sleep(0.05)", 0, NULL,
                                         query_cb, &two[i]),
                             RB_OK);
        struct rb_db_stats st;
        rb_db_get_stats(db, &st);
        assert_int_equal(st.busy, 2);
        int done = 0;
        for (double deadline = rb_now_mono() + 5; done < 2 && rb_now_mono() < deadline;) {
            run_for(0.01);
            done = two[0].calls + two[1].calls;
        }
        for (int i = 0; i < 2; i++) {
            assert_null(two[i].err);
            assert_string_equal(two[i].value, "fine");
            qres_clear(&two[i]);
        }
    }
    for (double deadline = rb_now_mono() + 2;;) {
        query_sync(db,
                   "SELECT string_agg(state || ': ' || query, '; ') FROM pg_stat_activity "
                   "WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
                   0, NULL, &q);
        assert_null(q.err);
        if (strcmp(q.value, "<null>") == 0 || rb_now_mono() > deadline)
            break;
        qres_clear(&q);
        run_for(0.05);
    }
    assert_string_equal(q.value, "<null>");
    qres_clear(&q);

    /* Without txn each statement stands alone: 1 and 3 are committed. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(rb_db_batch(db, stmts, 3, 0, batch_cb, &b), RB_OK);
    assert_true(run_until(&b.calls, 1, 10));
    assert_non_null(b.err);
    assert_contains(b.err, "statement 2 of 3");
    assert_int_equal(b.null_results, 1); /* results[1] only */
    free(b.err);
    n = count_rows(db, "batch_fail");
    assert_string_equal(n, "2");
    free(n);
    rb_db_free(db);
}

#define MANY 40
static struct qres many[MANY];

static void test_many_concurrent_queries_beyond_pool_size(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(4, 1000);
    struct qres q;
    query_sync(db, "SELECT 1", 0, NULL, &q); /* let one connect */
    qres_clear(&q);
    assert_true(run_until_pool(db, all_connected, 10));
    struct rb_db_stats st;

    int done = 0;
    double t0 = rb_now_mono();
    char nums[MANY][16];
    for (int i = 0; i < MANY; i++) {
        snprintf(nums[i], sizeof(nums[i]), "%d", i);
        const char *p[] = {nums[i]};
        memset(&many[i], 0, sizeof(many[i]));
        assert_int_equal(rb_db_query(db, "SELECT $1::int * 2 FROM pg_sleep(0.05)", 1, p,
                                     query_cb, &many[i]),
                         RB_OK);
    }
    rb_db_get_stats(db, &st);
    assert_int_equal(st.busy, 4);
    assert_int_equal(st.waiting, MANY - 4);
    for (double deadline = t0 + 20; done < MANY && rb_now_mono() < deadline;) {
        run_for(0.01);
        done = 0;
        for (int i = 0; i < MANY; i++)
            done += many[i].calls;
    }
    double elapsed = rb_now_mono() - t0;
    assert_int_equal(done, MANY);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(many[i].calls, 1);
        assert_null(many[i].err);
        char want[16];
        snprintf(want, sizeof(want), "%d", i * 2);
        assert_string_equal(many[i].value, want);
        qres_clear(&many[i]);
    }
    /* 40 x 50 ms on 4 connections: at least 10 rounds (four at a time: busy was 4). */
    assert_true(elapsed >= 0.45);
    rb_db_get_stats(db, &st);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.busy, 0);
    rb_db_free(db);
}

static void test_queue_full_returns_eagain(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(1, 2);
    struct qres q;
    query_sync(db, "SELECT 1", 0, NULL, &q);
    qres_clear(&q);
    struct qres r[4];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 3; i++)
        assert_int_equal(rb_db_query(db, "SELECT pg_sleep(0.1)", 0, NULL, query_cb, &r[i]), RB_OK);
    /* one running, two waiting: the queue (max 2) is full */
    assert_int_equal(rb_db_query(db, "SELECT 1", 0, NULL, query_cb, &r[3]), RB_EAGAIN);
    const char *p[] = {"1"};
    struct rb_db_stmt s = {"SELECT $1", 1, p, 0};
    struct bres b = {0};
    assert_int_equal(rb_db_batch(db, &s, 1, 1, batch_cb, &b), RB_EAGAIN);
    int total = 0;
    for (double deadline = rb_now_mono() + 10; total < 3 && rb_now_mono() < deadline;) {
        run_for(0.01);
        total = r[0].calls + r[1].calls + r[2].calls;
    }
    assert_int_equal(total, 3);
    assert_int_equal(r[3].calls, 0); /* refused queries are never called back */
    assert_int_equal(b.calls, 0);
    for (int i = 0; i < 4; i++) {
        assert_null(r[i].err);
        qres_clear(&r[i]);
    }
    rb_db_free(db);
}

static void test_unavailable_fails_fast_and_not_reentrantly(void **state)
{
    (void)state;
    struct rb_db *db = rb_db_new(base, "host=/nonexistent-rabta-dir dbname=x", 2, 10);
    assert_non_null(db);
    assert_int_equal(rb_db_start(db), RB_OK);
    assert_true(run_until_pool(db, unavailable, 10));
    struct qres q = {0};
    assert_int_equal(rb_db_query(db, "SELECT 1", 0, NULL, query_cb, &q), RB_OK);
    assert_int_equal(q.calls, 0); /* never from inside rb_db_query */
    /* at once: well inside the 10 s connect timeout it would otherwise wait */
    assert_true(run_until(&q.calls, 1, 3));
    assert_non_null(q.err);
    assert_true(strncmp(q.err, "database unavailable: ", 22) == 0);
    assert_contains(q.err, "nonexistent-rabta-dir");
    qres_clear(&q);
    rb_db_free(db);
}

static void test_query_timeout_closes_connection_and_recovers(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(1, 10);
    rb_db_set_timeouts(db, 0, 0.3);
    struct qres q;
    double t0 = rb_now_mono();
    query_sync(db, "SELECT pg_sleep(5)", 0, NULL, &q);
    double elapsed = rb_now_mono() - t0;
    assert_non_null(q.err);
    /* it had reached the server: whether it took effect is not known */
    assert_string_equal(q.err, RB_DB_OUTCOME_UNKNOWN "query timed out");
    assert_true(rb_db_outcome_unknown(q.err));
    /* not before the timeout; that it ended the query (not pg_sleep's end) is the error */
    assert_true(elapsed >= 0.25 && elapsed < 5);
    qres_clear(&q);
    query_sync(db, "SELECT 'back'", 0, NULL, &q);
    assert_null(q.err);
    assert_string_equal(q.value, "back");
    qres_clear(&q);
    rb_db_free(db);
}

static void test_free_fails_pending_with_shutting_down(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(1, 10);
    struct qres q;
    query_sync(db, "SELECT 1", 0, NULL, &q);
    qres_clear(&q);
    struct qres r[3];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 3; i++)
        assert_int_equal(rb_db_query(db, "SELECT pg_sleep(5)", 0, NULL, query_cb, &r[i]), RB_OK);
    assert_true(run_until_pool(db, one_busy, 10)); /* one running, two waiting */
    rb_db_free(db);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_string_equal(r[i].err, "shutting down");
        qres_clear(&r[i]);
    }
}

static void test_connect_blocking(void **state)
{
    (void)state;
    char *err = NULL;
    PGconn *c = rb_db_connect_blocking(pgt.conninfo, 5, &err);
    assert_non_null(c);
    assert_null(err);
    PQfinish(c);

    c = rb_db_connect_blocking("host=/nonexistent-rabta-dir", 5, &err);
    assert_null(c);
    assert_non_null(err);
    assert_contains(err, "could not connect to the database");
    free(err);

    /* A loopback listener that never answers: the timeout must fire. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s, 4), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    char ci[128];
    snprintf(ci, sizeof(ci), "hostaddr=127.0.0.1 port=%d dbname=x sslmode=disable gssencmode=disable",
             ntohs(a.sin_port));
    double t0 = rb_now_mono();
    c = rb_db_connect_blocking(ci, 0.3, &err);
    double elapsed = rb_now_mono() - t0;
    assert_null(c);
    assert_contains(err, "within"); /* ended by the 0.3 s deadline, not by anything else */
    assert_true(elapsed >= 0.25);
    free(err);

    /* The pool's connect timeout: still connecting after it counts as a failure. */
    struct rb_db *db = rb_db_new(base, ci, 1, 10);
    rb_db_set_timeouts(db, 0.3, 0);
    rb_db_start(db);
    struct qres q = {0};
    assert_int_equal(rb_db_query(db, "SELECT 1", 0, NULL, query_cb, &q), RB_OK);
    assert_true(run_until(&q.calls, 1, 3));
    assert_contains(q.err, "database unavailable: timed out connecting");
    qres_clear(&q);
    rb_db_free(db);
    close(s);
}

/* LISTEN callback log. */
struct notes {
    int calls, missed;
    char last[64];
};

static void notify_cb(const char *channel, const char *payload, void *arg)
{
    struct notes *n = arg;
    assert_string_equal(channel, "rb_test");
    if (!payload) {
        n->missed++;
        return;
    }
    n->calls++;
    snprintf(n->last, sizeof(n->last), "%s", payload);
}

/* Sends NOTIFY rb_test payload until it is heard (the LISTEN may still be on its way up),
 * at most 10 s. */
static void notify_until_heard(struct rb_db *db, struct notes *n, const char *payload)
{
    int before = n->calls;
    const char *p[] = {payload};
    for (int i = 0; i < 50 && n->calls == before; i++) {
        struct qres q;
        query_sync(db, "SELECT pg_notify('rb_test', $1)", 1, p, &q);
        qres_clear(&q);
        run_until(&n->calls, before + 1, 0.2);
    }
    assert_true(n->calls > before);
    assert_string_equal(n->last, payload);
}

static void test_outage_fails_fast_and_recovers_with_listen(void **state)
{
    (void)state;
    struct rb_db *db = pool_new(3, 100);
    struct notes notes = {0};
    assert_int_equal(rb_db_listen(db, "rb_test", notify_cb, &notes), RB_OK);
    assert_int_equal(rb_db_listen(db, "", notify_cb, &notes), RB_EINVAL);
    struct qres q;
    query_sync(db, "SELECT 1", 0, NULL, &q);
    qres_clear(&q);
    assert_true(run_until_pool(db, all_connected, 10));
    assert_int_equal(rb_db_available(db), 1);

    notify_until_heard(db, &notes, "hello"); /* the LISTEN is up */
    assert_int_equal(notes.missed, 0);

    /* A query in flight when the server goes. */
    struct qres inflight = {0};
    assert_int_equal(rb_db_query(db, "SELECT pg_sleep(30)", 0, NULL, query_cb, &inflight),
                     RB_OK);
    assert_true(run_until_pool(db, one_busy, 10));
    assert_int_equal(pgtest_kill(&pgt), 0);

    /* Idle connections notice at once: not after the 30 s query timeout. */
    assert_true(run_until_pool(db, unavailable, 10));
    assert_true(run_until(&inflight.calls, 1, 10));
    assert_int_equal(inflight.calls, 1);
    assert_non_null(inflight.err);
    qres_clear(&inflight);

    /* New queries fail fast (not after the 10 s connect timeout). */
    for (int i = 0; i < 3; i++) {
        memset(&q, 0, sizeof(q));
        assert_int_equal(rb_db_query(db, "SELECT 1", 0, NULL, query_cb, &q), RB_OK);
        assert_true(run_until(&q.calls, 1, 3));
        assert_non_null(q.err);
        assert_true(strncmp(q.err, "database unavailable: ", 22) == 0);
        qres_clear(&q);
    }

    /* Back: the pool recovers by itself. */
    run_for(0.5); /* let the back-off grow a little */
    assert_int_equal(pgtest_restart(&pgt), 0);
    assert_true(run_until_pool(db, available, 30));
    query_sync(db, "SELECT 'recovered'", 0, NULL, &q);
    assert_null(q.err);
    assert_string_equal(q.value, "recovered");
    qres_clear(&q);
    assert_true(run_until_pool(db, all_connected, 10));
    struct rb_db_stats st;
    rb_db_get_stats(db, &st);
    assert_true(st.reconnects >= 3);

    /* LISTEN came back too, and said that notifications may have been missed. */
    assert_true(run_until(&notes.missed, 1, 10));
    notify_until_heard(db, &notes, "again");
    rb_db_free(db);
}


/* ---------------------------------------------------------------------------------------- */
/* rb_pgembed */

static void test_pgembed_reuses_running_server_and_leaves_it_running(void **state)
{
    (void)state;
    char *err = NULL;
    struct rb_pgembed *again = rb_pgembed_start(pgt.dir, NULL, &err);
    assert_non_null(again);
    assert_null(err);
    assert_string_equal(rb_pgembed_conninfo(again), pgt.conninfo);
    char want[256];
    snprintf(want, sizeof(want), "host=%s/pg/run dbname=rabta user=postgres", pgt.dir);
    assert_string_equal(rb_pgembed_conninfo(again), want);
    rb_pgembed_stop(again); /* did not start it: must not stop it */
    PGconn *c = rb_db_connect_blocking(pgt.conninfo, 5, &err);
    assert_non_null(c);
    PGresult *r = PQexec(c, "SELECT current_setting('listen_addresses') || '/' || "
                            "current_setting('fsync')");
    assert_string_equal(PQgetvalue(r, 0, 0), "/on"); /* socket only, fsync on */
    PQclear(r);
    PQfinish(c);
}

static void write_script(const char *dir, const char *name, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(path, 0755);
}

static void make_dir(char *tmpl)
{
    assert_non_null(mkdtemp(tmpl));
    chmod(tmpl, 0755);
}

static void test_pgembed_errors_are_clear(void **state)
{
    (void)state;
    char state_dir[] = "/tmp/rbpg-st-XXXXXX";
    make_dir(state_dir);
    char *err = NULL;

    /* A pg_bindir without the programs. */
    assert_null(rb_pgembed_start(state_dir, "/nonexistent-bin", &err));
    assert_contains(err, "/nonexistent-bin does not hold initdb, pg_ctl and postgres");
    free(err);

    /* initdb fails: its output is shown. */
    char bin[] = "/tmp/rbpg-bin-XXXXXX";
    make_dir(bin);
    write_script(bin, "initdb", "echo 'initdb: error: fake initdb trouble'; exit 1");
    write_script(bin, "pg_ctl", "exit 1");
    write_script(bin, "postgres", "exit 1");
    assert_null(rb_pgembed_start(state_dir, bin, &err));
    assert_contains(err, "initdb failed");
    assert_contains(err, "fake initdb trouble");
    free(err);

    /* The server does not start: the end of postgres.log is shown. */
    write_script(bin, "initdb", "mkdir -p \"$2\" && echo 15 > \"$2/PG_VERSION\" && "
                                "touch \"$2/postgresql.conf\"");
    write_script(bin, "pg_ctl", "echo 'FATAL:  fake start failure' >> \"$4\"; exit 1");
    assert_null(rb_pgembed_start(state_dir, bin, &err));
    assert_contains(err, "PostgreSQL did not start");
    assert_contains(err, "postgres.log ends with: FATAL:  fake start failure");
    free(err);
    pgtest_rm_rf(bin);
    pgtest_rm_rf(state_dir);

    /* As root, a state_dir the postgres user cannot reach is named. */
    if (geteuid() == 0) {
        char closed[] = "/tmp/rbpg-closed-XXXXXX";
        assert_non_null(mkdtemp(closed)); /* 0700, root's */
        char sd[128];
        snprintf(sd, sizeof(sd), "%s/state", closed);
        assert_null(rb_pgembed_start(sd, NULL, &err));
        char want[160];
        snprintf(want, sizeof(want), "directory %s is not reachable by the postgres user", closed);
        assert_contains(err, want);
        free(err);
        pgtest_rm_rf(closed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_with_params),
        cmocka_unit_test(test_null_params_are_sql_null),
        cmocka_unit_test(test_bad_sql_sets_err_and_null_result),
        cmocka_unit_test(test_batch_in_transaction_commits),
        cmocka_unit_test(test_prepared_statements),
        cmocka_unit_test(test_background_waits_behind_foreground),
        cmocka_unit_test(test_batch_failure_rolls_back_everything),
        cmocka_unit_test(test_many_concurrent_queries_beyond_pool_size),
        cmocka_unit_test(test_queue_full_returns_eagain),
        cmocka_unit_test(test_unavailable_fails_fast_and_not_reentrantly),
        cmocka_unit_test(test_query_timeout_closes_connection_and_recovers),
        cmocka_unit_test(test_free_fails_pending_with_shutting_down),
        cmocka_unit_test(test_connect_blocking),
        cmocka_unit_test(test_outage_fails_fast_and_recovers_with_listen),
        cmocka_unit_test(test_pgembed_reuses_running_server_and_leaves_it_running),
        cmocka_unit_test(test_pgembed_errors_are_clear),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
