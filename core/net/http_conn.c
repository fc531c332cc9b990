/* The HTTP server's connections: counts and per-phase deadlines (see http_conn.h). */
#include "net/http_conn.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"

#define LINGER_SECONDS 2.0 /* how long a cut-off client's late bytes are read and dropped */
#define LINE_CAP 1024      /* bytes of a request line kept to learn its path */

enum conn_state { ST_SETUP, ST_IDLE, ST_HEAD, ST_BODY, ST_BUSY };

struct rb_http_conn {
    struct rb_http_conns *cs;          /* borrowed */
    struct bufferevent *bev;           /* borrowed; evhttp's */
    struct evhttp_connection *evcon;   /* borrowed; NULL until the setup turn */
    struct evbuffer_cb_entry *in_cb, *out_cb; /* on bev's buffers; removed at close */
    struct event *timer;               /* owned */
    enum conn_state state;
    double since;     /* monotonic seconds: when this state began */
    int served;       /* a request was answered on it: IDLE waits keepalive_timeout */
    int hook_on;      /* the input hook is enabled (it is, as added) */
    int over, reject; /* past max_connections / past max + reserve */
    int eol;          /* head scan: 0 in a line, 1 after "\n", 2 after "\n\r" */
    size_t head_bytes;
    int head_too_big; /* the head being received passed max_header_bytes */
    /* The start of the request line being received (for errors answered before routing):
     * line_len bytes, complete once line_done (its "\n" seen or LINE_CAP reached). */
    char line[LINE_CAP];
    size_t line_len;
    int line_done;
    struct rb_http_conn *hnext; /* bucket chain, keyed by bev */
};

struct lingerer {
    int fd;
    double until;
    struct event *ev; /* owned */
    struct rb_http_conns *cs;
    struct lingerer *prev, *next;
};

struct rb_http_conns {
    struct event_base *base; /* borrowed */
    /* The timer's period: the shortest deadline, as a libevent common timeout (owned by the
     * base), or plain_tick past libevent's 256 of them; NULL: no deadlines. */
    const struct timeval *tick;
    struct timeval plain_tick;
    double tick_s;
    rb_http_conn_page_fn page;
    void *owner;
    struct rb_http_limits lim;
    struct rb_http_conn **buckets; /* owned array; n_buckets, a power of two */
    size_t n_buckets, open;
    struct lingerer *lingering; /* owned list */
};

/* ---- the table, keyed by the bufferevent -------------------------------------------------- */

static size_t bucket_of(const struct rb_http_conns *cs, const void *bev)
{
    uintptr_t p = (uintptr_t)bev;
    p ^= p >> 17;
    p *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(p >> 7) & (cs->n_buckets - 1);
}

static void table_grow(struct rb_http_conns *cs)
{
    size_t n_old = cs->n_buckets;
    struct rb_http_conn **old = cs->buckets;
    cs->n_buckets *= 2;
    cs->buckets = rb_calloc(cs->n_buckets, sizeof(*cs->buckets));
    for (size_t i = 0; i < n_old; i++)
        for (struct rb_http_conn *c = old[i], *next; c; c = next) {
            next = c->hnext;
            size_t b = bucket_of(cs, c->bev);
            c->hnext = cs->buckets[b];
            cs->buckets[b] = c;
        }
    free(old);
}

static struct rb_http_conn *table_find(const struct rb_http_conns *cs, const void *bev)
{
    for (struct rb_http_conn *c = cs->buckets[bucket_of(cs, bev)]; c; c = c->hnext)
        if (c->bev == bev)
            return c;
    return NULL;
}

static void table_remove(struct rb_http_conns *cs, struct rb_http_conn *c)
{
    struct rb_http_conn **pp = &cs->buckets[bucket_of(cs, c->bev)];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
}

/* ---- lingering close of a connection we cut off -------------------------------------------- */

static void linger_end(struct lingerer *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        l->cs->lingering = l->next;
    if (l->next)
        l->next->prev = l->prev;
    event_free(l->ev);
    close(l->fd);
    free(l);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    struct lingerer *l = arg;
    char buf[4096];
    if (!(what & EV_TIMEOUT) && rb_now_mono() < l->until) {
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return; /* more may come: keep dropping it until the time is up */
            break;      /* end of stream or an error */
        }
    }
    linger_end(l);
}

/* Takes ownership of fd, whose write side is shut: reads and drops until the client closes or
 * LINGER_SECONDS pass, then closes it. */
