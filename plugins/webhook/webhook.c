/* webhook: the department plugin for departments with their own system (docs/webhook.md).
 *
 * Delivery: every case handed to a department that uses this plugin (a new case, or one
 * transferred to it: a "case.deliver" job run) is POSTed as JSON to the department's url,
 * signed (webhook_sign.h). A 2xx answer finishes the run; anything else fails it and the jobs
 * queue retries with exponential back-off, except a 4xx other than 408/429, which is final
 * (the run goes dead with the reason). A request sent whole that got no answer (the
 * connection dropped, or the timeout) has outcome "unknown": the department may have the
 * case, and the retry carries the same X-Rabta-Delivery so that it can tell. Every attempt is
 * a case event "webhook.delivery".
 *
 * Callback: POST /api/v1/departments/:department/callback, signed the same way with the
 * department's secret, reports acknowledged / in_progress / resolved / rejected / answered
 * for one of the department's cases; the step goes through the host API case_act (the same
 * state machine and statement as the staff API). Refusals are a clear 4xx and a log line. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <rabta/plugin.h>

#include "webhook_sign.h"

#define CALLBACK_TEXT_MAX 5000
#define SECRET_MIN 16

struct webhook_conf {
    double timeout;           /* seconds per delivery attempt */
    long long max_attempts;   /* delivery attempts before giving up */
    double window;            /* seconds a callback's timestamp may be off */
    size_t max_callback_body; /* bytes */
    char *ca_file;            /* owned: CA certificates (PEM) for https:// urls; NULL: the
                                 system's trusted CAs */
};

/* Checks of single values, reported by the core at the value's file:line:col. */
static const char *window_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x >= 1 && x <= 3600 ? NULL : "must be from 1s to 1h";
}

static const char *ca_file_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block;
    const char *path = *(char *const *)v;
    if (access(path, R_OK) == 0)
        return NULL;
    snprintf(why, n, "\"%.200s\" cannot be read: give a PEM file of the CA certificates that "
                     "vouch for the departments' https:// servers", path);
    return why;
}

static const struct rb_conf_field_v2 webhook_fields[] = {
    {"timeout", RB_CONF_DURATION, offsetof(struct webhook_conf, timeout), 0, 0, 0, NULL, NULL},
    {"max_attempts", RB_CONF_INT, offsetof(struct webhook_conf, max_attempts), 0, 1, 100, NULL,
     NULL},
    {"callback_window", RB_CONF_DURATION, offsetof(struct webhook_conf, window), 0, 0, 0, NULL,
     window_ok},
    {"max_callback_body", RB_CONF_SIZE, offsetof(struct webhook_conf, max_callback_body), 0,
     256, 1048576, NULL, NULL},
    {"ca_file", RB_CONF_STRING, offsetof(struct webhook_conf, ca_file), 0, 0, 0, NULL,
     ca_file_ok},
};

/* One department's settings (the "config:" block of its file). */
struct dept_in {
    char *url, *secret, *secret_env;
};

static const char *url_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block;
    const char *url = *(char *const *)v;
    if ((strncmp(url, "http://", 7) == 0 && strlen(url) >= 8) ||
        (strncmp(url, "https://", 8) == 0 && strlen(url) >= 9))
        return NULL;
    snprintf(why, n, "\"%.200s\" must be an http:// or https:// address of the department's "
                     "system", url);
    return why;
}

static const char *secret_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block;
    if (strlen(*(char *const *)v) >= SECRET_MIN)
        return NULL;
    snprintf(why, n, "the signing secret is shorter than %d bytes; use a long random string "
                     "(e.g. openssl rand -hex 32)", SECRET_MIN);
    return why;
}

/* After secret in the table: sees whether that was given too. */
static const char *secret_env_ok(const void *v, const void *block, char *why, size_t n)
{
    const char *name = *(char *const *)v, *secret;
    if (((const struct dept_in *)block)->secret)
        return "give the signing secret as secret_env or as secret, exactly one of them";
    if (!(secret = getenv(name))) {
        snprintf(why, n, "names %.100s, but that environment variable is not set", name);
        return why;
    }
    return secret_ok(&secret, block, why, n);
}

