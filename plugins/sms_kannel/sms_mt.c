/* Outgoing SMS: the sender of channel "sms" and delivery reports.
 *
 * The core hands each SMS to send (host API message_sender: it has skipped what is already
 * sent, failed notices to citizens who sent STOP and waited out quiet hours); this asks
 * smsbox's sendsms (coding=2, charset=UTF-8, our id in the dlr-url) and reports with
 * message_done: 202 → sent; no answer, 429 or 5xx → retry with the queue's back-off; other
 * 4xx → failed for good. Kannel then calls /sms/kannel/dlr?id=OUR_ID&type=%d: 1 → delivered,
 * 2/16 → failed (core's function rabta_message_delivery).
 *
 * The gateway's rate (`rate` a second, `burst` at once) is kept by the jobs runner (host API
 * job_pace on kind message.send.sms, set in sms_kannel.c): a run starts only at its turn, and
 * the queue behind it waits in the jobs table without being touched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sms_kannel.h"

#define api rb_sms_api

/* ---- one send ------------------------------------------------------------------------ */

struct send {
    struct rb_plugin_ctx *ctx;    /* borrowed */
    struct rb_message_send *send; /* borrowed until message_done */
    long long id;                 /* messages.id */
};

static void answered(int status, const char *body, size_t len, const char *err, void *arg)
{
    struct send *s = arg;
    if (status == 202) {
        api->message_done(s->send, RB_SEND_SENT, 0, NULL, NULL);
        free(s);
        return;
    }
    char msg[200];
    if (status == 0)
        snprintf(msg, sizeof(msg), "Kannel: %s", err ? err : "no answer");
    else
        snprintf(msg, sizeof(msg), "Kannel answered %d: %.*s", status,
                 (int)(len > 120 ? 120 : len), body);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    api->log(s->ctx, RB_LOG_WARN, "SMS message %lld: %s", s->id, msg);
    /* No answer, 5xx, 429: again later. Bad credentials, a refused number: retrying cannot
     * help. */
    int again = status == 0 || status >= 500 || status == 429;
    api->message_done(s->send, again ? RB_SEND_RETRY : RB_SEND_FAILED, -1, msg, NULL);
    free(s);
}

static char *sendsms_url(long long id, const char *to, const char *body)
{
    const struct rb_sms_conf *c = &rb_sms_conf;
    const char *base = c->dlr_base ? c->dlr_base : "http://127.0.0.1:8080";
    size_t bl = strlen(base);
    char *dlr_plain = malloc(bl + strlen(c->secret) * 3 + 96);
    if (!dlr_plain)
        abort();
    char *sec = rb_sms_urlencode(c->secret);
    sprintf(dlr_plain, "%.*s/sms/kannel/dlr?secret=%s&id=%lld&type=%%d",
            (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl), base, sec, id);
    free(sec);
    char *u_user = rb_sms_urlencode(c->username ? c->username : "");
    char *u_pass = rb_sms_urlencode(c->password ? c->password : "");
    char *u_from = rb_sms_urlencode(c->sender ? c->sender : "8080");
    char *u_to = rb_sms_urlencode(to);
    char *u_text = rb_sms_urlencode(body);
    char *u_dlr = rb_sms_urlencode(dlr_plain);
    const char *url = c->sendsms_url ? c->sendsms_url : "http://127.0.0.1:13013/cgi-bin/sendsms";
    size_t n = strlen(url) + strlen(u_user) + strlen(u_pass) + strlen(u_from) + strlen(u_to) +
               strlen(u_text) + strlen(u_dlr) + 160;
    char *out = malloc(n);
    if (!out)
        abort();
    snprintf(out, n,
             "%s%cusername=%s&password=%s&from=%s&to=%s&text=%s&coding=2&charset=UTF-8"
             "&dlr-mask=31&dlr-url=%s",
             url, strchr(url, '?') ? '&' : '?', u_user, u_pass, u_from, u_to, u_text, u_dlr);
    free(u_user);
    free(u_pass);
    free(u_from);
    free(u_to);
    free(u_text);
    free(u_dlr);
    free(dlr_plain);
    return out;
}

/* The sender of channel "sms" (host API message_sender): the core has loaded the message,
 * left out opted-out notices and waited out quiet hours; sendsms answers, message_done says. */
void rb_sms_send(struct rb_message_send *send, const struct rb_message_info *m, void *arg)
{
    if (!rb_sms_conf.secret) { /* stopped: the configuration is gone */
        api->message_done(send, RB_SEND_RETRY, 1, "shutting down", NULL);
        return;
    }
    struct send *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    s->ctx = arg;
    s->send = send;
    s->id = m->id;
    char *url = sendsms_url(m->id, m->to, m->body);
    int rc = api->http_fetch(s->ctx, RB_HTTP_GET, url, NULL, NULL, 0, rb_sms_conf.timeout,
                             answered, s);
    free(url);
    if (rc != RB_OK) {
        api->message_done(send, RB_SEND_RETRY, -1, "bad sendsms_url", NULL);
        free(s);
    }
}

/* ---- delivery reports ---------------------------------------------------------------- */


static void dlr_done(const struct rb_db_result *res, const char *err, void *arg)
{
    (void)res;
    struct rb_http_req *req = arg;
    if (err && strstr(err, "(SQLSTATE 22")) /* bytes PostgreSQL refuses: the sender's fault */
        api->reply(req, 400, "text/plain", "bad value\n", 10);
    else if (err)
        api->reply(req, 503, "text/plain", "try again\n", 10);
    else
        api->reply(req, 200, "text/plain", "ok\n", 3);
}

/* Through core's published function (docs/plugins.md): the plugin writes no core table. */
static const char dlr_sql[] =
    "SELECT rabta_message_delivery('sms', $1::bigint, $2::int = 1,"
    "  'delivery report ' || $2 || ': ' || coalesce($3, ''))";

void rb_sms_on_dlr(struct rb_http_req *req, void *arg)
{
    struct rb_plugin_ctx *ctx = arg;
    if (!rb_sms_secret_ok(api->req_query(req, "secret"), rb_sms_conf.secret)) {
        api->reply(req, 403, "text/plain", "forbidden\n", 10);
        return;
    }
    const char *id = api->req_query(req, "id"), *type = api->req_query(req, "type");
    char *end = NULL;
    errno = 0;
    long long mid = id ? strtoll(id, &end, 10) : 0;
    int range = errno == ERANGE; /* an id past bigint */
    long t = type ? strtol(type, NULL, 10) : 0;
    if (!id || !*id || *end || mid <= 0 || range || !type) {
        api->reply(req, 400, "text/plain", "bad id or type\n", 15);
        return;
    }
    api->log(ctx, RB_LOG_DEBUG, "delivery report %ld for message %lld", t, mid);
    /* 1 delivered; 2 failed and 16 rejected by the SMSC; 4 buffered and 8 at the SMSC say
     * nothing final. */
    if (t != 1 && t != 2 && t != 16) {
        api->reply(req, 200, "text/plain", "ok\n", 3);
        return;
    }
    char ts[8];
    snprintf(ts, sizeof(ts), "%ld", t);
    const char *params[3] = {id, ts, api->req_query(req, "answer")};
    if (api->db_query_prepared(ctx, dlr_sql, 3, params, dlr_done, req) != RB_OK)
        api->reply(req, 503, "text/plain", "try again\n", 10);
}
