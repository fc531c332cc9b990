/* PostgreSQL from the event loop: a small pool of non-blocking libpq connections.
 *
 * Each connection is in exactly one state and sits on that state's list; conn_move() is the
 * only function that moves it (pgbouncer's change_server_state):
 *
 *   DOWN ──timer──► CONNECTING ──ok──► IDLE ◄──done──► BUSY
 *     ▲                 │ fail           │ EOF           │ EOF / timeout
 *     └─────────────────┴────────────────┴───────────────┘
 *
 * The LISTEN connection walks the same states, but parks in LISTENING instead of IDLE and
 * never takes queries. Every request runs in pipeline mode: a query is [stmt, Sync]; a batch
 * is [BEGIN, stmts..., COMMIT, Sync] with txn, [stmt, Sync]... without. A connection left
 * inside a transaction after a request is rolled back before it takes the next one.
 *
 * Callbacks run from event handlers, never from inside rb_db_query/rb_db_batch: a request
 * that fails while the caller is still inside the API goes on the done list, which a
 * zero-timeout event drains. */
#include "db/db.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/log.h"

#define DB_CTX "db"
#define DB_BACKOFF_FIRST 0.1
#define DB_BACKOFF_MAX 5.0
#define JOBS_SEEN_MAX 8 /* kinds remembered per request (RBJ01 notices) */

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_IDLE, CONN_BUSY, CONN_LISTENING, CONN_NSTATES };
enum conn_role { ROLE_POOL, ROLE_LISTEN };
enum req_kind { REQ_QUERY, REQ_BATCH, REQ_LISTEN, REQ_ROLLBACK };

/* Pseudo-items of a request's pipeline besides its statements (>= 0). */
#define ITEM_SYNC (-1)
#define ITEM_BEGIN (-2)
#define ITEM_COMMIT (-3)

struct db_stmt {
    char *sql;      /* owned */
    int nparams;
    char **params;  /* owned, each owned; NULL entries are SQL NULL */
    int prepare;    /* run as a named prepared statement */
    int prep;       /* while sent: 0 no Parse sent ahead; 1 its result is awaited; 2 read */
    int slot;       /* the connection's prepared slot when prep > 0 */
};

/* A statement prepared on one connection: "rbN", N its slot. */
struct db_prepared {
    uint64_t hash;
    char *sql; /* owned; NULL: free slot */
    int ready; /* the Parse succeeded (until then a failure frees the slot) */
};

struct db_req {
    struct db_req *next;
    enum req_kind kind;
    struct db_stmt *stmts; /* owned */
    int n, txn;
    rb_db_fn fn;
    rb_db_batch_fn bfn;
    void *arg;
    double deadline;       /* monotonic */
    int bg;                /* background work (jobs): waits behind requests for users */
    /* While running. */
    PGresult **results;    /* owned; one per statement */
    int pos, nitems;       /* next pipeline item to read; items in all */
    char *err;             /* owned; first failure */
};

struct db_conn {
    struct db_conn *prev, *next; /* on db->lists[state] */
    struct rb_db *db;            /* borrowed */
    enum conn_state state;
    enum conn_role role;
    PGconn *pg;                  /* owned; NULL when DOWN */
    struct event *ev;            /* owned; I/O on PQsocket(pg) */
    int ev_fd;
    short ev_what;
    struct event *timer;         /* owned; reconnect, connect timeout or query timeout */
    struct db_req *req;          /* owned; the request running (BUSY) */
    double backoff;              /* seconds before the next reconnect attempt */
    int ever_connected;
    int tell_missed; /* listener: call fns with NULL once the LISTENs are confirmed */
    int id;
    /* The kinds of jobs our request queued, each with its earliest run_at (RBJ01 notices);
     * past JOBS_SEEN_MAX kinds, the last entry stands for all the rest (kind ""). */
    struct jobs_seen { char kind[64]; double due; } jobs_seen[JOBS_SEEN_MAX];
    int njobs_seen;
    struct db_prepared prepared[RB_DB_PREPARED_MAX]; /* of this session; cleared on close */
};

/* Adds a (kind, due) RBJ01 notice to what the request queued. */
static void jobs_seen_add(struct db_conn *c, const char *kind, double due)
{
    if (!kind || strlen(kind) >= sizeof(c->jobs_seen[0].kind))
        kind = "";
    int i;
    for (i = 0; i < c->njobs_seen; i++)
        if (strcmp(c->jobs_seen[i].kind, kind) == 0)
            break;
    if (i == c->njobs_seen) {
        if (c->njobs_seen == JOBS_SEEN_MAX) {
            i = JOBS_SEEN_MAX - 1;
            c->jobs_seen[i].kind[0] = '\0'; /* one of several kinds */
        } else {
            c->njobs_seen++;
            snprintf(c->jobs_seen[i].kind, sizeof(c->jobs_seen[i].kind), "%s", kind);
            c->jobs_seen[i].due = due;
        }
    }
    if (due < c->jobs_seen[i].due)
        c->jobs_seen[i].due = due;
}

struct db_listen {
    char *channel; /* owned */
    rb_db_notify_fn fn;
    void *arg;
};