static const struct rb_conf_field_v2 dept_fields[] = {
    {"url", RB_CONF_STRING, offsetof(struct dept_in, url), RB_CONF_REQUIRED, 0, 0, NULL, url_ok},
    {"secret", RB_CONF_STRING, offsetof(struct dept_in, secret), 0, 0, 0, NULL, secret_ok},
    {"secret_env", RB_CONF_STRING, offsetof(struct dept_in, secret_env), 0, 0, 0, NULL,
     secret_env_ok},
};

struct dept {
    char *id, *url, *secret; /* owned; the secret wiped when freed */
};

struct state {
    struct webhook_conf conf;
    struct dept *depts; /* owned */
    size_t n;
};

static const struct rb_host_api *api;
static struct rb_plugin_ctx *self;
static struct state live;

#define N_FIELDS(f) (sizeof(f) / sizeof((f)[0]))

/* ---- configuration ------------------------------------------------------------------------- */

static void depts_free(struct dept *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].url);
        if (v[i].secret) {
            sodium_memzero(v[i].secret, strlen(v[i].secret));
            free(v[i].secret);
        }
    }
    free(v);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Reads one department's block into d. RB_OK, or RB_EINVAL after reporting why. */
static int dept_parse(struct rb_plugin_ctx *ctx, const char *id, struct dept *d)
{
    struct dept_in in = {0};
    int rc = RB_CONF_PARSE_V2(api, ctx, id, dept_fields, &in) == RB_OK ? RB_OK : RB_EINVAL;
    if (rc == RB_OK && !in.secret && !in.secret_env) {
        api->log(ctx, RB_LOG_ERROR,
                 "department %s: give the signing secret as secret_env (the name of an "
                 "environment variable that holds it) or as secret, exactly one of them",
                 id);
        rc = RB_EINVAL;
    } else if (rc == RB_OK) {
        d->id = dup_str(id);
        d->url = dup_str(in.url);
        d->secret = dup_str(in.secret ? in.secret : getenv(in.secret_env));
        rc = d->id && d->url && d->secret ? RB_OK : RB_ERR;
    }
    if (in.secret)
        sodium_memzero(in.secret, strlen(in.secret));
    RB_CONF_FREE_V2(api, dept_fields, &in);
    return rc;
}

static void state_free(struct state *s)
{
    depts_free(s->depts, s->n);
    s->depts = NULL;
    s->n = 0;
    RB_CONF_FREE_V2(api, webhook_fields, &s->conf);
}

/* Everything from the configuration, or RB_EINVAL with every error reported. */
static int state_load(struct rb_plugin_ctx *ctx, struct state *out)
{
    struct state s = {
        .conf = {.timeout = 10, .max_attempts = 12, .window = 300, .max_callback_body = 65536},
    };
    int rc = RB_CONF_PARSE_V2(api, ctx, NULL, webhook_fields, &s.conf);
    const char *id;
    for (size_t i = 0; (id = api->department_id(ctx, i)) != NULL; i++) {
        struct dept d = {0};
        if (dept_parse(ctx, id, &d) != RB_OK) {
            free(d.id);
            free(d.url);
            free(d.secret);
            rc = RB_EINVAL;
            continue;
        }
        struct dept *v = realloc(s.depts, (s.n + 1) * sizeof(*v));
        if (!v) {
            free(d.id);
            free(d.url);
            free(d.secret);
            rc = RB_ERR;
            break;
        }
        s.depts = v;
        s.depts[s.n++] = d;
    }
    if (rc != RB_OK) {
        state_free(&s);
        return RB_EINVAL;
    }
    *out = s;
    return RB_OK;
}

static const struct dept *dept_find(const char *id)
{
    for (size_t i = 0; id && i < live.n; i++)
        if (strcmp(live.depts[i].id, id) == 0)
            return &live.depts[i];
    return NULL;
}

/* ---- delivery ------------------------------------------------------------------------------ */

struct attempt {
    struct rb_job_run *run;
    long long case_id, job_id;
    int attempt;
    char department[64];
    char tracking[32];
    double started; /* wall seconds */
    /* the outcome, kept until the case event is written */
    int ok, permanent;
    int unknown; /* sent whole, no answer: the department may have the case */
    char error[256];
};

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void attempt_recorded(const struct rb_db_result *res, const char *err, void *arg)
{
    struct attempt *a = arg;
    (void)res;
    if (err)
        api->log(self, RB_LOG_WARN, "case %s: could not record delivery attempt %d: %s",
                 a->tracking, a->attempt, err);
    api->job_finish(a->run, a->ok, a->ok ? NULL : a->error, -1, a->permanent);
    free(a);
}