static void linger_start(struct rb_http_conns *cs, int fd)
{
    struct lingerer *l = rb_calloc(1, sizeof(*l));
    l->fd = fd;
    l->cs = cs;
    l->until = rb_now_mono() + LINGER_SECONDS;
    l->ev = event_new(cs->base, fd, EV_READ | EV_PERSIST, on_linger, l);
    struct timeval tv = {(time_t)LINGER_SECONDS, 0};
    if (!l->ev || event_add(l->ev, &tv) != 0) {
        if (l->ev)
            event_free(l->ev);
        close(fd);
        free(l);
        return;
    }
    l->next = cs->lingering;
    if (l->next)
        l->next->prev = l;
    cs->lingering = l;
}

/* ---- one connection ------------------------------------------------------------------------ */

/* The deadlines are lazy: a change of phase only notes when the phase began (c->since), and
 * the timer, once armed, fires every `tick` (the shortest of the three durations, a libevent
 * "common timeout": a queue, not the timer heap) until the phase's deadline passes. A new
 * deadline is never before a pending tick (every duration is at least one tick), so none is
 * late; and a busy connection costs no timer operation per request. */
static double phase_limit(const struct rb_http_conn *c)
{
    const struct rb_http_limits *lim = &c->cs->lim;
    switch (c->state) {
    case ST_IDLE:
        return c->served ? lim->keepalive_timeout : lim->header_timeout;
    case ST_HEAD:
        return lim->header_timeout;
    case ST_BODY:
        return lim->body_timeout;
    default:
        return 0;
    }
}

static void enter(struct rb_http_conn *c, enum conn_state state)
{
    c->state = state;
    /* Reading the head needs the input hook; a body or a busy connection does not. */
    int hook = state == ST_IDLE || state == ST_HEAD;
    if (hook != c->hook_on) {
        c->hook_on = hook;
        if (hook)
            evbuffer_cb_set_flags(bufferevent_get_input(c->bev), c->in_cb, EVBUFFER_CB_ENABLED);
        else
            evbuffer_cb_clear_flags(bufferevent_get_input(c->bev), c->in_cb,
                                    EVBUFFER_CB_ENABLED);
    }
    if (state == ST_BUSY)
        return; /* no deadline: a pending tick finds it busy and stops */
    c->since = rb_now_mono();
    if (c->cs->tick && !evtimer_pending(c->timer, NULL))
        evtimer_add(c->timer, c->cs->tick);
}

/* evhttp's close callback: the connection is going away (evhttp frees it after this). */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct rb_http_conn *c = arg;
    struct rb_http_conns *cs = c->cs;
    (void)evcon;
    evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
    evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
    event_free(c->timer);
    table_remove(cs, c);
    cs->open--;
    free(c);
}

/* Cuts the connection off: status (0: none) written straight to the socket, then evhttp's
 * connection freed (c with it, through on_close) and the socket closed gracefully. */
static void conn_cut(struct rb_http_conn *c, int status)
{
    struct rb_http_conns *cs = c->cs;
    int fd = bufferevent_getfd(c->bev);
    int keep = -1;
    if (status && fd >= 0) {
        char path[LINE_CAP];
        char *page = cs->page(cs->owner, status, rb_http_conn_path(c, path, sizeof(path)));
        if (send(fd, page, strlen(page), MSG_NOSIGNAL | MSG_DONTWAIT) > 0) {
            keep = dup(fd);
            if (keep >= 0)
                shutdown(keep, SHUT_WR);
        }
        free(page);
    }
    if (c->evcon)
        evhttp_connection_free(c->evcon); /* frees c (on_close) */
    if (keep >= 0)
        linger_start(cs, keep);
}

/* Finds evhttp's connection around our bufferevent (its callback argument) and hooks its
 * close. 0 when there is none (then the connection is not tracked further). */
static int conn_setup(struct rb_http_conn *c)
{
    if (c->evcon)
        return 1;
    void *evcon = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
    if (!evcon || evhttp_connection_get_bufferevent(evcon) != c->bev) {
        rb_warn("http", "a new connection has no evhttp connection; it is not tracked");
        return 0;
    }
    c->evcon = evcon;
    evhttp_connection_set_closecb(c->evcon, on_close, c);
    return 1;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct rb_http_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == ST_SETUP) { /* the turn after the accept; nothing received yet */
        if (!conn_setup(c))
            return;
        if (c->reject) {
            conn_cut(c, 503);
            return;
        }
        enter(c, ST_IDLE);
        return;
    }
    double limit = phase_limit(c);
    if (limit <= 0)
        return; /* busy: the answer re-arms it */
    double left = c->since + limit - rb_now_mono();
    if (left > 0.001) { /* not yet: the next tick, or the rest if that is shorter */
        struct timeval tv = {(time_t)left, (suseconds_t)((left - (double)(time_t)left) * 1e6)};
        evtimer_add(c->timer, left >= c->cs->tick_s ? c->cs->tick : &tv);
        return;
    }
    switch (c->state) {
    case ST_IDLE:
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
            enter(c, ST_IDLE); /* still writing an answer: wait again */
            return;
        }
        conn_cut(c, 0); /* nothing asked: close quietly */
        return;
    case ST_HEAD:
    case ST_BODY:
        rb_debug("http", "a client took too long to send its request (%s); answered 408",
                 c->state == ST_HEAD ? "headers" : "body");
        conn_cut(c, 408);
        return;
    default:
        return;
    }
}

