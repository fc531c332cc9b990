/* Outgoing SMS: the 'message.send' job handler and delivery reports.
 *
 * A run loads the message, skips what is already sent (a rerun after a crash), refuses
 * notices to citizens who sent STOP (direct answers still go), puts what is not urgent back
 * until quiet hours end, and asks smsbox's sendsms (coding=2, charset=UTF-8, our id in the
 * dlr-url). 202 → 'sent'; no answer or 5xx → the job's back-off; other 4xx → 'failed' for good. Kannel then calls
 * /sms/kannel/dlr?id=OUR_ID&type=%d: 1 → delivered, 2/16 → failed.
 *
 * The gateway's rate (`rate` a second, `burst` at once) is kept by the jobs runner (host API
 * job_pace, set in sms_kannel.c): a run starts only at its turn, and the queue behind it waits
 * in the jobs table without being touched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sms_kannel.h"

#define api rb_sms_api

/* ---- one send ------------------------------------------------------------------------ */

struct send {
    struct rb_plugin_ctx *ctx; /* borrowed */
    struct rb_job_run *run;    /* borrowed until job_finish */
    char id[24];               /* messages.id */
    int status;                /* sendsms answer */
    char *error;               /* owned */
    int permanent;
};

static void send_free(struct send *s)
{
    free(s->error);
    free(s);
}

static const char load_sql[] =
    "SELECT m.channel, m.to_address, m.body, m.status, m.notice, m.urgent,"
    "  EXISTS (SELECT 1 FROM citizens c WHERE c.phone = m.to_address"
    "          AND c.opted_out_at IS NOT NULL)"
    " FROM messages m WHERE m.id = $1::bigint";

static const char sent_sql[] =
    "UPDATE messages SET status = 'sent', sent_at = now(), last_error = NULL"
    " WHERE id = $1::bigint AND status = 'queued'";

static const char failed_sql[] =
    "UPDATE messages SET status = 'failed', last_error = $2"
    " WHERE id = $1::bigint AND status IN ('queued', 'sent')";

static void updated(const struct rb_db_result *res, const char *err, void *arg)
{
    (void)res;
    struct send *s = arg;
    if (err) {
        /* The SMS may be out, but the row does not say so: run again rather than lose it. */
        api->job_finish(s->run, 0, err, -1, 0);
    } else if (s->error) {
        api->job_finish(s->run, 0, s->error, -1, s->permanent);
    } else {
        api->job_finish(s->run, 1, NULL, 0, 0);
    }
    send_free(s);
}

static void mark(struct send *s, const char *sql, const char *error)
{
    const char *params[2] = {s->id, error};
    if (api->db_query_prepared(s->ctx, sql, error ? 2 : 1, params, updated, s) != RB_OK) {
        api->job_finish(s->run, 0, "database unavailable", -1, 0);
        send_free(s);
    }
}

