/* The AMI client (see ivr_ami.h). One enum for the connection's state, one function per
 * step: connect -> banner -> login -> up; any failure -> down, and a timer to connect again. */
#include "ivr_ami.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <rabta/plugin.h>

#define AMI_BACKOFF_MIN 1.0
#define AMI_BACKOFF_MAX 30.0
#define AMI_CONNECT_TIMEOUT 10

enum ami_state { A_DOWN, A_CONNECTING, A_BANNER, A_LOGIN, A_UP };

struct rb_ami {
    struct event_base *base;
    struct sockaddr_in sin;
    char *username, *secret; /* owned */
    rb_ami_msg_fn on_msg;
    rb_ami_state_fn on_state;
    rb_ivr_log_fn log;
    void *arg;
    enum ami_state state;
    struct bufferevent *bev; /* owned; NULL when down */
    struct event *retry;     /* owned */
    double backoff;
    struct rb_ami_msg msg;
};

#define say(a, level, ...) rb_ivr_logf((a)->log, (a)->arg, (level), __VA_ARGS__)

static void ami_connect(struct rb_ami *a);

/* Closes the connection and schedules the next try. */
static void ami_down(struct rb_ami *a, const char *why)
{
    int was_up = a->state == A_UP;
    if (a->bev) {
        bufferevent_free(a->bev);
        a->bev = NULL;
    }
    a->state = A_DOWN;
    say(a, was_up ? RB_LOG_WARN : RB_LOG_INFO, "AMI %s:%d: %s; connecting again in %.0f s",
        inet_ntoa(a->sin.sin_addr), ntohs(a->sin.sin_port), why, a->backoff);
    struct timeval tv = {(time_t)a->backoff, 0};
    event_add(a->retry, &tv);
    a->backoff = a->backoff * 2 > AMI_BACKOFF_MAX ? AMI_BACKOFF_MAX : a->backoff * 2;
    if (was_up && a->on_state)
        a->on_state(0, a->arg);
}

static int send_fields(struct rb_ami *a, const char *const *f, size_t n)
{
    struct evbuffer *out = bufferevent_get_output(a->bev);
    for (size_t i = 0; i < n; i++)
        if (!rb_ami_value_ok(f[2 * i]) || !rb_ami_value_ok(f[2 * i + 1]))
            return RB_EINVAL;
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", f[2 * i], f[2 * i + 1]);
    evbuffer_add(out, "\r\n", 2);
    return RB_OK;
}

static void on_login(struct rb_ami *a, const struct rb_ami_msg *m)
{
    const char *resp = rb_ami_get(m, "Response");
    if (!resp)
        return; /* an event before the answer */
    if (strcasecmp(resp, "Success") != 0) {
        const char *why = rb_ami_get(m, "Message");
        say(a, RB_LOG_ERROR, "AMI login refused for user \"%s\": %s (check username and "
                             "secret in manager.conf and the plugin's ami_username/ami_secret)",
            a->username, why ? why : resp);
        ami_down(a, "login refused");
        return;
    }
    a->state = A_UP;
    a->backoff = AMI_BACKOFF_MIN;
    say(a, RB_LOG_INFO, "AMI %s:%d: logged in as %s", inet_ntoa(a->sin.sin_addr),
        ntohs(a->sin.sin_port), a->username);
    if (a->on_state)
        a->on_state(1, a->arg);
}

