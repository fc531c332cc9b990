/* A FastAGI load generator for bench_ivr.sh: plays Asterisk's side of many hotline calls at
 * once against rabtad's FastAGI port. Each call sends the agi_* headers, answers ANSWER at once,
 * picks a language, presses an invalid key LOOPS times at the main menu (each "invalid"
 * prompt plays for PLAY_MS), then asks for status (an unknown caller ID: "no cases"), and
 * ends when rabtad hangs up. New calls start at RATE a second until TOTAL have started.
 *
 * Measured, for every key: the time from writing a keypad answer (a GET DATA reply, sent on
 * the socket at once) to rabtad's next command, twice: "wire", to the command's arrival at
 * this process's socket (the kernel's receive timestamp, SO_TIMESTAMPNS: rabtad's share and
 * the kernel's, both ways), and "read", to this process reading it (plus the time its own
 * loop took to get there). And the most calls connected at once.
 *
 *   agi_load PORT RATE TOTAL PLAY_MS LOOPS TIMEOUT_S */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

struct call {
    struct bufferevent *bev; /* connects and writes; reading is rd's */
    struct event *rd;        /* reads with recvmsg, for the receive timestamps */
    struct evbuffer *in;
    struct event *play;
    int gets, loops;
    double key_sent; /* CLOCK_REALTIME (the kernel's timestamps' clock); 0: no key waiting */
    int id;
};

struct lats {
    double *v;
    size_t n, cap;
};

static struct event_base *base;
static struct sockaddr_in sin_;
static int rate, total, play_ms, loops, started, live, max_live, done, failed;
static struct lats wire, rd;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static void lat_add(struct lats *l, double v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = v;
}

static void call_end(struct call *c, int ok)
{
    if (c->play)
        event_free(c->play);
    if (c->rd)
        event_free(c->rd);
    evbuffer_free(c->in);
    bufferevent_free(c->bev);
    free(c);
    live--;
    ok ? done++ : failed++;
    if (started >= total && live == 0)
        event_base_loopexit(base, NULL);
}

/* Writes at once when nothing waits before it (a bufferevent would write on the loop's next
 * poll, after this turn's other calls, and the time measured would be the generator's own). */
static void say(struct call *c, const char *s)
{
    size_t len = strlen(s), sent = 0;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        ssize_t w = send(bufferevent_getfd(c->bev), s, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        sent = w > 0 ? (size_t)w : 0;
    }
    if (sent < len)
        bufferevent_write(c->bev, s + sent, len - sent);
}

static void on_played(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    say(arg, "200 result=0 endpos=8000\n");
}

/* A command from rabtad; arrived: when its bytes reached the socket (CLOCK_REALTIME). */
static void command(struct call *c, const char *line, double arrived)
{
    if (c->key_sent > 0) {
        lat_add(&wire, arrived - c->key_sent);
        lat_add(&rd, clock_s(CLOCK_REALTIME) - c->key_sent);
        c->key_sent = 0;
    }
    if (strncmp(line, "STREAM FILE", 11) == 0) {
        struct timeval tv = {play_ms / 1000, (play_ms % 1000) * 1000};
        event_add(c->play, &tv);
    } else if (strncmp(line, "GET DATA", 8) == 0) {
        const char *key = c->gets++ == 0 ? "1" : c->loops-- > 0 ? "9" : "2";
        char r[32];
        snprintf(r, sizeof(r), "200 result=%s\n", key);
        c->key_sent = clock_s(CLOCK_REALTIME);
        say(c, r);
    } else if (strncmp(line, "HANGUP", 6) == 0) {
        say(c, "200 result=1\n");
    } else {
        say(c, "200 result=0\n");
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct call *c = arg;
    char buf[4096], ctl[CMSG_SPACE(sizeof(struct timespec))];
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = sizeof(ctl)};
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        call_end(c, n == 0 && c->gets > loops + 1); /* rabtad hung up after the last step */
        return;
    }
    double arrived = clock_s(CLOCK_REALTIME);
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            arrived = (double)ts.tv_sec + ts.tv_nsec / 1e9;
        }
    evbuffer_add(c->in, buf, (size_t)n);
    char *line;
    size_t len;
    while ((line = evbuffer_readln(c->in, &len, EVBUFFER_EOL_LF))) {
        command(c, line, arrived);
        free(line);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct call *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1, fd = bufferevent_getfd(c->bev);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
        bufferevent_disable(c->bev, EV_READ);
        c->rd = event_new(base, fd, EV_READ | EV_PERSIST, on_read, c);
        event_add(c->rd, NULL);
        char h[600];
        snprintf(h, sizeof(h),
                 "agi_network: yes\nagi_network_script: hotline\nagi_request: "
                 "agi://127.0.0.1/hotline\nagi_channel: PJSIP/trunk-%08x\nagi_language: en\n"
                 "agi_type: PJSIP\nagi_uniqueid: 1733200000.%d\nagi_callerid: unknown\n"
                 "agi_calleridname: unknown\nagi_context: rabta-hotline\nagi_extension: 1334\n"
                 "agi_priority: 2\nagi_enhanced: 0.0\n\n",
                 c->id, c->id);
        say(c, h);
        return;
    }
    call_end(c, (what & BEV_EVENT_EOF) && c->gets > loops + 1);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    static double t0;
    if (!t0)
        t0 = now();
    int due = (int)((now() - t0) * rate) + 1;
    while (started < total && started < due) {
        struct call *c = calloc(1, sizeof(*c));
        c->id = started++;
        c->loops = loops;
        c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        c->play = evtimer_new(base, on_played, c);
        c->in = evbuffer_new();
        bufferevent_setcb(c->bev, NULL, NULL, on_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        live++;
        if (live > max_live)
            max_live = live;
        bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin_, sizeof(sin_));
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* " NAME_ms p50 X p90 X p99 X p99.9 X max X" */
static void print_lats(const char *name, struct lats *l)
{
    qsort(l->v, l->n, sizeof(*l->v), cmp);
    const double q[] = {0.5, 0.9, 0.99, 0.999};
    const char *qn[] = {"p50", "p90", "p99", "p99.9"};
    printf(" %s_ms", name);
    for (size_t i = 0; i < 4; i++)
        printf(" %s %.3f", qn[i], l->n ? l->v[(size_t)((double)l->n * q[i])] * 1e3 : 0);
    printf(" max %.3f", l->n ? l->v[l->n - 1] * 1e3 : 0);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: agi_load PORT RATE TOTAL PLAY_MS LOOPS TIMEOUT_S\n");
        return 2;
    }
    sin_.sin_family = AF_INET;
    sin_.sin_port = htons((unsigned short)atoi(argv[1]));
    inet_pton(AF_INET, "127.0.0.1", &sin_.sin_addr);
    rate = atoi(argv[2]);
    total = atoi(argv[3]);
    play_ms = atoi(argv[4]);
    loops = atoi(argv[5]);
    base = event_base_new();
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 5000}, limit = {atoi(argv[6]), 0};
    event_add(tick, &tv);
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    printf("calls %d completed %d failed %d unfinished %d max_simultaneous %d keys %zu",
           started, done, failed, live, max_live, wire.n);
    print_lats("wire", &wire);
    print_lats("read", &rd);
    printf("\n");
    return failed || live ? 1 : 0;
}
