/* app: the mobile-app channel, a JSON API under /api/v1/ (docs/api.md).
 *
 *   GET  /api/v1                              discovery
 *   POST /api/v1/cases                        submit a complaint, feedback or information request
 *   GET  /api/v1/cases/:tracking              public status (?phone_last4= or the citizen's token)
 *   POST /api/v1/register, /verify, /logout   sign-in with a one-time SMS code (app_auth.c)
 *   GET  /api/v1/me/cases                     the citizen's own cases (app_citizen.c)
 *   GET  /api/v1/cases/:tracking/timeline     ... and their history, comments, rating
 *   POST /api/v1/cases/:tracking/comments
 *   POST /api/v1/cases/:tracking/rating
 *
 * Citizens sign in with a bearer token (Authorization: Bearer ...), given after a one-time
 * code; only its SHA-256 is stored. A submission without a token must be anonymous. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>
#include <rabta/plugin.h>

#include "app.h"

static const struct rb_host_api *api;

/* Defaults; the plugin's "config:" block may change them (docs/api.md). */
static struct rb_app_conf conf = {
    .otp_ttl = 300,
    .otp_attempts = 5,
    .otp_per_window = 3,
    .otp_window = 900,
    .otp_interval = 30,
    .token_ttl = 30 * 86400,
};

static const struct rb_conf_field conf_fields[] = {
    {"otp_ttl", RB_CONF_DURATION, offsetof(struct rb_app_conf, otp_ttl), 0, 0, 0},
    {"otp_attempts", RB_CONF_INT, offsetof(struct rb_app_conf, otp_attempts), 0, 1, 20},
    {"otp_per_window", RB_CONF_INT, offsetof(struct rb_app_conf, otp_per_window), 0, 1, 100},
    {"otp_window", RB_CONF_DURATION, offsetof(struct rb_app_conf, otp_window), 0, 0, 0},
    {"otp_interval", RB_CONF_DURATION, offsetof(struct rb_app_conf, otp_interval), 0, 0, 0},
    {"token_ttl", RB_CONF_DURATION, offsetof(struct rb_app_conf, token_ttl), 0, 0, 0},
};

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- POST /api/v1/cases ------------------------------------------------------------------- */

struct submit {
    struct rb_plugin_ctx *ctx;
    struct rb_http_req *req;
    json_t *body;   /* owned */
    char digest[65];
};

static void submit_free(struct submit *s)
{
    json_decref(s->body);
    free(s);
}

static void case_stored(const struct rb_case_result *r, int status, const char *err, void *arg)
{
    struct submit *s = arg;
    if (!r) {
        if (status == 422)
            api->reply_error(s->req, 422, "idempotency_conflict", "%s", err);
        else if (status == 503 || status == 0)
            api->reply_error(s->req, 503, "unavailable",
                             "your submission could not be stored right now; nothing was "
                             "saved, please try again (%s)", err ? err : "");
        else
            api->reply_error(s->req, status, "not_stored", "%s", err ? err : "not stored");
        submit_free(s);
        return;
    }
    json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "tracking_no", r->tracking_no,
                            "status", r->status, "department", r->department, "category",
                            r->category, "priority", r->priority, "sla_policy", r->sla_policy);
    rb_app_reply_json(s->req, 201, out);
    submit_free(s);
}

static const char *const case_fields[] = {"kind", "service", "district", "text", "lat", "long",
                                          "anonymous", "share_contact", "language", "official",
                                          "rating", NULL};

