/* The FastAGI server (see ivr_agi.h). */
#include "ivr_agi.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <rabta/plugin.h>

#define AGI_HEADERS_MAX 64
#define AGI_HEADER_TIMEOUT 10 /* seconds for Asterisk to send its headers */
#define AGI_IDLE_TIMEOUT 900  /* seconds with no line while a command runs */

enum conn_state { C_HEADERS, C_READY, C_USAGE, C_GONE };

struct rb_agi_conn {
    struct rb_agi *agi;
    struct bufferevent *bev; /* owned */
    enum conn_state state;
    int hungup;
    int owned;               /* handed to on_session */
    int in_read;             /* on_read is on the stack: rb_agi_close only marks */
    int closed;              /* the owner closed it during on_read */
    size_t n_env;
    char *env[AGI_HEADERS_MAX]; /* owned: "agi_x\0value" */
    double replied_at;       /* monotonic: a reply was handed to the owner; 0: none */
    rb_agi_reply_fn fn;      /* pending command */
    void *fn_arg;
    rb_agi_gone_fn gone;
    void *gone_arg;
    struct rb_agi_conn *prev, *next;
};

/* Time from reading a reply to writing the next command (the plugin's own share of a caller's
 * wait), in power-of-two microsecond buckets; logged at stop (bench_ivr.sh reads it). */
#define AGI_LAT_BUCKETS 24

struct rb_agi {
    struct evconnlistener *lis; /* owned */
    unsigned long long lat[AGI_LAT_BUCKETS];
    rb_agi_session_fn on_session;
    rb_ivr_log_fn log;
    void *arg;
    int port;
    size_t n;
    struct rb_agi_conn *conns; /* owned list */
};

#define say(a, level, ...) rb_ivr_logf((a)->log, (a)->arg, (level), __VA_ARGS__)

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void lat_add(struct rb_agi *a, double seconds)
{
    unsigned long long us = (unsigned long long)(seconds * 1e6);
    size_t b = 0;
    while (us > 1 && b + 1 < AGI_LAT_BUCKETS) {
        us >>= 1;
        b++;
    }
    a->lat[b]++;
}

/* The bucket's upper bound in microseconds below which share of the samples fall. */
static unsigned long long lat_quantile(const struct rb_agi *a, double share)
{
    unsigned long long n = 0, seen = 0;
    for (size_t b = 0; b < AGI_LAT_BUCKETS; b++)
        n += a->lat[b];
    for (size_t b = 0; b < AGI_LAT_BUCKETS; b++) {
        seen += a->lat[b];
        if (n && seen >= share * (double)n)
            return 2ull << b;
    }
    return 0;
}

static void conn_free(struct rb_agi_conn *c)
{
    struct rb_agi *a = c->agi;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->n--;
    bufferevent_free(c->bev);
    for (size_t i = 0; i < c->n_env; i++)
        free(c->env[i]);
    free(c);
}

/* The socket is gone: tell the owner once (it closes), or close now if there is none. */
static void conn_gone(struct rb_agi_conn *c)
{
    if (c->state == C_GONE)
        return;
    c->state = C_GONE;
    c->hungup = 1;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    if (!c->owned) {
        rb_agi_close(c);
        return;
    }
    rb_agi_reply_fn fn = c->fn;
    if (fn) {
        c->fn = NULL;
        fn(c, NULL, c->fn_arg);
    } else if (c->gone) {
        c->gone(c, c->gone_arg);
    }
}