struct rb_db {
    struct event_base *base; /* borrowed */
    char *conninfo;          /* owned */
    int pool_size;
    size_t max_queue;
    double connect_timeout, query_timeout;
    struct db_conn *conns;       /* owned; pool_size of them */
    struct db_conn *lists[CONN_NSTATES];
    int count[CONN_NSTATES];     /* pool connections only */
    struct db_conn *listener;    /* owned; NULL until rb_db_listen */
    struct db_listen *listens;   /* owned */
    int nlistens, listened;      /* registered; LISTENed on the current connection */
    struct db_req *qhead, *qtail; /* owned; waiting for a connection */
    size_t nqueue;
    struct event *qtimer;        /* owned; expires the queue head */
    struct db_req *dhead, *dtail; /* owned; failed inside the API, to be called back */
    struct event *defer;         /* owned */
    int started, closing, unavailable;
    int api_depth, cb_depth;
    int bg_depth;                /* > 0: requests made now are background (rb_db_background) */
    struct db_req *qfg_last;     /* the last foreground request in the wait queue */
    char *last_error;            /* owned; last connection failure */
    rb_db_jobs_fn jobs_fn;       /* told of jobs our own statements queued */
    void *jobs_arg;
    unsigned long long queries, failures, reconnects;
};

static void conn_connect(struct db_conn *c);
static void conn_broken(struct db_conn *c, const char *msg);
static void conn_idle(struct db_conn *c);
static void db_dispatch(struct rb_db *db);

/* ---------------------------------------------------------------------------------------- */
/* Helpers */

/* Returns a new one-line copy of a libpq message: newlines and tabs become spaces, runs of
 * spaces collapse, the ends are trimmed. */
static char *one_line(const char *msg)
{
    if (!msg || !*msg)
        return rb_strdup("unknown error");
    size_t len = strlen(msg);
    char *out = rb_malloc(len + 1);
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = msg[i];
        if (ch == '\n' || ch == '\r' || ch == '\t')
            ch = ' ';
        if (ch == ' ' && (j == 0 || out[j - 1] == ' '))
            continue;
        out[j++] = ch;
    }
    while (j > 0 && out[j - 1] == ' ')
        j--;
    out[j] = '\0';
    if (j == 0) {
        free(out);
        return rb_strdup("unknown error");
    }
    return out;
}

/* Returns a new message for a failed result: "<primary> (SQLSTATE xxxxx)". */
static char *result_error(const PGresult *res, PGconn *pg)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!primary) {
        const char *m = res ? PQresultErrorMessage(res) : "";
        return one_line(*m ? m : PQerrorMessage(pg));
    }
    char *p = one_line(primary);
    if (!state)
        return p;
    char *out = rb_sprintf("%s (SQLSTATE %s)", p, state);
    free(p);
    return out;
}

static void set_timer(struct event *ev, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    evtimer_add(ev, &tv);
}

static void notice_processor(void *arg, const char *message)
{
    struct db_conn *c = arg;
    char *m = one_line(message);
    rb_debug(DB_CTX, "connection %d: %s", c->id, m);
    free(m);
}

/* Pool sessions: the jobs trigger's wake-up arrives as a NOTICE with SQLSTATE RBJ01 whose
 * message is the earliest run_at (epoch seconds) of the jobs just queued and whose detail is
 * their kind, one notice per kind (migrations 0018, 0023).
 * It is kept on the connection and handed to the jobs hook once the request is complete, i.e.
 * after its commit, so the claim that follows can see the rows. Other notices are logged. */
static void notice_receiver(void *arg, const PGresult *res)
{
    struct db_conn *c = arg;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "RBJ01") == 0) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        double due = m ? atof(m) : 0;
        if (due <= 0)
            due = 1; /* unreadable: "due long ago", so the runner looks now */
        jobs_seen_add(c, PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL), due);
        return;
    }
    notice_processor(arg, PQresultErrorMessage(res));
}

static void blocking_notice_processor(void *arg, const char *message)
{
    (void)arg;
    char *m = one_line(message);
    rb_debug(DB_CTX, "%s", m);
    free(m);
}

static const char *const conn_keywords[] = {"fallback_application_name", "options", "dbname",
                                            NULL};

/* Starts a connection with our defaults (UTC sessions, application name), which conninfo
 * may override. */
static PGconn *connect_start(const char *conninfo, int pool)
{
    /* Pool sessions take the jobs trigger's wake-up as a notice (notice_receiver). */
    const char *values[] = {"rabtad",
                            pool ? "-c TimeZone=UTC -c rabta.jobs_notify=client"
                                 : "-c TimeZone=UTC",
                            conninfo, NULL};
    PGconn *pg = PQconnectStartParams(conn_keywords, values, 1);
    if (!pg)
        rb_fatal("out of memory starting a PostgreSQL connection");
    return pg;
}

/* ---------------------------------------------------------------------------------------- */
/* Requests */

static void stmt_copy(struct db_stmt *dst, const char *sql, int nparams,
                      const char *const *params)
{
    dst->sql = rb_strdup(sql);
    dst->prepare = 0;
    dst->nparams = nparams;
    dst->params = nparams > 0 ? rb_calloc((size_t)nparams, sizeof(char *)) : NULL;
    for (int i = 0; i < nparams; i++)
        dst->params[i] = rb_strdup(params[i]);
}

static struct db_req *req_new(struct rb_db *db, enum req_kind kind, int n)
{
    struct db_req *r = rb_calloc(1, sizeof(*r));
    r->kind = kind;
    r->n = n;
    r->stmts = rb_calloc((size_t)n, sizeof(struct db_stmt));
    r->results = rb_calloc((size_t)n, sizeof(PGresult *));
    r->deadline = rb_now_mono() + db->query_timeout;
    r->bg = db->bg_depth > 0;
    return r;
}