static void submit_as(struct submit *s, const char *phone, const char *email, long long citizen)
{
    struct rb_http_req *req = s->req;
    json_t *o = s->body;
    struct rb_case_submission sub = {.size = sizeof(sub), .channel = "app", .lat = NAN,
                                     .lon = NAN};
    double rating = NAN;
    if (rb_app_opt_str(req, o, "kind", &sub.kind) || rb_app_opt_str(req, o, "service", &sub.service) ||
        rb_app_opt_str(req, o, "district", &sub.district) || rb_app_opt_str(req, o, "text", &sub.text) ||
        rb_app_opt_str(req, o, "language", &sub.language) ||
        rb_app_opt_str(req, o, "official", &sub.official) || rb_app_opt_num(req, o, "lat", &sub.lat) ||
        rb_app_opt_num(req, o, "long", &sub.lon) || rb_app_opt_bool(req, o, "anonymous", &sub.anonymous) ||
        rb_app_opt_bool(req, o, "share_contact", &sub.share_contact) ||
        rb_app_opt_num(req, o, "rating", &rating)) {
        submit_free(s);
        return;
    }
    if (!sub.kind) {
        api->reply_error(req, 400, "missing_field", "field \"kind\" is required (complaint, "
                                                    "feedback or information)");
        submit_free(s);
        return;
    }
    if (!sub.text) {
        api->reply_error(req, 400, "missing_field", "field \"text\" is required");
        submit_free(s);
        return;
    }
    if (!isnan(rating)) {
        if (rating != floor(rating) || rating < 1 || rating > 5) {
            api->reply_error(req, 400, "invalid_field",
                             "field \"rating\": expected a whole number from 1 to 5");
            submit_free(s);
            return;
        }
        sub.rating = (int)rating;
    }
    if (!phone && !email && !sub.anonymous) {
        api->reply_error(req, 401, "unauthorized",
                         "sign in first (Authorization: Bearer <token>), or submit with "
                         "\"anonymous\": true");
        submit_free(s);
        return;
    }
    sub.text_len = strlen(sub.text);
    sub.phone = phone;
    sub.email = email;
    char scope[48];
    const char *key = api->req_header(req, "Idempotency-Key");
    if (key) {
        if (citizen > 0)
            snprintf(scope, sizeof(scope), "citizen:%lld", citizen);
        else
            snprintf(scope, sizeof(scope), "anonymous");
        sub.idem_scope = scope;
        sub.idem_key = key;
        sub.idem_hash = s->digest;
    }
    char why[256];
    int rc = api->case_submit(s->ctx, &sub, case_stored, s, why, sizeof(why));
    if (rc == RB_EINVAL) {
        api->reply_error(req, 422, "invalid_case", "%s", why);
        submit_free(s);
    } else if (rc != RB_OK) {
        api->reply_error(req, 503, "unavailable", "%s", rc == RB_EAGAIN ? why
                                                        : "cases cannot be taken right now");
        submit_free(s);
    }
}

static void submit_authed(const struct rb_citizen_info *c, const char *err, void *arg)
{
    struct submit *s = arg;
    if (err) {
        api->reply_error(s->req, 503, "unavailable", "could not check your sign-in: %s", err);
        submit_free(s);
        return;
    }
    if (!c) {
        api->reply_error(s->req, 401, "unauthorized",
                         "your sign-in has expired or is not valid; sign in again");
        submit_free(s);
        return;
    }
    submit_as(s, c->phone && *c->phone ? c->phone : NULL, c->email && *c->email ? c->email : NULL,
              c->id);
}

static void on_submit(struct rb_http_req *req, void *arg)
{
    json_t *o = rb_app_body_object(req);
    if (!o)
        return;
    if (rb_app_known_fields(req, o, case_fields) != 0) {
        json_decref(o);
        return;
    }
    struct submit *s = calloc(1, sizeof(*s));
    if (!s) {
        json_decref(o);
        api->reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    s->ctx = arg;
    s->req = req;
    s->body = o;
    size_t len;
    const char *body = api->req_body(req, &len);
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)body, len);
    hex(d, sizeof(d), s->digest);

    int malformed;
    const char *token = rb_app_bearer(req, &malformed);
    if (malformed) {
        api->reply_error(req, 401, "unauthorized", "expected Authorization: Bearer <token>");
        submit_free(s);
        return;
    }
    if (!token) {
        submit_as(s, NULL, NULL, 0);
        return;
    }
    int rc = api->citizen_auth(s->ctx, token, submit_authed, s);
    if (rc == RB_EINVAL) {
        api->reply_error(req, 401, "unauthorized",
                         "your sign-in has expired or is not valid; sign in again");
        submit_free(s);
    } else if (rc != RB_OK) {
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
        submit_free(s);
    }
}

/* ---- GET /api/v1/cases/:tracking ---------------------------------------------------------- */

static const char status_sql[] =
    "SELECT c.tracking_no, c.kind, c.status, coalesce(c.service_id, ''), "
    "  coalesce(c.department_id, ''), "
    "  to_char(c.created_at AT TIME ZONE 'UTC', " RB_APP_TS "), "
    "  to_char(c.updated_at AT TIME ZONE 'UTC', " RB_APP_TS "), "
    "  to_char(c.resolve_due_at AT TIME ZONE 'UTC', " RB_APP_TS "), "
    "  right(ci.phone, 4) = $2 OR t.citizen_id IS NOT NULL "
    "FROM cases c LEFT JOIN citizens ci ON ci.id = c.citizen_id "
    "LEFT JOIN citizen_tokens t ON t.token_hash = $3::bytea AND t.citizen_id = c.citizen_id "
    "  AND t.expires_at > now() AND t.revoked_at IS NULL "
    "WHERE c.tracking_no = $1";