static int header_line(struct rb_agi_conn *c, const char *line)
{
    const char *key, *val;
    size_t klen;
    int h = rb_agi_header(line, &key, &klen, &val);
    if (h < 0) {
        say(c->agi, RB_LOG_WARN, "FastAGI: malformed header line \"%.80s\" (expected "
                                 "\"agi_name: value\"); the call is refused",
            line);
        return -1;
    }
    if (h == 0) {
        if (c->n_env == 0 || !rb_agi_env(c, "agi_request")) {
            say(c->agi, RB_LOG_WARN, "FastAGI: headers without agi_request; the call is "
                                     "refused");
            return -1;
        }
        c->state = C_READY;
        c->owned = 1;
        struct timeval tv = {AGI_IDLE_TIMEOUT, 0};
        bufferevent_set_timeouts(c->bev, &tv, NULL);
        c->agi->on_session(c, c->agi->arg);
        return 1; /* c may be closed now */
    }
    if (c->n_env >= AGI_HEADERS_MAX) {
        say(c->agi, RB_LOG_WARN, "FastAGI: more than %d header lines; the call is refused",
            AGI_HEADERS_MAX);
        return -1;
    }
    size_t vlen = strlen(val);
    char *e = malloc(klen + 1 + vlen + 1);
    if (!e)
        return -1;
    memcpy(e, key, klen);
    e[klen] = '\0';
    memcpy(e + klen + 1, val, vlen + 1);
    c->env[c->n_env++] = e;
    return 0;
}

/* One line after the headers. Returns 1 when the owner was called (c may be gone). */
static int reply_line(struct rb_agi_conn *c, const char *line)
{
    struct rb_agi_reply r;
    if (c->state == C_USAGE) {
        if (strncmp(line, "520 ", 4) != 0)
            return 0;
        c->state = C_READY;
    }
    enum rb_agi_line k = rb_agi_reply_parse(line, &r);
    if (k == RB_AGI_HANGUP) {
        c->hungup = 1;
        return 0;
    }
    if (k == RB_AGI_USAGE) {
        c->state = C_USAGE;
        return 0;
    }
    if (k == RB_AGI_BAD) {
        say(c->agi, RB_LOG_WARN, "FastAGI %s: unexpected line \"%.80s\" from Asterisk",
            rb_agi_env(c, "agi_uniqueid") ? rb_agi_env(c, "agi_uniqueid") : "?", line);
        memset(&r, 0, sizeof(r));
    }
    if (r.code == 511)
        c->hungup = 1;
    rb_agi_reply_fn fn = c->fn;
    if (!fn) {
        say(c->agi, RB_LOG_DEBUG, "FastAGI: a reply with no command pending: \"%.80s\"", line);
        return 0;
    }
    c->fn = NULL;
    c->replied_at = mono();
    fn(c, &r, c->fn_arg);
    return 1;
}

static void read_lines(struct rb_agi_conn *c, struct evbuffer *in)
{
    while (!c->closed) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        if (!line) {
            if (evbuffer_get_length(in) > RB_IVR_LINE_MAX) {
                say(c->agi, RB_LOG_WARN, "FastAGI: a line longer than %d bytes; closing",
                    RB_IVR_LINE_MAX);
                conn_gone(c);
            }
            return;
        }
        int rc;
        if (len > RB_IVR_LINE_MAX || memchr(line, '\0', len)) {
            rc = -1;
            say(c->agi, RB_LOG_WARN, "FastAGI: a line longer than %d bytes or with a NUL; "
                                     "closing", RB_IVR_LINE_MAX);
        } else {
            rc = c->state == C_HEADERS ? header_line(c, line) : reply_line(c, line);
        }
        free(line);
        if (rc < 0) {
            conn_gone(c);
            return;
        }
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct rb_agi_conn *c = arg;
    c->in_read = 1;
    read_lines(c, bufferevent_get_input(bev));
    c->in_read = 0;
    if (c->closed)
        conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct rb_agi_conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT)
        say(c->agi, c->state == C_HEADERS ? RB_LOG_WARN : RB_LOG_INFO,
            "FastAGI: no line from Asterisk for too long; closing");
    conn_gone(c);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)lis;
    (void)sa;
    (void)salen;
    struct rb_agi *a = arg;
    struct rb_agi_conn *c = calloc(1, sizeof(*c));
    struct event_base *base = evconnlistener_get_base(a->lis);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    int one = 1; /* one short line each way per step: never wait to coalesce */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    c->agi = a;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->n++;
    struct timeval tv = {AGI_HEADER_TIMEOUT, 0};
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