/* One line; returns 0 to go on, -1 when the connection was closed. */
static int ami_line(struct rb_ami *a, const char *line)
{
    if (a->state == A_BANNER) {
        char ver[32];
        if (!rb_ami_banner(line, ver, sizeof(ver))) {
            ami_down(a, "the peer is not an Asterisk manager (no \"Asterisk Call Manager/\" "
                        "banner)");
            return -1;
        }
        const char *login[] = {"Action", "Login", "ActionID", "rabta-login", "Username",
                               a->username, "Secret", a->secret, "Events", "call"};
        if (send_fields(a, login, 5) != RB_OK) {
            ami_down(a, "the username or secret holds a line break");
            return -1;
        }
        a->state = A_LOGIN;
        rb_ami_msg_reset(&a->msg);
        return 0;
    }
    int rc = rb_ami_msg_line(&a->msg, line);
    if (rc < 0) {
        ami_down(a, "a malformed message line");
        return -1;
    }
    if (rc == 0)
        return 0;
    if (a->state == A_LOGIN) {
        on_login(a, &a->msg);
        rb_ami_msg_reset(&a->msg);
        return a->state == A_DOWN ? -1 : 0;
    }
    a->on_msg(&a->msg, a->arg);
    rb_ami_msg_reset(&a->msg);
    return a->state == A_UP ? 0 : -1;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct rb_ami *a = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        if (!line) {
            if (evbuffer_get_length(in) > RB_IVR_LINE_MAX * 4)
                ami_down(a, "a line too long");
            return;
        }
        int rc = ami_line(a, line);
        free(line);
        if (rc < 0 || a->bev != bev)
            return;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct rb_ami *a = arg;
    if (what & BEV_EVENT_CONNECTED) {
        a->state = A_BANNER;
        bufferevent_set_timeouts(a->bev, NULL, NULL);
        return;
    }
    ami_down(a, what & BEV_EVENT_EOF       ? "Asterisk closed the connection"
                : what & BEV_EVENT_TIMEOUT ? "connection timed out"
                                           : "connection refused or reset");
}

static void ami_connect(struct rb_ami *a)
{
    a->bev = bufferevent_socket_new(a->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!a->bev) {
        ami_down(a, "out of sockets");
        return;
    }
    bufferevent_setcb(a->bev, on_read, NULL, on_event, a);
    struct timeval tv = {AMI_CONNECT_TIMEOUT, 0};
    bufferevent_set_timeouts(a->bev, &tv, &tv);
    bufferevent_enable(a->bev, EV_READ | EV_WRITE);
    a->state = A_CONNECTING;
    rb_ami_msg_reset(&a->msg);
    if (bufferevent_socket_connect(a->bev, (struct sockaddr *)&a->sin, sizeof(a->sin)) != 0)
        ami_down(a, "cannot connect");
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ami_connect(arg);
}

struct rb_ami *rb_ami_new(struct event_base *base, const struct rb_ami_opts *o,
                          rb_ami_msg_fn on_msg, rb_ami_state_fn on_state, rb_ivr_log_fn log,
                          void *arg)
{
    struct rb_ami *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->sin.sin_family = AF_INET;
    a->sin.sin_port = htons((unsigned short)o->port);
    if (inet_pton(AF_INET, o->host, &a->sin.sin_addr) != 1) {
        free(a);
        return NULL;
    }
    a->base = base;
    a->username = strdup(o->username ? o->username : "");
    a->secret = strdup(o->secret ? o->secret : "");
    a->on_msg = on_msg;
    a->on_state = on_state;
    a->log = log;
    a->arg = arg;
    a->backoff = AMI_BACKOFF_MIN;
    a->retry = evtimer_new(base, on_retry, a);
    if (!a->username || !a->secret || !a->retry) {
        rb_ami_free(a);
        return NULL;
    }
    ami_connect(a);
    return a;
}

int rb_ami_up(const struct rb_ami *a)
{
    return a && a->state == A_UP;
}

int rb_ami_action(struct rb_ami *a, const char *const *fields, size_t n)
{
    if (!rb_ami_up(a))
        return RB_EUNAVAIL;
    return send_fields(a, fields, n);
}

void rb_ami_free(struct rb_ami *a)
{
    if (!a)
        return;
    if (a->bev)
        bufferevent_free(a->bev);
    if (a->retry)
        event_free(a->retry);
    free(a->username);
    free(a->secret);
    free(a);
}