static void status_found(const struct rb_db_result *res, const char *err, void *arg)
{
    struct rb_http_req *req = arg;
    if (err) {
        api->reply_error(req, 503, "unavailable", "the status cannot be looked up right now");
        return;
    }
    /* Unknown number and wrong phone digits look the same: nothing is revealed. */
    const char *ok = api->db_ntuples(res) == 1 ? api->db_value(res, 0, 8) : NULL;
    if (!ok || strcmp(ok, "t") != 0) {
        api->reply_error(req, 404, "not_found",
                         "no case with this tracking number and these phone digits");
        return;
    }
    const char *due = api->db_value(res, 0, 7);
    json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "tracking_no",
                            api->db_value(res, 0, 0), "kind", api->db_value(res, 0, 1),
                            "status", api->db_value(res, 0, 2), "service",
                            api->db_value(res, 0, 3), "department", api->db_value(res, 0, 4),
                            "created_at", api->db_value(res, 0, 5), "updated_at",
                            api->db_value(res, 0, 6), "resolve_due_at",
                            due ? json_string(due) : json_null());
    rb_app_reply_json(req, 200, out);
}

static void on_status(struct rb_http_req *req, void *arg)
{
    char tracking[32];
    const char *why;
    if (api->tracking_parse(api->req_param(req, "tracking"), tracking, sizeof(tracking), &why) !=
        RB_OK) {
        api->reply_error(req, 400, "invalid_tracking_number", "%s", why);
        return;
    }
    const char *last4 = api->req_query(req, "phone_last4");
    int malformed;
    const char *token = rb_app_bearer(req, &malformed);
    if (malformed) {
        api->reply_error(req, 401, "unauthorized", "expected Authorization: Bearer <token>");
        return;
    }
    int auth = token != NULL;
    char th[2 + 2 * crypto_hash_sha256_BYTES + 1];
    if (auth) {
        unsigned char d[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(d, (const unsigned char *)token, strlen(token));
        rb_app_bytea(d, sizeof(d), th);
    }
    if (!auth && (!last4 || strlen(last4) != 4 || strspn(last4, "0123456789") != 4)) {
        api->reply_error(req, 400, "missing_field",
                         "give the last four digits of your phone as ?phone_last4=NNNN, or "
                         "sign in");
        return;
    }
    const char *params[3] = {tracking, last4 ? last4 : "", auth ? th : "\\x"};
    if (api->db_query(arg, status_sql, 3, params, status_found, req) != RB_OK)
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
}

/* ---- discovery ---------------------------------------------------------------------------- */

static void on_root(struct rb_http_req *req, void *arg)
{
    (void)arg;
    static const char body[] =
        "{\"api\":\"rabta\",\"version\":\"v1\",\"documentation\":\"docs/api.md\"}";
    api->reply(req, 200, NULL, body, sizeof(body) - 1);
}

/* Parses the plugin's config block over the defaults already in out. */
static int conf_load(struct rb_plugin_ctx *ctx, struct rb_app_conf *out)
{
    struct rb_app_conf c = *out;
    if (api->conf_parse(ctx, conf_fields, sizeof(conf_fields) / sizeof(conf_fields[0]), &c) !=
        RB_OK)
        return RB_EINVAL;
    if (!(c.otp_ttl >= 30 && c.otp_ttl <= 3600) || !(c.otp_window > 0) ||
        !(c.otp_interval >= 0) || !(c.token_ttl >= 60)) {
        api->log(ctx, RB_LOG_ERROR, "plugin app: otp_ttl must be 30s to 1h, otp_window more "
                                    "than 0, otp_interval 0 or more, token_ttl at least 1m");
        return RB_EINVAL;
    }
    *out = c;
    return RB_OK;
}

static int app_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (!RB_HOST_HAS(api, citizen_forget)) {
        api->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the app plugin (no citizen "
                                    "sign-in API)");
        return RB_ERR;
    }
    if (sodium_init() < 0)
        return RB_ERR;
    if (conf_load(ctx, &conf) != RB_OK)
        return RB_EINVAL;
    rb_app_util_init(api);
    if (api->http_route(ctx, RB_HTTP_GET, "/api/v1", on_root, NULL) != RB_OK ||
        api->http_route(ctx, RB_HTTP_POST, "/api/v1/cases", on_submit, ctx) != RB_OK ||
        api->http_route(ctx, RB_HTTP_GET, "/api/v1/cases/:tracking", on_status, ctx) != RB_OK ||
        rb_app_auth_init(ctx, api, &conf) != RB_OK || rb_app_citizen_init(ctx, api) != RB_OK)
        return RB_ERR;
    return RB_OK;
}

/* After SIGHUP: new limits apply to the next request; a bad block keeps the old ones. */
static int app_reload(struct rb_plugin_ctx *ctx)
{
    struct rb_app_conf next = conf;
    if (conf_load(ctx, &next) != RB_OK)
        return RB_EINVAL;
    conf = next;
    return RB_OK;
}

static const struct rb_plugin app = {
    RB_PLUGIN_HEADER,
    .name = "app",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "0.3.0",
    .description = "mobile-app JSON API",
    .init = app_init,
    .reload = app_reload,
};

RB_PLUGIN_DEFINE(app)