/* Scans n bytes of a head for its blank line: the bytes up to and including it, or 0. */
static size_t scan_head(struct rb_http_conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\n') {
            if (c->eol)
                return i + 1;
            c->eol = 1;
        } else if (ch == '\r' && c->eol == 1) {
            c->eol = 2;
        } else {
            c->eol = 0;
            const char *nl = memchr(p + i, '\n', n - i); /* skip the rest of the line */
            if (!nl)
                return 0;
            i = (size_t)(nl - p) - 1;
        }
    }
    return 0;
}

/* Keeps the request line's first bytes (blank lines before it are skipped, as libevent does). */
static void keep_line(struct rb_http_conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n && !c->line_done; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            c->line_done = c->line_len > 0;
            continue;
        }
        c->line[c->line_len++] = p[i];
        c->line_done = c->line_len == sizeof(c->line);
    }
}

/* Looks at the bytes of buf from offset on (the part not scanned yet): counts the head's
 * bytes and finds its end. */
static void head_bytes_in(struct rb_http_conn *c, struct evbuffer *buf, size_t from)
{
    size_t len = evbuffer_get_length(buf);
    if (from >= len)
        return;
    struct evbuffer_ptr pos;
    if (evbuffer_ptr_set(buf, &pos, from, EVBUFFER_PTR_SET) != 0)
        return;
    struct evbuffer_iovec v[8];
    int n = evbuffer_peek(buf, -1, &pos, v, 8);
    for (int i = 0; i < n && i < 8; i++) {
        keep_line(c, v[i].iov_base, v[i].iov_len);
        size_t end = scan_head(c, v[i].iov_base, v[i].iov_len);
        c->head_bytes += end ? end : v[i].iov_len;
        if (end) {
            enter(c, ST_BODY);
            break;
        }
    }
    if (c->cs->lim.max_header_bytes && c->head_bytes > c->cs->lim.max_header_bytes)
        c->head_too_big = 1; /* libevent refuses it with 400: we answer 431 */
}

static void start_head(struct rb_http_conn *c)
{
    enter(c, ST_HEAD);
    c->eol = 1; /* a request starts at a line start */
    c->head_bytes = 0;
    c->head_too_big = 0;
    c->line_len = 0;
    c->line_done = 0;
}

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct rb_http_conn *c = arg;
    if (info->n_added == 0)
        return;
    if (c->state == ST_SETUP) {
        if (c->reject || !conn_setup(c))
            return; /* the setup turn answers 503 / not tracked */
        evtimer_del(c->timer); /* the setup is done */
        enter(c, ST_IDLE);
    }
    if (c->state == ST_IDLE)
        start_head(c);
    if (c->state == ST_HEAD)
        head_bytes_in(c, buf, info->orig_size);
}

/* ---- the set --------------------------------------------------------------------------------- */

struct rb_http_conns *rb_http_conns_new(struct event_base *base, rb_http_conn_page_fn page,
                                        void *owner)
{
    struct rb_http_conns *cs = rb_calloc(1, sizeof(*cs));
    cs->base = base;
    cs->page = page;
    cs->owner = owner;
    cs->n_buckets = 256;
    cs->buckets = rb_calloc(cs->n_buckets, sizeof(*cs->buckets));
    return cs;
}

void rb_http_conns_free(struct rb_http_conns *cs)
{
    if (!cs)
        return;
    while (cs->lingering)
        linger_end(cs->lingering);
    /* evhttp_free closed every connection it had hooked; one accepted in the last turn may not
     * have been hooked yet. */
    for (size_t i = 0; i < cs->n_buckets; i++)
        for (struct rb_http_conn *c = cs->buckets[i], *next; c; c = next) {
            next = c->hnext;
            event_free(c->timer);
            free(c);
        }
    free(cs->buckets);
    free(cs);
}