static void req_free(struct db_req *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->stmts[i].sql);
        for (int j = 0; j < r->stmts[i].nparams; j++)
            free(r->stmts[i].params[j]);
        free(r->stmts[i].params);
        if (r->results[i])
            PQclear(r->results[i]);
    }
    free(r->stmts);
    free(r->results);
    free(r->err);
    free(r);
}

static void req_set_error(struct db_req *r, char *err) /* takes ownership of err */
{
    if (r->err)
        free(err);
    else
        r->err = err;
}

/* Calls the request's callback (user requests) and frees it. */
static void req_deliver(struct rb_db *db, struct db_req *r)
{
    if (r->err)
        db->failures++;
    else
        db->queries++;
    db->cb_depth++;
    db->bg_depth += r->bg; /* what a background request's callback asks is background too */
    if (r->kind == REQ_QUERY) {
        r->fn(r->err ? NULL : r->results[0], r->err, r->arg);
    } else if (r->kind == REQ_BATCH) {
        PGresult **res = r->results;
        if (r->err && r->txn)
            res = NULL;
        r->bfn(res, r->n, r->err, r->arg);
    }
    db->bg_depth -= r->bg;
    db->cb_depth--;
    req_free(r);
}

/* Appends r to the list head..tail. */
static void fifo_append(struct db_req **head, struct db_req **tail, struct db_req *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

/* Finishes r: at once when called from an event handler, later when inside the API. */
static void req_complete(struct rb_db *db, struct db_req *r)
{
    if (r->kind == REQ_LISTEN || r->kind == REQ_ROLLBACK) {
        req_free(r);
        return;
    }
    if (db->api_depth == 0) {
        req_deliver(db, r);
        return;
    }
    fifo_append(&db->dhead, &db->dtail, r);
    event_active(db->defer, EV_TIMEOUT, 1);
}

static void req_fail(struct rb_db *db, struct db_req *r, const char *msg)
{
    for (int i = 0; i < r->n; i++)
        if (r->results[i]) {
            PQclear(r->results[i]);
            r->results[i] = NULL;
        }
    req_set_error(r, rb_strdup(msg));
    req_complete(db, r);
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rb_db *db = arg;
    (void)fd;
    (void)what;
    struct db_req *r = db->dhead;
    db->dhead = db->dtail = NULL;
    while (r) {
        struct db_req *next = r->next;
        req_deliver(db, r);
        r = next;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The wait queue */

/* The wait queue is the foreground requests in arrival order, then the background ones in
 * arrival order: a citizen's submission never waits behind a backlog of jobs. Each part is
 * in deadline order, so the earliest deadline is one of the two heads. */
static struct db_req *queue_bg_head(const struct rb_db *db)
{
    return db->qfg_last ? db->qfg_last->next : db->qhead;
}

static void queue_arm(struct rb_db *db)
{
    if (!db->qhead) {
        evtimer_del(db->qtimer);
        return;
    }
    if (evtimer_pending(db->qtimer, NULL))
        return;
    double d = db->qhead->deadline;
    const struct db_req *b = queue_bg_head(db);
    if (b && b->deadline < d)
        d = b->deadline;
    set_timer(db->qtimer, d - rb_now_mono());
}

static void queue_push(struct rb_db *db, struct db_req *r)
{
    if (r->bg || !db->qhead) {
        fifo_append(&db->qhead, &db->qtail, r);
    } else { /* after the last foreground request, ahead of the background ones */
        struct db_req **at = db->qfg_last ? &db->qfg_last->next : &db->qhead;
        r->next = *at;
        *at = r;
        if (!r->next)
            db->qtail = r;
    }
    if (!r->bg)
        db->qfg_last = r;
    db->nqueue++;
    queue_arm(db);
}

/* Unlinks r, which follows prev (NULL: r is the head). */
static void queue_unlink(struct rb_db *db, struct db_req *prev, struct db_req *r)
{
    if (prev)
        prev->next = r->next;
    else
        db->qhead = r->next;
    if (db->qtail == r)
        db->qtail = prev;
    if (db->qfg_last == r) /* foreground requests lead the queue: prev is one, or none */
        db->qfg_last = prev;
    db->nqueue--;
    r->next = NULL;
}

/* The next request to run: the first foreground one; a background one only while at most
 * half the pool (at least one connection) is busy with background work, so users' requests,
 * which often take several statements in turn, always have the other half. NULL: none may
 * run now. */
static struct db_req *queue_pop(struct rb_db *db)
{
    struct db_req *r = db->qhead;
    if (!r)
        return NULL;
    if (r->bg && db->pool_size > 1) {
        int bg_busy = 0;
        for (const struct db_conn *c = db->lists[CONN_BUSY]; c; c = c->next)
            bg_busy += c->req && c->req->bg;
        if (bg_busy >= (db->pool_size / 2 > 0 ? db->pool_size / 2 : 1))
            return NULL;
    }
    queue_unlink(db, NULL, r);
    return r;
}

/* Fails every waiting request with msg. */
static void queue_fail_all(struct rb_db *db, const char *msg)
{
    struct db_req *r = db->qhead;
    db->qhead = db->qtail = db->qfg_last = NULL;
    db->nqueue = 0;
    evtimer_del(db->qtimer);
    while (r) {
        struct db_req *next = r->next;
        req_fail(db, r, msg);
        r = next;
    }
}

static void queue_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rb_db *db = arg;
    (void)fd;
    (void)what;
    double now = rb_now_mono();
    struct db_req *prev = NULL, *r = db->qhead;
    while (r) {
        struct db_req *next = r->next;
        if (r->deadline <= now) {
            queue_unlink(db, prev, r);
            req_fail(db, r, "query timed out (waiting for a database connection)");
        } else {
            prev = r;
        }
        r = next;
    }
    queue_arm(db);
}

/* ---------------------------------------------------------------------------------------- */
/* Connection states */

static const char *const state_names[] = {"down", "connecting", "idle", "busy", "listening"};

/* Puts c, on no list, at the head of state to's list. */
static void conn_enter(struct db_conn *c, enum conn_state to)
{
    struct rb_db *db = c->db;
    c->state = to;
    c->prev = NULL;
    c->next = db->lists[to];
    if (c->next)
        c->next->prev = c;
    db->lists[to] = c;
    if (c->role == ROLE_POOL)
        db->count[to]++;
}

/* The one place a connection changes state. */
static void conn_move(struct db_conn *c, enum conn_state to)
{
    struct rb_db *db = c->db;
    enum conn_state from = c->state;
    if (c->prev)
        c->prev->next = c->next;
    else
        db->lists[from] = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->role == ROLE_POOL)
        db->count[from]--;
    conn_enter(c, to);
    rb_debug(DB_CTX, "connection %d: %s -> %s", c->id, state_names[from], state_names[to]);
}

/* (Re)arms the I/O event for what on the connection's current socket. */
static void conn_io_cb(evutil_socket_t fd, short what, void *arg);

static void conn_arm(struct db_conn *c, short what)
{
    int fd = PQsocket(c->pg);
    if (c->ev && c->ev_fd == fd && c->ev_what == what)
        return;
    if (c->ev)
        event_free(c->ev);
    c->ev = NULL;
    if (fd < 0)
        return;
    c->ev = event_new(c->db->base, fd, (short)(what | EV_PERSIST), conn_io_cb, c);
    if (!c->ev)
        rb_fatal("out of memory creating an event");
    event_add(c->ev, NULL);
    c->ev_fd = fd;
    c->ev_what = what;
}

static void prepared_clear(struct db_conn *c)
{
    for (int i = 0; i < RB_DB_PREPARED_MAX; i++) {
        free(c->prepared[i].sql);
        c->prepared[i] = (struct db_prepared){0};
    }
}

static uint64_t sql_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot of sql on c: *fresh = 1 when it must be prepared first. -1: no room (run unnamed). */
static int prepared_slot(struct db_conn *c, const char *sql, int *fresh)
{
    uint64_t h = sql_hash(sql);
    int empty = -1;
    for (int i = 0; i < RB_DB_PREPARED_MAX; i++) {
        const struct db_prepared *p = &c->prepared[i];
        if (!p->sql) {
            if (empty < 0)
                empty = i;
        } else if (p->hash == h && strcmp(p->sql, sql) == 0) {
            *fresh = 0;
            return i;
        }
    }
    if (empty >= 0) {
        c->prepared[empty] = (struct db_prepared){h, rb_strdup(sql), 0};
        *fresh = 1;
    }
    return empty;
}

static void conn_close(struct db_conn *c)
{
    prepared_clear(c);
    c->njobs_seen = 0;
    if (c->ev)
        event_free(c->ev);
    c->ev = NULL;
    evtimer_del(c->timer);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
}

/* The pool has no connection up and the last attempt failed: fail everything fast. */
static void db_check_unavailable(struct rb_db *db)
{
    if (db->unavailable || db->closing || db->count[CONN_IDLE] + db->count[CONN_BUSY] > 0)
        return;
    db->unavailable = 1;
    rb_warn(DB_CTX, "database unavailable: %s", db->last_error);
    char *msg = rb_sprintf("database unavailable: %s", db->last_error);
    queue_fail_all(db, msg);
    free(msg);
}

static void conn_schedule_reconnect(struct db_conn *c)
{
    set_timer(c->timer, c->backoff);
    c->backoff = c->backoff <= 0 ? DB_BACKOFF_FIRST : c->backoff * 2;
    if (c->backoff > DB_BACKOFF_MAX)
        c->backoff = DB_BACKOFF_MAX;
}

static void conn_connect_failed(struct db_conn *c, const char *why)
{
    struct rb_db *db = c->db;
    char *msg = one_line(why ? why : (c->pg ? PQerrorMessage(c->pg) : NULL));
    conn_close(c);
    conn_move(c, CONN_DOWN);
    if (c->role == ROLE_POOL) {
        free(db->last_error);
        db->last_error = msg;
        db_check_unavailable(db);
    } else {
        rb_debug(DB_CTX, "listen connection failed: %s", msg);
        free(msg);
    }
    if (!db->closing)
        conn_schedule_reconnect(c);
}

/* A connection that was up is gone: fail its request, reconnect at once. */
static void conn_broken(struct db_conn *c, const char *msg)
{
    struct rb_db *db = c->db;
    struct db_req *r = c->req;
    c->req = NULL;
    char *m = one_line(msg);
    rb_warn(DB_CTX, "connection %d lost: %s", c->id, m);
    conn_close(c);
    conn_move(c, CONN_DOWN);
    c->backoff = 0;
    if (c->role == ROLE_POOL) {
        free(db->last_error);
        db->last_error = rb_strdup(m);
    }
    if (!db->closing)
        conn_schedule_reconnect(c);
    if (r) {
        /* sent: it may have been committed before the connection went */
        char *u = rb_sprintf("%s%s", RB_DB_OUTCOME_UNKNOWN, m);
        req_fail(db, r, u);
        free(u);
    }
    free(m);
}

int rb_db_outcome_unknown(const char *err)
{
    return err && strncmp(err, RB_DB_OUTCOME_UNKNOWN, strlen(RB_DB_OUTCOME_UNKNOWN)) == 0;
}

static void conn_connected(struct db_conn *c)
{
    struct rb_db *db = c->db;
    evtimer_del(c->timer);
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        conn_connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    PQsetNoticeReceiver(c->pg, notice_receiver, c);
    if (c->ever_connected)
        db->reconnects++;
    int reconnect = c->ever_connected;
    c->ever_connected = 1;
    c->backoff = 0;
    conn_arm(c, EV_READ);
    if (c->role == ROLE_LISTEN) {
        db->listened = 0;
        conn_move(c, CONN_LISTENING);
        rb_debug(DB_CTX, "listen connection up");
        c->tell_missed = reconnect;
        conn_idle(c);
        return;
    }
    conn_move(c, CONN_IDLE);
    if (db->unavailable) {
        db->unavailable = 0;
        rb_info(DB_CTX, "database available again");
        /* The server is back: retry the others now rather than after their back-off. */
        for (struct db_conn *o = db->lists[CONN_DOWN]; o; o = o->next) {
            o->backoff = 0;
            conn_schedule_reconnect(o);
        }
    }
    db_dispatch(db);
}

static void conn_connect_step(struct db_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        conn_arm(c, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        conn_arm(c, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        conn_connected(c);
        break;
    default:
        conn_connect_failed(c, NULL);
        break;
    }
}

static void conn_connect(struct db_conn *c)
{
    c->pg = connect_start(c->db->conninfo, c->role == ROLE_POOL);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_connect_failed(c, NULL);
        return;
    }
    conn_move(c, CONN_CONNECTING);
    set_timer(c->timer, c->db->connect_timeout);
    conn_arm(c, EV_WRITE);
}

/* ---------------------------------------------------------------------------------------- */
/* Running requests */

static int req_item(const struct db_req *r, int k)
{
    if (r->txn) {
        if (k == 0)
            return ITEM_BEGIN;
        if (k <= r->n)
            return k - 1;
        return k == r->n + 1 ? ITEM_COMMIT : ITEM_SYNC;
    }
    return k % 2 ? ITEM_SYNC : k / 2;
}

/* Sends r's pipeline on c. Returns RB_OK, or RB_ERR with c broken (and r failed). */
static int conn_send(struct db_conn *c, struct db_req *r)
{
    PGconn *pg = c->pg;
    c->req = r;
    r->pos = 0;
    r->nitems = r->txn ? r->n + 3 : 2 * r->n;
    for (int k = 0; k < r->nitems; k++) {
        int item = req_item(r, k), ok;
        if (item == ITEM_SYNC)
            ok = PQpipelineSync(pg);
        else if (item == ITEM_BEGIN)
            ok = PQsendQueryParams(pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
        else if (item == ITEM_COMMIT)
            ok = PQsendQueryParams(pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
        else {
            struct db_stmt *st = &r->stmts[item];
            int fresh = 0, slot = st->prepare ? prepared_slot(c, st->sql, &fresh) : -1;
            st->prep = 0;
            if (slot < 0) {
                ok = PQsendQueryParams(pg, st->sql, st->nparams, NULL,
                                       (const char *const *)st->params, NULL, NULL, 0);
            } else {
                char name[16];
                snprintf(name, sizeof(name), "rb%d", slot);
                ok = 1;
                if (fresh) {
                    ok = PQsendPrepare(pg, name, st->sql, st->nparams, NULL);
                    st->prep = 1;
                    st->slot = slot;
                }
                ok = ok && PQsendQueryPrepared(pg, name, st->nparams,
                                               (const char *const *)st->params, NULL, NULL, 0);
            }
        }
        if (!ok) {
            conn_broken(c, PQerrorMessage(pg));
            return RB_ERR;
        }
    }
    int f = PQflush(pg);
    if (f < 0) {
        conn_broken(c, PQerrorMessage(pg));
        return RB_ERR;
    }
    conn_arm(c, f ? EV_READ | EV_WRITE : EV_READ);
    set_timer(c->timer, r->deadline - rb_now_mono());
    return RB_OK;
}

/* Puts c to work on r (c is IDLE or LISTENING). */
static void conn_start(struct db_conn *c, struct db_req *r)
{
    conn_move(c, CONN_BUSY);
    conn_send(c, r);
}

/* c has nothing running: roll back a transaction left open, LISTEN what is pending, or park. */
static void conn_idle(struct db_conn *c)
{
    struct rb_db *db = c->db;
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        struct db_req *r = req_new(db, REQ_ROLLBACK, 1);
        r->stmts[0].sql = rb_strdup("ROLLBACK");
        if (c->state != CONN_BUSY)
            conn_move(c, CONN_BUSY);
        conn_send(c, r);
        return;
    }
    if (c->role == ROLE_LISTEN) {
        if (db->listened < db->nlistens) {
            int n = db->nlistens - db->listened;
            struct db_req *r = req_new(db, REQ_LISTEN, n);
            r->deadline = rb_now_mono() + db->query_timeout;
            for (int i = 0; i < n; i++) {
                const char *ch = db->listens[db->listened + i].channel;
                char *q = PQescapeIdentifier(c->pg, ch, strlen(ch));
                if (!q) {
                    req_free(r);
                    conn_broken(c, PQerrorMessage(c->pg));
                    return;
                }
                r->stmts[i].sql = rb_sprintf("LISTEN %s", q);
                PQfreemem(q);
            }
            db->listened = db->nlistens;
            if (c->state != CONN_BUSY)
                conn_move(c, CONN_BUSY);
            conn_send(c, r);
            return;
        }
        if (c->state != CONN_LISTENING)
            conn_move(c, CONN_LISTENING);
        return;
    }
    if (c->state != CONN_IDLE)
        conn_move(c, CONN_IDLE);
}

/* r on c read its last item. */
static void conn_request_done(struct db_conn *c)
{
    struct rb_db *db = c->db;
    struct db_req *r = c->req;
    c->req = NULL;
    evtimer_del(c->timer);
    int listened = r->kind == REQ_LISTEN;
    if (listened && r->err)
        rb_error(DB_CTX, "LISTEN failed: %s", r->err);
    struct jobs_seen seen[JOBS_SEEN_MAX];
    int nseen = c->njobs_seen;
    memcpy(seen, c->jobs_seen, (size_t)nseen * sizeof(seen[0]));
    c->njobs_seen = 0;
    conn_idle(c);
    req_complete(db, r);
    if (nseen > 0 && db->jobs_fn) {
        db->cb_depth++;
        for (int i = 0; i < nseen; i++)
            db->jobs_fn(seen[i].kind[0] ? seen[i].kind : NULL, seen[i].due, db->jobs_arg);
        db->cb_depth--;
    }
    if (listened && c->tell_missed && c->pg) {
        /* Re-LISTENed after a reconnect: whatever was sent meanwhile may be lost. */
        c->tell_missed = 0;
        db->cb_depth++;
        for (int i = 0; i < db->nlistens; i++)
            db->listens[i].fn(db->listens[i].channel, NULL, db->listens[i].arg);
        db->cb_depth--;
    }
    if (c->role == ROLE_POOL)
        db_dispatch(db);
}

/* Stores one result for the current item of c's request. */
static void req_take_result(struct db_conn *c, struct db_req *r, PGresult *res)
{
    int item = req_item(r, r->pos);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
    if (ok && item >= 0) {
        if (r->results[item])
            PQclear(r->results[item]);
        r->results[item] = res;
        return;
    }
    if (!ok && st != PGRES_PIPELINE_ABORTED) {
        char *e = result_error(res, c->pg);
        if (item == ITEM_BEGIN)
            req_set_error(r, rb_sprintf("BEGIN failed: %s", e));
        else if (item == ITEM_COMMIT)
            req_set_error(r, rb_sprintf("COMMIT failed: %s", e));
        else if (r->n > 1 || r->kind != REQ_QUERY)
            req_set_error(r, rb_sprintf("statement %d of %d failed: %s", item + 1, r->n, e));
        else
            req_set_error(r, rb_strdup(e));
        free(e);
    } else if (st == PGRES_PIPELINE_ABORTED && !r->err) {
        req_set_error(r, rb_sprintf("statement %d of %d was not run: pipeline aborted",
                                    item + 1, r->n));
    }
    PQclear(res);
}

/* Reads whatever results are complete. Returns RB_ERR when c broke. */
static int conn_read_results(struct db_conn *c)
{
    struct db_req *r = c->req;
    while (r && r->pos < r->nitems) {
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            conn_broken(c, PQerrorMessage(c->pg));
            return RB_ERR;
        }
        if (PQisBusy(c->pg))
            return RB_OK;
        PGresult *res = PQgetResult(c->pg);
        int item = req_item(r, r->pos);
        if (item == ITEM_SYNC) {
            if (res && PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
                PQclear(res);
                r->pos++;
                continue;
            }
            char *e = res ? result_error(res, c->pg) : one_line(PQerrorMessage(c->pg));
            if (res)
                PQclear(res);
            conn_broken(c, e);
            free(e);
            return RB_ERR;
        }
        struct db_stmt *cur = item >= 0 ? &r->stmts[item] : NULL;
        if (!res) {
            if (cur && cur->prep == 1)
                cur->prep = 2; /* the Parse's results are read; the statement's follow */
            else
                r->pos++;
            continue;
        }
        if (cur && cur->prep == 1) {
            /* The result of the Parse sent ahead of this statement. */
            if (PQresultStatus(res) == PGRES_COMMAND_OK) {
                c->prepared[cur->slot].ready = 1;
                PQclear(res);
            } else {
                free(c->prepared[cur->slot].sql);
                c->prepared[cur->slot] = (struct db_prepared){0};
                req_take_result(c, r, res); /* records the error */
            }
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            PQclear(res);
            conn_broken(c, "COPY is not supported through the pool");
            return RB_ERR;
        }
        req_take_result(c, r, res);
    }
    if (r)
        conn_request_done(c);
    return RB_OK;
}

static void conn_drain_notifies(struct db_conn *c)
{
    struct rb_db *db = c->db;
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL) {
        if (c->role == ROLE_LISTEN) {
            db->cb_depth++;
            for (int i = 0; i < db->nlistens; i++)
                if (strcmp(db->listens[i].channel, n->relname) == 0)
                    db->listens[i].fn(n->relname, n->extra, db->listens[i].arg);
            db->cb_depth--;
        }
        PQfreemem(n);
        if (!c->pg) /* a callback cannot close us, but be safe */
            return;
    }
}