/* Writes the attempt's case event, then finishes the run (whatever the event's fate). */
static void attempt_end(struct attempt *a, int status, const char *why)
{
    const char *outcome = a->ok          ? "delivered"
                          : a->permanent ? "gave_up"
                          : a->unknown   ? "unknown"
                                         : "will_retry";
    json_t *data = json_pack("{s:s, s:i, s:I, s:s, s:i}", "department", a->department,
                             "attempt", a->attempt, "job_id", (json_int_t)a->job_id, "outcome",
                             outcome, "ms", (int)((wall_now() - a->started) * 1000));
    json_object_set_new(data, "status", status ? json_integer(status) : json_null());
    json_object_set_new(data, "error", a->ok ? json_null() : json_string(why));
    char *dj = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    char note[320];
    if (a->ok)
        snprintf(note, sizeof(note), "delivered to %s (HTTP %d)", a->department, status);
    else if (a->unknown)
        snprintf(note, sizeof(note), "delivery to %s: %s (retried as the same X-Rabta-Delivery)",
                 a->department, why);
    else
        snprintf(note, sizeof(note), "delivery to %s failed: %s", a->department, why);
    api->log(self, a->ok ? RB_LOG_INFO : RB_LOG_WARN, "case %s attempt %d: %s%s", a->tracking,
             a->attempt, note, a->ok ? "" : a->permanent ? " (giving up)" : " (will retry)");
    int rc = dj ? api->case_event(self, a->case_id, "webhook.delivery", note, dj,
                                  attempt_recorded, a)
                : RB_ERR;
    free(dj);
    if (rc != RB_OK)
        attempt_recorded(NULL, "could not queue the event", a);
}

static void fetched(int status, const char *body, size_t len, const char *err, void *arg)
{
    struct attempt *a = arg;
    (void)body;
    (void)len;
    char why[256];
    a->ok = status >= 200 && status < 300;
    if (a->ok) {
        why[0] = '\0';
    } else if (status) {
        snprintf(why, sizeof(why), "the department's system answered HTTP %d", status);
        /* A request the receiver refuses for what it is will be refused again. */
        a->permanent = status >= 400 && status < 500 && status != 408 && status != 429;
    } else {
        snprintf(why, sizeof(why), "%s", err ? err : "no answer");
        a->unknown = err && strncmp(err, RB_OUTCOME_UNKNOWN, strlen(RB_OUTCOME_UNKNOWN)) == 0;
    }
    if (!a->ok && !a->permanent && a->attempt >= live.conf.max_attempts) {
        a->permanent = 1;
        size_t n = strlen(why);
        snprintf(why + n, sizeof(why) - n, "; gave up after %d attempts", a->attempt);
    }
    snprintf(a->error, sizeof(a->error), "%s", why);
    attempt_end(a, status, why);
}