struct rb_agi *rb_agi_listen(struct event_base *base, const char *addr, int port,
                             rb_agi_session_fn on_session, rb_ivr_log_fn log, void *arg,
                             char *err, size_t errlen)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        snprintf(err, errlen, "agi_listen: \"%s\" is not an IPv4 address", addr);
        return NULL;
    }
    struct rb_agi *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->on_session = on_session;
    a->log = log;
    a->arg = arg;
    a->lis = evconnlistener_new_bind(base, on_accept, a,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                     (struct sockaddr *)&sin, sizeof(sin));
    if (!a->lis) {
        snprintf(err, errlen, "agi_listen %s:%d: %s", addr, port, strerror(errno));
        free(a);
        return NULL;
    }
    struct sockaddr_in got;
    socklen_t gl = sizeof(got);
    if (getsockname(evconnlistener_get_fd(a->lis), (struct sockaddr *)&got, &gl) == 0)
        a->port = ntohs(got.sin_port);
    return a;
}

int rb_agi_port(const struct rb_agi *a)
{
    return a->port;
}

size_t rb_agi_active(const struct rb_agi *a)
{
    return a ? a->n : 0;
}

void rb_agi_free(struct rb_agi *a)
{
    if (!a)
        return;
    unsigned long long n = 0;
    for (size_t b = 0; b < AGI_LAT_BUCKETS; b++)
        n += a->lat[b];
    say(a, RB_LOG_INFO, "FastAGI: %llu replies answered by a next command; reply to next "
                        "command within %llu us (p50), %llu us (p99), %llu us (p99.9)",
        n, lat_quantile(a, 0.5), lat_quantile(a, 0.99), lat_quantile(a, 0.999));
    evconnlistener_free(a->lis);
    while (a->conns)
        conn_free(a->conns);
    free(a);
}

const char *rb_agi_env(const struct rb_agi_conn *c, const char *key)
{
    for (size_t i = 0; i < c->n_env; i++)
        if (strcmp(c->env[i], key) == 0)
            return c->env[i] + strlen(c->env[i]) + 1;
    return NULL;
}

/* Writes the line to the socket at once when nothing is queued before it: a bufferevent
 * would write it only when the loop next polls, after every other event ready in this turn
 * (hundreds of calls' lines, the database's answers), which is the caller's wait. What the
 * socket does not take now is queued and written by the bufferevent. 0, or -1. */
static int write_now(struct rb_agi_conn *c, const char *line, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t done = 0;
    if (evbuffer_get_length(out) == 0) {
        ssize_t w = send(bufferevent_getfd(c->bev), line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return 0; /* the socket is gone: its read side reports it (conn_gone) */
        done = w > 0 ? (size_t)w : 0;
    }
    return done == len ? 0 : bufferevent_write(c->bev, line + done, len - done);
}

int rb_agi_cmd(struct rb_agi_conn *c, rb_agi_reply_fn fn, void *arg, const char *fmt, ...)
{
    if (c->state == C_GONE)
        return RB_ERR;
    if (c->fn)
        return RB_EINVAL;
    char line[RB_IVR_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 1 || strpbrk(line, "\r\n"))
        return RB_EINVAL;
    line[n] = '\n';
    if (c->replied_at > 0) {
        lat_add(c->agi, mono() - c->replied_at);
        c->replied_at = 0;
    }
    c->fn = fn;
    c->fn_arg = arg;
    if (write_now(c, line, (size_t)n + 1) != 0) {
        c->fn = NULL;
        return RB_ERR;
    }
    return RB_OK;
}

void rb_agi_set_gone(struct rb_agi_conn *c, rb_agi_gone_fn fn, void *arg)
{
    c->gone = fn;
    c->gone_arg = arg;
}

int rb_agi_hungup(const struct rb_agi_conn *c)
{
    return c->hungup;
}

void rb_agi_close(struct rb_agi_conn *c)
{
    if (c->in_read) {
        c->closed = 1;
        c->state = C_GONE;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    conn_free(c);
}