static void conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_conn *c = arg;
    (void)fd;
    if (c->state == CONN_CONNECTING) {
        conn_connect_step(c);
        return;
    }
    if (!c->pg)
        return;
    if (what & EV_READ) {
        if (!PQconsumeInput(c->pg)) {
            conn_broken(c, PQerrorMessage(c->pg));
            return;
        }
    }
    if (c->ev_what & EV_WRITE) {
        int f = PQflush(c->pg);
        if (f < 0) {
            conn_broken(c, PQerrorMessage(c->pg));
            return;
        }
        if (f == 0)
            conn_arm(c, EV_READ);
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    if (c->state == CONN_BUSY && conn_read_results(c) != RB_OK)
        return;
    if (c->pg)
        conn_drain_notifies(c); /* on a pool connection (LISTEN run as a query): dropped */
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_conn *c = arg;
    (void)fd;
    (void)what;
    switch (c->state) {
    case CONN_DOWN:
        if (!c->db->closing)
            conn_connect(c);
        break;
    case CONN_CONNECTING:
        conn_connect_failed(c, "timed out connecting to the database");
        break;
    case CONN_BUSY:
        conn_broken(c, "query timed out");
        break;
    default:
        break;
    }
}

/* Hands waiting requests to idle connections, oldest first. */
static void db_dispatch(struct rb_db *db)
{
    struct db_req *r;
    while (db->lists[CONN_IDLE] && (r = queue_pop(db)) != NULL)
        conn_start(db->lists[CONN_IDLE], r);
    queue_arm(db);
}