static void deliver(struct rb_job_run *run, const struct rb_job_info *job,
                    const struct rb_delivery *d, void *arg)
{
    (void)arg;
    struct attempt *a = calloc(1, sizeof(*a));
    if (!a) {
        api->job_finish(run, 0, "out of memory", -1, 0);
        return;
    }
    a->run = run;
    a->case_id = d->case_id;
    a->job_id = job->id;
    a->attempt = job->attempt;
    a->started = wall_now();
    snprintf(a->department, sizeof(a->department), "%s", d->department);
    snprintf(a->tracking, sizeof(a->tracking), "%s", d->tracking_no);
    const struct dept *dp = dept_find(d->department);
    if (!dp) {
        /* Its file changed to webhook without a url: wait for a reload that fixes it. */
        snprintf(a->error, sizeof(a->error),
                 "department %s has no webhook settings (config: url, secret)", d->department);
        attempt_end(a, 0, a->error);
        return;
    }
    char ts[RB_WH_TS_MAX], sig[RB_WH_SIG_LEN];
    snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    size_t len = strlen(d->case_json);
    rb_wh_sign(dp->secret, strlen(dp->secret), ts, d->case_json, len, sig);
    char h_ts[64], h_sig[96], h_id[64], h_att[48], h_dep[96];
    snprintf(h_ts, sizeof(h_ts), "X-Rabta-Timestamp: %s", ts);
    snprintf(h_sig, sizeof(h_sig), "X-Rabta-Signature: %s", sig);
    snprintf(h_id, sizeof(h_id), "X-Rabta-Delivery: %lld", d->event_id);
    snprintf(h_att, sizeof(h_att), "X-Rabta-Attempt: %d", job->attempt);
    snprintf(h_dep, sizeof(h_dep), "X-Rabta-Department: %s", d->department);
    const char *headers[] = {"Content-Type: application/json", h_ts, h_sig, h_id, h_att, h_dep,
                             NULL};
    int rc = RB_HOST_HAS(api, http_fetch_ca)
                 ? api->http_fetch_ca(self, RB_HTTP_POST, dp->url, headers, d->case_json, len,
                                      live.conf.timeout, live.conf.ca_file, fetched, a)
                 : api->http_fetch(self, RB_HTTP_POST, dp->url, headers, d->case_json, len,
                                   live.conf.timeout, fetched, a);
    if (rc != RB_OK) {
        a->permanent = 1;
        snprintf(a->error, sizeof(a->error), "the url %s cannot be requested", dp->url);
        attempt_end(a, 0, a->error);
    }
}

/* ---- callback ------------------------------------------------------------------------------ */

/* What a department may report, and the step each one is. */
static const struct {
    const char *status, *action;
    int needs_text;
} reports[] = {
    {"acknowledged", "acknowledge", 0}, {"in_progress", "start", 0},
    {"resolved", "resolve", 1},         {"rejected", "reject", 1},
    {"answered", "answer", 1},
};

struct callback {
    struct rb_http_req *req;
    char department[64];
    char tracking[32];
    char mac_hex[2 * RB_WH_MAC_LEN + 3]; /* "\\x" + hex: a bytea parameter */
    const char *action, *status; /* static */
    char *text;                  /* owned; may be NULL */
    char *data;                  /* owned */
};

static void callback_free(struct callback *c)
{
    free(c->text);
    free(c->data);
    free(c);
}

static void refuse(struct rb_http_req *req, const char *dept, int status, const char *code,
                   const char *why)
{
    const char *peer = api->req_peer(req);
    api->log(self, RB_LOG_WARN, "callback for department %s from %s refused (%d %s): %s",
             dept ? dept : "?", peer ? peer : "?", status, code, why);
    api->reply_error(req, status, code, "%s", why);
}

static void forget_done(const struct rb_db_result *res, const char *err, void *arg)
{
    (void)res;
    (void)err;
    (void)arg;
}

static void refusal_recorded(const struct rb_db_result *res, const char *err, void *arg)
{
    (void)res;
    if (err)
        api->log(self, RB_LOG_WARN, "could not record a refused callback: %s", err);
    callback_free(arg);
}

static void acted(const struct rb_case_act_result *r, void *arg)
{
    struct callback *c = arg;
    if (r->status == 200) {
        json_t *out = json_pack("{s:s, s:s, s:s}", "tracking_no", c->tracking, "from_status",
                                r->from_status, "status", r->to_status);
        char *s = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        api->log(self, RB_LOG_INFO, "case %s: %s reported by department %s (%s -> %s)",
                 c->tracking, c->status, c->department, r->from_status, r->to_status);
        api->reply(c->req, 200, NULL, s ? s : "{}", s ? strlen(s) : 2);
        free(s);
        callback_free(c);
        return;
    }
    if (r->status == 404) {
        char why[128];
        snprintf(why, sizeof(why), "department %s has no case %s", c->department, c->tracking);
        refuse(c->req, c->department, 404, "not_found", why);
    } else if (r->status == 503) {
        /* Nothing changed: let the same signed request be sent again. */
        const char *p[1] = {c->mac_hex};
        api->db_query(self, "DELETE FROM webhook_signatures WHERE signature = $1::bytea", 1, p,
                      forget_done, NULL);
        api->log(self, RB_LOG_WARN, "callback for case %s: database: %s", c->tracking,
                 r->error ? r->error : "?");
        api->reply_header(c->req, "Retry-After", "5");
        api->reply_error(c->req, 503, "unavailable",
                         "the database did not answer; nothing was changed, try again");
    } else {
        char why[512];
        snprintf(why, sizeof(why), "case %s: %s", c->tracking, r->error ? r->error : "refused");
        refuse(c->req, c->department, r->status, r->status == 400 ? "missing_field"
                                                                  : "invalid_transition",
               why);
    }
    /* A refused report about one of the department's cases stays on the case's record. */
    if (r->case_id > 0 && r->status != 503) {
        char note[600];
        snprintf(note, sizeof(note), "department %s reported %s; refused: %s", c->department,
                 c->status, r->error ? r->error : "?");
        if (api->case_event(self, r->case_id, "webhook.callback", note, c->data,
                            refusal_recorded, c) == RB_OK)
            return;
    }
    callback_free(c);
}

