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
    .otp_per_day = 10,
    .otp_per_address = 60,
    .otp_address_window = 600,
    .token_ttl = 30 * 86400,
    .photo_max = 512 * 1024,
    .status_guesses = 10,
};

/* Checks of single values, reported by the core at the value's file:line:col. */
static const char *otp_ttl_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x >= 30 && x <= 3600 ? NULL : "must be from 30s to 1h";
}

static const char *positive(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    return *(const double *)v > 0 ? NULL : "must be more than 0s";
}

static const char *token_ttl_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    return *(const double *)v >= 60 ? NULL : "must be at least 1m";
}

#define F(key, type, member, min, max, check)                                                 \
    {key, type, offsetof(struct rb_app_conf, member), 0, min, max, NULL, check}
static const struct rb_conf_field_v2 conf_fields[] = {
    F("otp_ttl", RB_CONF_DURATION, otp_ttl, 0, 0, otp_ttl_ok),
    F("otp_attempts", RB_CONF_INT, otp_attempts, 1, 20, NULL),
    F("otp_per_window", RB_CONF_INT, otp_per_window, 1, 100, NULL),
    F("otp_window", RB_CONF_DURATION, otp_window, 0, 0, positive),
    F("otp_interval", RB_CONF_DURATION, otp_interval, 0, 0, NULL), /* never negative */
    F("otp_per_day", RB_CONF_INT, otp_per_day, 1, 1000, NULL),
    F("otp_per_address", RB_CONF_INT, otp_per_address, 0, 100000, NULL),
    F("otp_address_window", RB_CONF_DURATION, otp_address_window, 0, 0, positive),
    F("token_ttl", RB_CONF_DURATION, token_ttl, 0, 0, token_ttl_ok),
    F("photo_max", RB_CONF_SIZE, photo_max, 1, 8 << 20, NULL),
    F("status_guesses", RB_CONF_INT, status_guesses, 0, 100000, NULL),
};
#undef F

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

/* A database failure: logged with the request id, answered without the database's words. */
static void db_failed(struct rb_http_req *req, const char *err, const char *what)
{
    if (RB_HOST_HAS(api, reply_db_error))
        api->reply_db_error(req, err ? err : "", what);
    else
        api->reply_error(req, 503, "unavailable", "%s; nothing was saved, please try again",
                         what);
}