/* ---------------------------------------------------------------------------------------- */
/* Public API */

static struct db_conn *conn_init(struct rb_db *db, struct db_conn *c, enum conn_role role, int id)
{
    c->db = db;
    c->role = role;
    c->id = id;
    conn_enter(c, CONN_DOWN);
    c->timer = evtimer_new(db->base, conn_timer_cb, c);
    if (!c->timer)
        rb_fatal("out of memory creating a timer");
    return c;
}

struct rb_db *rb_db_new(struct event_base *base, const char *conninfo, int pool_size,
                        size_t max_queue)
{
    if (!base || !conninfo || pool_size < 1)
        return NULL;
    struct rb_db *db = rb_calloc(1, sizeof(*db));
    db->base = base;
    db->conninfo = rb_strdup(conninfo);
    db->pool_size = pool_size;
    db->max_queue = max_queue;
    db->connect_timeout = 10;
    db->query_timeout = 30;
    db->last_error = rb_strdup("not connected yet");
    db->conns = rb_calloc((size_t)pool_size, sizeof(struct db_conn));
    for (int i = 0; i < pool_size; i++)
        conn_init(db, &db->conns[i], ROLE_POOL, i + 1);
    db->qtimer = evtimer_new(base, queue_timer_cb, db);
    db->defer = event_new(base, -1, 0, defer_cb, db);
    if (!db->qtimer || !db->defer)
        rb_fatal("out of memory creating events");
    return db;
}