static void seen_checked(const struct rb_db_result *res, const char *err, void *arg)
{
    struct callback *c = arg;
    if (err) {
        api->log(self, RB_LOG_WARN, "callback replay guard: database: %s", err);
        api->reply_header(c->req, "Retry-After", "5");
        api->reply_error(c->req, 503, "unavailable",
                         "the database did not answer; nothing was changed, try again");
        callback_free(c);
        return;
    }
    if (api->db_ntuples(res) != 1) {
        refuse(c->req, c->department, 409, "replayed",
               "this signature was already used: sign each callback afresh with the current "
               "time");
        callback_free(c);
        return;
    }
    int rc = api->case_act(self, c->tracking, c->department, c->action, c->text, c->data, acted,
                           c);
    if (rc != RB_OK) {
        api->reply_header(c->req, "Retry-After", "1");
        api->reply_error(c->req, 503, "overloaded", "the server is busy; try again in a moment");
        callback_free(c);
    }
}

/* Parses the verified body into c (action, tracking, text, data). NULL, or why it is bad. */
static const char *callback_parse(struct callback *c, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *why = NULL;
    if (!json_is_object(j)) {
        why = "the body must be a JSON object: {\"tracking_no\", \"status\", \"text\"}";
        goto out;
    }
    json_t *jt = json_object_get(j, "tracking_no"), *js = json_object_get(j, "status"),
           *jx = json_object_get(j, "text");
    if (!json_is_string(jt) || !json_is_string(js)) {
        why = "tracking_no and status are required strings";
        goto out;
    }
    for (size_t i = 0; i < N_FIELDS(reports); i++)
        if (strcmp(json_string_value(js), reports[i].status) == 0) {
            c->action = reports[i].action;
            c->status = reports[i].status;
        }
    if (!c->action) {
        why = "status must be acknowledged, in_progress, resolved, rejected or answered";
        goto out;
    }
    if (jx && !json_is_null(jx) &&
        (!json_is_string(jx) || strlen(json_string_value(jx)) > CALLBACK_TEXT_MAX)) {
        why = "text must be a string of at most 5000 bytes";
        goto out;
    }
    const char *why_tn = NULL;
    if (api->tracking_parse(json_string_value(jt), c->tracking, sizeof(c->tracking), &why_tn) !=
        RB_OK) {
        why = "tracking_no is not a tracking number (they look like RB-7K2QD-M9XRT-4)";
        goto out;
    }
    if (json_is_string(jx) && !(c->text = dup_str(json_string_value(jx)))) {
        why = "out of memory";
        goto out;
    }
    json_t *d = json_pack("{s:s, s:s}", "department", c->department, "reported", c->status);
    c->data = json_dumps(d, JSON_COMPACT);
    json_decref(d);
out:
    json_decref(j);
    return why;
}