static void case_stored(const struct rb_case_result *r, int status, const char *err, void *arg)
{
    struct submit *s = arg;
    if (!r) {
        if (status == RB_CASE_OUTCOME_UNKNOWN)
            rb_app_outcome_unknown(s->req, "your submission",
                                   " Send it again with the same Idempotency-Key: you get its "
                                   "tracking number if it was stored, and it is never stored "
                                   "twice.");
        else if ((err && strstr(err, "(SQLSTATE ")) || status == 503 || status == 0)
            db_failed(s->req, err, "your submission was not stored");
        else if (status == 422)
            api->reply_error(s->req, 422, "idempotency_conflict", "%s", err);
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
                                          "rating", "photo", NULL};

/* "photo": {"content_type": "image/jpeg", "data": "<base64>"} -> decoded bytes (new; caller
 * frees), or NULL with the answer already sent (*failed = 1). */
static unsigned char *photo_of(struct rb_http_req *req, json_t *o, size_t *len,
                               const char **type, int *failed)
{
    json_t *p = json_object_get(o, "photo"), *data, *ct;
    *failed = 0;
    *len = 0;
    *type = NULL;
    if (!p || json_is_null(p))
        return NULL;
    *failed = 1;
    if (!json_is_object(p) || !json_is_string(data = json_object_get(p, "data")) ||
        json_object_size(p) != 2 || !json_is_string(ct = json_object_get(p, "content_type"))) {
        api->reply_error(req, 400, "invalid_field",
                         "field \"photo\": expected {\"content_type\": \"image/jpeg\" or "
                         "\"image/png\", \"data\": base64}");
        return NULL;
    }
    *type = json_string_value(ct);
    if (strcmp(*type, "image/jpeg") != 0 && strcmp(*type, "image/png") != 0) {
        api->reply_error(req, 415, "unsupported_media_type",
                         "field \"photo\": only image/jpeg and image/png are accepted");
        return NULL;
    }
    size_t b64 = json_string_length(data);
    size_t max = b64 / 4 * 3 + 3;
    if (b64 / 4 * 3 > conf.photo_max + 2) { /* too large before decoding a byte */
        api->reply_error(req, 413, "photo_too_large",
                         "field \"photo\": the photo is larger than %zu bytes", conf.photo_max);
        return NULL;
    }
    unsigned char *bin = malloc(max ? max : 1);
    if (!bin) {
        api->reply_error(req, 503, "unavailable", "out of memory");
        return NULL;
    }
    if (sodium_base642bin(bin, max, json_string_value(data), b64, NULL, len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || *len == 0) {
        free(bin);
        api->reply_error(req, 400, "invalid_field", "field \"photo\": \"data\" is not base64");
        return NULL;
    }
    if (*len > conf.photo_max) {
        free(bin);
        api->reply_error(req, 413, "photo_too_large",
                         "field \"photo\": the photo is larger than %zu bytes", conf.photo_max);
        return NULL;
    }
    *failed = 0;
    return bin;
}

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
    int photo_failed;
    unsigned char *photo = photo_of(req, o, &sub.photo_len, &sub.photo_type, &photo_failed);
    if (photo_failed) {
        submit_free(s);
        return;
    }
    sub.photo = photo;
    sub.text_len = strlen(sub.text);
    sub.phone = phone;
    sub.email = email;
    sub.citizen_id = citizen > 0 ? citizen : 0;
    char scope[80];
    const char *key = api->req_header(req, "Idempotency-Key");
    if (key) {
        if (citizen > 0)
            snprintf(scope, sizeof(scope), "citizen:%lld", citizen);
        else
            /* Anonymous keys are per client address: one stranger's retry never replays
             * another's tracking number. */
            snprintf(scope, sizeof(scope), "anonymous:%.60s", api->req_peer(req));
        sub.idem_scope = scope;
        sub.idem_key = key;
        sub.idem_hash = s->digest;
    }
    char why[256];
    int rc = api->case_submit(s->ctx, &sub, case_stored, s, why, sizeof(why));
    free(photo); /* intake copied it */
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
        db_failed(s->req, err, "your sign-in could not be checked");
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

/* Public status by tracking number: the batched host look-up (one query per loop turn for
 * every look-up that arrives together), then the check of who asks: the last four digits of
 * the citizen's phone, or the owner's sign-in. Unknown numbers and wrong digits answer the
 * same 404, so nothing is revealed. */
struct status_ask {
    struct rb_plugin_ctx *ctx;
    struct rb_http_req *req;
    char last4[5];        /* "" when signed in */
    long long citizen_id; /* the signed-in citizen, or 0 */
};

/* The guard against guessing a case's phone digits from many addresses: conf.status_guesses
 * wrong answers per tracking number per hour (per process), counted when take is set. Without
 * take: 1 (and the request answered 429) when no guess is left. */
static int too_many_guesses(struct rb_plugin_ctx *ctx, struct rb_http_req *req,
                            const char *tracking, int take)
{
    if (conf.status_guesses <= 0 || !RB_HOST_HAS(api, rate_limit))
        return 0;
    double wait = api->rate_limit(ctx, tracking, (double)conf.status_guesses / 3600.0,
                                  (int)conf.status_guesses, take);
    if (take || wait <= 0)
        return 0;
    char ra[24];
    snprintf(ra, sizeof(ra), "%lld", (long long)wait + 1);
    api->reply_header(req, "Retry-After", ra);
    api->reply_error(req, 429, "rate_limited",
                     "too many wrong phone digits for this tracking number; try again in %s "
                     "seconds",
                     ra);
    return 1;
}

static void status_found(const struct rb_case_status_info *st, const char *err, void *arg)
{
    struct status_ask *a = arg;
    struct rb_http_req *req = a->req;
    if (err) {
        api->reply_error(req, 503, "unavailable", "the status cannot be looked up right now");
    } else if (st && !a->citizen_id && too_many_guesses(a->ctx, req, st->tracking_no, 0)) {
        /* answered 429, whatever the digits: the right guess must not get through either */
    } else if (!st || (a->citizen_id ? st->citizen_id != a->citizen_id
                                     : !st->phone_last4[0] ||
                                           strcmp(st->phone_last4, a->last4) != 0)) {
        if (st && !a->citizen_id)
            too_many_guesses(a->ctx, req, st->tracking_no, 1); /* count the wrong digits */
        api->reply_error(req, 404, "not_found",
                         "no case with this tracking number and these phone digits");
    } else {
        /* Written straight out (the busiest answer of the API: no JSON tree to build, and the
         * deadline object is PostgreSQL's own JSON text, rabta_sla_view). */
        static const char *const names[] = {"tracking_no", "kind", "status", "service",
                                            "department", "created_at", "updated_at",
                                            "resolve_due_at"};
        const char *values[] = {st->tracking_no, st->kind, st->status, st->service,
                                st->department, st->created_at, st->updated_at,
                                st->resolve_due_at[0] ? st->resolve_due_at : NULL};
        int has_sla = st->size >= offsetof(struct rb_case_status_info, sla) + sizeof(st->sla) &&
                      st->sla && st->sla[0] == '{';
        char out[1024];
        size_t n = 0;
        int bad = 0;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            bad = bad || rb_app_json_raw(out, sizeof(out), &n, i ? "," : "{") ||
                  rb_app_json_str(out, sizeof(out), &n, names[i]) ||
                  rb_app_json_raw(out, sizeof(out), &n, ":") ||
                  rb_app_json_str(out, sizeof(out), &n, values[i]);
        bad = bad || rb_app_json_raw(out, sizeof(out), &n, ",\"sla\":") ||
              rb_app_json_raw(out, sizeof(out), &n, has_sla ? st->sla : "null") ||
              rb_app_json_raw(out, sizeof(out), &n, "}");
        if (bad)
            api->reply_error(req, 500, "internal_error", "could not encode the answer");
        else
            api->reply(req, 200, NULL, out, n);
    }
    free(a);
}

static void status_lookup(struct rb_plugin_ctx *ctx, struct status_ask *a, const char *tracking)
{
    if (api->case_status(ctx, tracking, status_found, a) != RB_OK) {
        api->reply_error(a->req, 503, "unavailable", "the server is overloaded; try again");
        free(a);
    }
}

struct status_auth {
    struct rb_plugin_ctx *ctx;
    struct status_ask *a;
    char tracking[32];
};

static void status_authed(const struct rb_citizen_info *c, const char *err, void *arg)
{
    struct status_auth *sa = arg;
    if (!c) {
        if (err)
            api->reply_error(sa->a->req, 503, "unavailable", "could not check your sign-in");
        else
            api->reply_error(sa->a->req, 401, "unauthorized",
                             "your sign-in has expired or is not valid; sign in again");
        free(sa->a);
    } else {
        sa->a->citizen_id = c->id;
        status_lookup(sa->ctx, sa->a, sa->tracking);
    }
    free(sa);
}

static void on_status(struct rb_http_req *req, void *arg)
{
    struct rb_plugin_ctx *ctx = arg;
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
    if (!token && (!last4 || strlen(last4) != 4 || strspn(last4, "0123456789") != 4)) {
        api->reply_error(req, 400, "missing_field",
                         "give the last four digits of your phone as ?phone_last4=NNNN, or "
                         "sign in");
        return;
    }
    struct status_ask *a = calloc(1, sizeof(*a));
    if (!a) {
        api->reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    a->req = req;
    a->ctx = ctx;
    if (!token) {
        memcpy(a->last4, last4, 5);
        status_lookup(ctx, a, tracking);
        return;
    }
    struct status_auth *sa = calloc(1, sizeof(*sa));
    if (!sa) {
        free(a);
        api->reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    sa->ctx = ctx;
    sa->a = a;
    snprintf(sa->tracking, sizeof(sa->tracking), "%s", tracking);
    int rc = api->citizen_auth(ctx, token, status_authed, sa);
    if (rc != RB_OK) {
        api->reply_error(req, rc == RB_EINVAL ? 401 : 503,
                         rc == RB_EINVAL ? "unauthorized" : "unavailable",
                         rc == RB_EINVAL ? "your sign-in is not valid" : "try again shortly");
        free(a);
        free(sa);
    }
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
    if (RB_CONF_PARSE_V2(api, ctx, NULL, conf_fields, &c) != RB_OK)
        return RB_EINVAL;
    *out = c;
    return RB_OK;
}

static int app_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (!RB_HOST_HAS(api, conf_free_v2)) {
        api->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the app plugin (no citizen "
                                    "sign-in, template, rating or comment API)");
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