void rb_db_set_timeouts(struct rb_db *db, double connect_s, double query_s)
{
    if (connect_s > 0)
        db->connect_timeout = connect_s;
    if (query_s > 0)
        db->query_timeout = query_s;
}

int rb_db_start(struct rb_db *db)
{
    if (db->started)
        return RB_OK;
    db->started = 1;
    for (int i = 0; i < db->pool_size; i++)
        set_timer(db->conns[i].timer, 0);
    if (db->listener)
        set_timer(db->listener->timer, 0);
    return RB_OK;
}

void rb_db_free(struct rb_db *db)
{
    if (!db)
        return;
    if (db->cb_depth > 0)
        rb_fatal("rb_db_free called from inside a database callback");
    db->closing = 1;
    queue_fail_all(db, "shutting down");
    for (int i = 0; i <= db->pool_size; i++) {
        struct db_conn *c = i < db->pool_size ? &db->conns[i] : db->listener;
        if (!c)
            continue;
        struct db_req *r = c->req;
        c->req = NULL;
        conn_close(c);
        if (r)
            req_fail(db, r, "shutting down");
    }
    defer_cb(-1, 0, db); /* requests that failed earlier still get their callback */
    for (int i = 0; i < db->pool_size; i++)
        event_free(db->conns[i].timer);
    if (db->listener) {
        event_free(db->listener->timer);
        free(db->listener);
    }
    for (int i = 0; i < db->nlistens; i++)
        free(db->listens[i].channel);
    free(db->listens);
    event_free(db->qtimer);
    event_free(db->defer);
    free(db->conns);
    free(db->conninfo);
    free(db->last_error);
    free(db);
}