static void on_callback(struct rb_http_req *req, void *arg)
{
    (void)arg;
    const char *dept = api->req_param(req, "department");
    const struct dept *d = dept_find(dept);
    if (!d) {
        refuse(req, dept, 404, "not_found", "no department of that name takes callbacks here");
        return;
    }
    size_t len = 0;
    const char *body = api->req_body(req, &len);
    if (len > live.conf.max_callback_body) {
        char why[96];
        snprintf(why, sizeof(why), "a callback body has at most %zu bytes",
                 live.conf.max_callback_body);
        refuse(req, dept, 413, "too_large", why);
        return;
    }
    const char *ts = api->req_header(req, "X-Rabta-Timestamp");
    const char *sig = api->req_header(req, "X-Rabta-Signature");
    if (!ts || !sig) {
        refuse(req, dept, 401, "unsigned",
               "sign the callback: X-Rabta-Timestamp and X-Rabta-Signature (docs/webhook.md)");
        return;
    }
    if (rb_wh_check_time(ts, wall_now(), live.conf.window, NULL) != RB_WH_OK) {
        char why[160];
        snprintf(why, sizeof(why),
                 "X-Rabta-Timestamp must be the current Unix time, within %.0f seconds",
                 live.conf.window);
        refuse(req, dept, 401, "stale_timestamp", why);
        return;
    }
    unsigned char mac[RB_WH_MAC_LEN];
    int v = rb_wh_verify(d->secret, strlen(d->secret), ts, body ? body : "", len, sig, mac);
    if (v != RB_WH_OK) {
        refuse(req, dept, 401, "bad_signature",
               v == RB_WH_MALFORMED
                   ? "X-Rabta-Signature must be v1= and 64 hex digits"
                   : "the signature does not match the body and timestamp under this "
                     "department's secret");
        return;
    }
    struct callback *c = calloc(1, sizeof(*c));
    if (!c) {
        api->reply_error(req, 503, "overloaded", "out of memory");
        return;
    }
    c->req = req;
    snprintf(c->department, sizeof(c->department), "%s", d->id);
    memcpy(c->mac_hex, "\\x", 2);
    sodium_bin2hex(c->mac_hex + 2, sizeof(c->mac_hex) - 2, mac, sizeof(mac));
    const char *why = callback_parse(c, body ? body : "", len);
    if (why) {
        refuse(req, dept, 400, "invalid_body", why);
        callback_free(c);
        return;
    }
    /* Replay guard, shared by every process on the database. A signature older than the
     * window cannot come back (its timestamp would be refused), so rows older than twice the
     * window go. */
    char keep[32];
    snprintf(keep, sizeof(keep), "%.0f", 2 * live.conf.window + 60);
    const char *p[3] = {c->mac_hex, c->department, keep};
    if (api->db_query(self,
                      "WITH old AS (DELETE FROM webhook_signatures"
                      "  WHERE seen_at < now() - make_interval(secs => $3::float8))"
                      " INSERT INTO webhook_signatures (signature, department)"
                      " VALUES ($1::bytea, $2::text) ON CONFLICT DO NOTHING RETURNING 1",
                      3, p, seen_checked, c) != RB_OK) {
        api->reply_header(req, "Retry-After", "1");
        api->reply_error(req, 503, "overloaded", "the server is busy; try again in a moment");
        callback_free(c);
    }
}

/* ---- life ---------------------------------------------------------------------------------- */

static int webhook_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    self = ctx;
    if (!RB_HOST_HAS(api, conf_free_v2)) {
        api->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the webhook plugin");
        return RB_EINVAL;
    }
    if (sodium_init() < 0 || state_load(ctx, &live) != RB_OK)
        return RB_EINVAL;
    if (api->department_deliver(ctx, deliver, NULL) != RB_OK ||
        api->http_route(ctx, RB_HTTP_POST, "/api/v1/departments/:department/callback",
                        on_callback, NULL) != RB_OK)
        return RB_ERR;
    api->log(ctx, RB_LOG_DEBUG, "webhook ready for %zu department(s)", live.n);
    return RB_OK;
}

static int webhook_reload(struct rb_plugin_ctx *ctx)
{
    struct state next;
    if (state_load(ctx, &next) != RB_OK)
        return RB_EINVAL;
    state_free(&live);
    live = next;
    return RB_OK;
}

static void webhook_stop(struct rb_plugin_ctx *ctx)
{
    (void)ctx;
    state_free(&live);
}

static const struct rb_plugin webhook = {
    RB_PLUGIN_HEADER,
    .name = "webhook",
    .kind = RB_PLUGIN_DEPARTMENT,
    .version = "0.2.0",
    .description = "cases are delivered to the department's own system over signed HTTP",
    .init = webhook_init,
    .stop = webhook_stop,
    .reload = webhook_reload,
};

RB_PLUGIN_DEFINE(webhook)