void rb_http_conns_set_limits(struct rb_http_conns *cs, const struct rb_http_limits *lim)
{
    if (!cs || !lim)
        return;
    cs->lim = *lim;
    double t = 0;
    const double d[] = {lim->header_timeout, lim->body_timeout, lim->keepalive_timeout};
    for (size_t i = 0; i < RB_ARRAY_LEN(d); i++)
        if (d[i] > 0 && (t == 0 || d[i] < t))
            t = d[i];
    cs->tick_s = t;
    cs->tick = NULL;
    if (t <= 0)
        return;
    cs->plain_tick.tv_sec = (time_t)t;
    cs->plain_tick.tv_usec = (suseconds_t)((t - (double)cs->plain_tick.tv_sec) * 1e6);
    cs->tick = event_base_init_common_timeout(cs->base, &cs->plain_tick);
    if (!cs->tick)
        cs->tick = &cs->plain_tick;
}

size_t rb_http_conns_open(const struct rb_http_conns *cs)
{
    return cs ? cs->open : 0;
}

struct rb_http_conn *rb_http_conn_open(struct rb_http_conns *cs, struct bufferevent *bev,
                                       rb_http_conn_out_fn out)
{
    struct rb_http_conn *c = rb_calloc(1, sizeof(*c));
    c->cs = cs;
    c->bev = bev;
    c->state = ST_SETUP;
    c->hook_on = 1;
    c->timer = evtimer_new(cs->base, on_timer, c);
    c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), out, c);
    if (!c->timer || !c->in_cb || !c->out_cb)
        rb_fatal("out of memory");
    cs->open++;
    size_t max = cs->lim.max_connections;
    c->over = max && cs->open > max;
    c->reject = max && cs->open > max + cs->lim.connection_reserve;
    if (cs->open > cs->n_buckets)
        table_grow(cs);
    size_t b = bucket_of(cs, bev);
    c->hnext = cs->buckets[b];
    cs->buckets[b] = c;
    struct timeval now = {0, 0};
    evtimer_add(c->timer, &now); /* the setup turn */
    return c;
}

struct rb_http_conn *rb_http_conn_of(struct rb_http_conns *cs, struct evhttp_request *ev)
{
    struct evhttp_connection *evcon = ev ? evhttp_request_get_connection(ev) : NULL;
    if (!cs || !evcon)
        return NULL;
    return table_find(cs, evhttp_connection_get_bufferevent(evcon));
}

void *rb_http_conn_owner(const struct rb_http_conn *c)
{
    return c->cs->owner;
}

int rb_http_conn_over(const struct rb_http_conn *c)
{
    return c && c->over;
}

const char *rb_http_conn_path(const struct rb_http_conn *c, char *buf, size_t cap)
{
    if (!c || c->state == ST_SETUP || c->state == ST_IDLE)
        return NULL;
    const char *sp = memchr(c->line, ' ', c->line_len);
    if (!sp)
        return NULL;
    const char *t = sp + 1, *end = c->line + c->line_len;
    if (t < end && *t != '/') { /* absolute-form: "http://host/path" */
        const char *scheme = t + 3 <= end ? memchr(t, ':', (size_t)(end - t)) : NULL;
        if (!scheme || end - scheme < 3 || memcmp(scheme, "://", 3) != 0)
            return NULL;
        t = memchr(scheme + 3, '/', (size_t)(end - scheme - 3));
        if (!t)
            return NULL;
    }
    size_t n = 0;
    while (t + n < end && t[n] != ' ' && t[n] != '?' && t[n] != '#')
        n++;
    if ((t + n == end && !c->line_done) || (t + n == end && c->line_len == sizeof(c->line)) ||
        n == 0 || n >= cap)
        return NULL; /* the path may go on past what was kept */
    memcpy(buf, t, n);
    buf[n] = '\0';
    return buf;
}

int rb_http_conn_head_too_big(const struct rb_http_conn *c)
{
    return c && c->head_too_big;
}

void rb_http_conn_busy(struct rb_http_conn *c)
{
    if (!c || c->state == ST_SETUP)
        return;
    enter(c, ST_BUSY); /* a pending tick finds it busy and stops */
}

void rb_http_conn_idle(struct rb_http_conn *c)
{
    if (!c || c->state == ST_SETUP)
        return;
    c->served = 1;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (evbuffer_get_length(in) > 0) { /* a pipelined request waits already */
        start_head(c);
        head_bytes_in(c, in, 0);
        return;
    }
    enter(c, ST_IDLE);
}