/* Queues r (or fails it when the database is known to be down). */
static int db_submit(struct rb_db *db, struct db_req *r)
{
    if (db->unavailable) {
        char *msg = rb_sprintf("database unavailable: %s", db->last_error);
        db->api_depth++;
        req_fail(db, r, msg);
        db->api_depth--;
        free(msg);
        return RB_OK;
    }
    if (db->nqueue >= db->max_queue && !db->lists[CONN_IDLE]) {
        req_free(r);
        return RB_EAGAIN;
    }
    db->api_depth++;
    queue_push(db, r);
    db_dispatch(db);
    db->api_depth--;
    return RB_OK;
}

/* rb_db_query and rb_db_query_prepared: one statement, prepared on its connection or not. */
static int query_one(struct rb_db *db, const char *sql, int nparams, const char *const *params,
                     int prepare, rb_db_fn fn, void *arg)
{
    if (!db || !sql || !fn || nparams < 0 || (nparams > 0 && !params))
        return RB_EINVAL;
    if (db->closing)
        return RB_EUNAVAIL;
    struct db_req *r = req_new(db, REQ_QUERY, 1);
    stmt_copy(&r->stmts[0], sql, nparams, params);
    r->stmts[0].prepare = prepare;
    r->fn = fn;
    r->arg = arg;
    return db_submit(db, r);
}