static void answered(int status, const char *body, size_t len, const char *err, void *arg)
{
    struct send *s = arg;
    if (status == 202) {
        mark(s, sent_sql, NULL);
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
    api->log(s->ctx, RB_LOG_WARN, "SMS message %s: %s", s->id, msg);
    if (status == 0 || status >= 500 || status == 429) {
        api->job_finish(s->run, 0, msg, -1, 0);
        send_free(s);
        return;
    }
    /* Bad credentials, a refused number, ...: retrying cannot help. */
    s->error = strdup(msg);
    s->permanent = 1;
    if (!s->error)
        abort();
    mark(s, failed_sql, msg);
}

static char *sendsms_url(const struct send *s, const char *to, const char *body)
{
    const struct rb_sms_conf *c = &rb_sms_conf;
    const char *base = c->dlr_base ? c->dlr_base : "http://127.0.0.1:8080";
    size_t bl = strlen(base);
    char *dlr_plain = malloc(bl + strlen(c->secret) * 3 + 96);
    if (!dlr_plain)
        abort();
    char *sec = rb_sms_urlencode(c->secret);
    sprintf(dlr_plain, "%.*s/sms/kannel/dlr?secret=%s&id=%s&type=%%d",
            (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl), base, sec, s->id);
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

static void loaded(const struct rb_db_result *res, const char *err, void *arg)
{
    struct send *s = arg;
    if (err) {
        api->job_finish(s->run, 0, err, -1, 0);
        send_free(s);
        return;
    }
    if (api->db_ntuples(res) != 1) {
        api->job_finish(s->run, 0, "no such message", -1, 1);
        send_free(s);
        return;
    }
    const char *channel = api->db_value(res, 0, 0), *to = api->db_value(res, 0, 1),
               *body = api->db_value(res, 0, 2), *status = api->db_value(res, 0, 3),
               *notice = api->db_value(res, 0, 4), *urgent = api->db_value(res, 0, 5),
               *opted_out = api->db_value(res, 0, 6);
    if (!channel || strcmp(channel, "sms") != 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "no sender for %s messages", channel ? channel : "?");
        api->job_finish(s->run, 0, msg, -1, 1);
        send_free(s);
        return;
    }
    if (!status || strcmp(status, "queued") != 0) {
        api->job_finish(s->run, 1, NULL, 0, 0); /* sent before: a rerun */
        send_free(s);
        return;
    }
    if (notice && notice[0] == 't' && opted_out && opted_out[0] == 't') {
        api->log(s->ctx, RB_LOG_INFO, "SMS message %s not sent: the citizen sent STOP", s->id);
        mark(s, failed_sql, "citizen opted out (STOP)");
        return;
    }
    if (!rb_sms_conf.secret) { /* stopped: the configuration is gone */
        api->job_finish(s->run, 0, "shutting down", 1, 0);
        send_free(s);
        return;
    }
    /* Quiet hours: what is not urgent waits for their end (the job's run_at, no sleep). */
    double quiet = urgent && urgent[0] == 't' ? 0 : api->quiet_wait(s->ctx);
    if (quiet > 0) {
        api->job_finish(s->run, 0, "quiet hours", quiet, 0);
        send_free(s);
        return;
    }
    char *url = sendsms_url(s, to ? to : "", body ? body : "");
    int rc = api->http_fetch(s->ctx, RB_HTTP_GET, url, NULL, NULL, 0, rb_sms_conf.timeout,
                             answered, s);
    free(url);
    if (rc != RB_OK) {
        api->job_finish(s->run, 0, "bad sendsms_url", -1, 0);
        send_free(s);
    }
}

void rb_sms_send_job(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    json_error_t e;
    json_t *p = json_loads(job->payload ? job->payload : "{}", 0, &e);
    json_t *id = p ? json_object_get(p, "message_id") : NULL;
    if (!json_is_integer(id) || json_integer_value(id) <= 0) {
        json_decref(p);
        api->job_finish(run, 0, "payload has no message_id", -1, 1);
        return;
    }
    struct send *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    s->ctx = arg;
    s->run = run;
    snprintf(s->id, sizeof(s->id), "%lld", (long long)json_integer_value(id));
    json_decref(p);
    const char *params[1] = {s->id};
    if (api->db_query_prepared(s->ctx, load_sql, 1, params, loaded, s) != RB_OK) {
        api->job_finish(run, 0, "database unavailable", -1, 0);
        send_free(s);
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

static const char dlr_sql[] =
    "UPDATE messages SET"
    "  status = CASE WHEN $2::int = 1 THEN 'delivered' ELSE 'failed' END,"
    "  delivered_at = CASE WHEN $2::int = 1 THEN now() ELSE delivered_at END,"
    "  last_error = CASE WHEN $2::int = 1 THEN NULL"
    "    ELSE left('delivery report ' || $2 || ': ' || coalesce($3, ''), 500) END"
    " WHERE id = $1::bigint AND channel = 'sms' AND status IN ('queued', 'sent')";

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