int rb_db_query(struct rb_db *db, const char *sql, int nparams, const char *const *params,
                rb_db_fn fn, void *arg)
{
    return query_one(db, sql, nparams, params, 0, fn, arg);
}

int rb_db_query_prepared(struct rb_db *db, const char *sql, int nparams,
                         const char *const *params, rb_db_fn fn, void *arg)
{
    return query_one(db, sql, nparams, params, 1, fn, arg);
}

int rb_db_batch(struct rb_db *db, const struct rb_db_stmt *stmts, int n, int txn,
                rb_db_batch_fn fn, void *arg)
{
    if (!db || !stmts || n < 1 || !fn)
        return RB_EINVAL;
    for (int i = 0; i < n; i++)
        if (!stmts[i].sql || stmts[i].nparams < 0 || (stmts[i].nparams > 0 && !stmts[i].params))
            return RB_EINVAL;
    if (db->closing)
        return RB_EUNAVAIL;
    struct db_req *r = req_new(db, REQ_BATCH, n);
    for (int i = 0; i < n; i++) {
        stmt_copy(&r->stmts[i], stmts[i].sql, stmts[i].nparams, stmts[i].params);
        r->stmts[i].prepare = stmts[i].prepare;
    }
    r->txn = txn ? 1 : 0;
    r->bfn = fn;
    r->arg = arg;
    return db_submit(db, r);
}

void rb_db_background(struct rb_db *db, int enter)
{
    db->bg_depth += enter ? 1 : -1;
}

void rb_db_on_jobs(struct rb_db *db, rb_db_jobs_fn fn, void *arg)
{
    db->jobs_fn = fn;
    db->jobs_arg = arg;
}

int rb_db_available(const struct rb_db *db)
{
    return db && db->count[CONN_IDLE] + db->count[CONN_BUSY] > 0;
}

void rb_db_get_stats(const struct rb_db *db, struct rb_db_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->size = db->pool_size;
    out->connected = db->count[CONN_IDLE] + db->count[CONN_BUSY];
    out->busy = db->count[CONN_BUSY];
    out->waiting = db->nqueue;
    out->queries = db->queries;
    out->failures = db->failures;
    out->reconnects = db->reconnects;
}

int rb_db_listen(struct rb_db *db, const char *channel, rb_db_notify_fn fn, void *arg)
{
    if (!db || !channel || !*channel || strlen(channel) > 63 || !fn || db->closing)
        return RB_EINVAL;
    db->listens = rb_realloc(db->listens, (size_t)(db->nlistens + 1) * sizeof(*db->listens));
    db->listens[db->nlistens].channel = rb_strdup(channel);
    db->listens[db->nlistens].fn = fn;
    db->listens[db->nlistens].arg = arg;
    db->nlistens++;
    if (!db->listener) {
        db->listener = conn_init(db, rb_calloc(1, sizeof(struct db_conn)), ROLE_LISTEN, 0);
        if (db->started)
            set_timer(db->listener->timer, 0);
    } else if (db->listener->state == CONN_LISTENING) {
        conn_idle(db->listener);
    }
    return RB_OK;
}

PGconn *rb_db_connect_blocking(const char *conninfo, double timeout_s, char **err)
{
    *err = NULL;
    PGconn *pg = connect_start(conninfo, 0);
    double deadline = rb_now_mono() + timeout_s;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(pg) != CONNECTION_BAD) {
        if (st == PGRES_POLLING_OK) {
            PQsetNoticeProcessor(pg, blocking_notice_processor, NULL);
            return pg;
        }
        if (st == PGRES_POLLING_FAILED)
            break;
        double left = deadline - rb_now_mono();
        if (left <= 0) {
            *err = rb_sprintf("could not connect to the database within %g s", timeout_s);
            PQfinish(pg);
            return NULL;
        }
        struct pollfd p = {PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
        int rc = poll(&p, 1, (int)(left * 1000) + 1);
        if (rc < 0 && errno != EINTR) {
            *err = rb_sprintf("could not connect to the database: poll: %s", strerror(errno));
            PQfinish(pg);
            return NULL;
        }
        if (rc > 0)
            st = PQconnectPoll(pg);
    }
    char *m = one_line(PQerrorMessage(pg));
    *err = rb_sprintf("could not connect to the database: %s", m);
    free(m);
    PQfinish(pg);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* A growing string for array literals (see db.h) */

void rb_sbuf_putn(struct rb_sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = rb_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void rb_sbuf_puts(struct rb_sbuf *b, const char *s)
{
    rb_sbuf_putn(b, s, strlen(s));
}

/* Appends one element of a PostgreSQL array literal: NULL, or a double-quoted string. */
void rb_sbuf_elem(struct rb_sbuf *b, const char *s)
{
    rb_sbuf_puts(b, b->n > 1 ? "," : "");
    if (!s) {
        rb_sbuf_puts(b, "NULL");
        return;
    }
    rb_sbuf_putn(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            rb_sbuf_putn(b, run, (size_t)(s - run));
            rb_sbuf_putn(b, "\\", 1);
            run = s;
        }
    }
    rb_sbuf_putn(b, run, (size_t)(s - run));
    rb_sbuf_putn(b, "\"", 1);
}
