/* app: the mobile-app channel, a JSON API under /api/v1/ (docs/api.md).
 *
 *   GET  /api/v1                     discovery
 *   POST /api/v1/cases               submit a complaint, feedback or information request
 *   GET  /api/v1/cases/:tracking     public status (with ?phone_last4= or the citizen's token)
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

static const struct rb_host_api *api;

/* ---- small helpers ------------------------------------------------------------------------ */

static void reply_json(struct rb_http_req *req, int status, json_t *body /* stolen */)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        api->reply_error(req, 500, "internal", "could not encode the answer");
        return;
    }
    api->reply(req, status, NULL, text, strlen(text));
    free(text);
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* "\\x" + hex of the SHA-256 of the bearer token, as a bytea literal; or "" without one. */
static int bearer_hash(struct rb_http_req *req, char out[2 + 64 + 1])
{
    const char *h = api->req_header(req, "Authorization");
    out[0] = '\0';
    if (!h)
        return 0;
    if (strncmp(h, "Bearer ", 7) != 0 || strlen(h + 7) < 16 || strlen(h + 7) > 200)
        return -1;
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)h + 7, strlen(h + 7));
    out[0] = '\\';
    out[1] = 'x';
    hex(d, sizeof(d), out + 2);
    return 1;
}

static const char token_sql[] =
    "SELECT c.id, c.phone, c.email FROM citizen_tokens t JOIN citizens c ON c.id = t.citizen_id "
    "WHERE t.token_hash = $1::bytea AND t.expires_at > now() AND t.revoked_at IS NULL";

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
    reply_json(s->req, 201, out);
    submit_free(s);
}

/* Reads an optional string field; -1 (and answers 400) on a wrong type. */
static int opt_str(struct rb_http_req *req, json_t *o, const char *key, const char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        api->reply_error(req, 400, "invalid_field", "field \"%s\": expected a string", key);
        return -1;
    }
    *out = json_string_value(v);
    if (strlen(*out) != json_string_length(v)) {
        api->reply_error(req, 400, "invalid_field", "field \"%s\": contains a NUL character",
                         key);
        return -1;
    }
    return 0;
}

static int opt_bool(struct rb_http_req *req, json_t *o, const char *key, int *out)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        api->reply_error(req, 400, "invalid_field", "field \"%s\": expected true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static int opt_num(struct rb_http_req *req, json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    *out = NAN;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        api->reply_error(req, 400, "invalid_field", "field \"%s\": expected a number", key);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
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
    if (opt_str(req, o, "kind", &sub.kind) || opt_str(req, o, "service", &sub.service) ||
        opt_str(req, o, "district", &sub.district) || opt_str(req, o, "text", &sub.text) ||
        opt_str(req, o, "language", &sub.language) ||
        opt_str(req, o, "official", &sub.official) || opt_num(req, o, "lat", &sub.lat) ||
        opt_num(req, o, "long", &sub.lon) || opt_bool(req, o, "anonymous", &sub.anonymous) ||
        opt_bool(req, o, "share_contact", &sub.share_contact) ||
        opt_num(req, o, "rating", &rating)) {
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

static void submit_authed(const struct rb_db_result *res, const char *err, void *arg)
{
    struct submit *s = arg;
    if (err) {
        api->reply_error(s->req, 503, "unavailable", "could not check your sign-in: %s", err);
        submit_free(s);
        return;
    }
    if (api->db_ntuples(res) != 1) {
        api->reply_error(s->req, 401, "unauthorized",
                         "your sign-in has expired or is not valid; sign in again");
        submit_free(s);
        return;
    }
    submit_as(s, api->db_value(res, 0, 1), api->db_value(res, 0, 2),
              atoll(api->db_value(res, 0, 0)));
}

/* Parses the body as a JSON object, or answers 400/415 and returns NULL. */
static json_t *body_object(struct rb_http_req *req)
{
    const char *ct = api->req_header(req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] && ct[16] != ';')) {
        api->reply_error(req, 415, "unsupported_media_type",
                         "send the body as JSON with Content-Type: application/json");
        return NULL;
    }
    size_t len;
    const char *body = api->req_body(req, &len);
    json_error_t e;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &e);
    if (!o) {
        api->reply_error(req, 400, "invalid_json", "the body is not valid JSON: %s (line %d, "
                                                   "column %d)", e.text, e.line, e.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        api->reply_error(req, 400, "invalid_json", "the body must be a JSON object");
        json_decref(o);
        return NULL;
    }
    return o;
}

static int known_fields(struct rb_http_req *req, json_t *o, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (!*a) {
            api->reply_error(req, 400, "unknown_field", "unknown field \"%.64s\"", key);
            return -1;
        }
    }
    return 0;
}

static void on_submit(struct rb_http_req *req, void *arg)
{
    json_t *o = body_object(req);
    if (!o)
        return;
    if (known_fields(req, o, case_fields) != 0) {
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

    char th[2 + 64 + 1];
    int auth = bearer_hash(req, th);
    if (auth < 0) {
        api->reply_error(req, 401, "unauthorized", "expected Authorization: Bearer <token>");
        submit_free(s);
        return;
    }
    if (auth == 0) {
        submit_as(s, NULL, NULL, 0);
        return;
    }
    const char *params[1] = {th};
    if (api->db_query(s->ctx, token_sql, 1, params, submit_authed, s) != RB_OK) {
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
        submit_free(s);
    }
}

/* ---- GET /api/v1/cases/:tracking ---------------------------------------------------------- */

static const char status_sql[] =
    "SELECT c.tracking_no, c.kind, c.status, coalesce(c.service_id, ''), "
    "  coalesce(c.department_id, ''), "
    "  to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "  to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "  to_char(c.resolve_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
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
    reply_json(req, 200, out);
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
    char th[2 + 64 + 1];
    int auth = bearer_hash(req, th);
    if (auth < 0) {
        api->reply_error(req, 401, "unauthorized", "expected Authorization: Bearer <token>");
        return;
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

static int app_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (!RB_HOST_HAS(api, phone_normalize)) {
        api->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the app plugin (no case API)");
        return RB_ERR;
    }
    if (sodium_init() < 0)
        return RB_ERR;
    if (api->conf_parse(ctx, NULL, 0, NULL) != RB_OK)
        return RB_EINVAL;
    if (api->http_route(ctx, RB_HTTP_GET, "/api/v1", on_root, NULL) != RB_OK ||
        api->http_route(ctx, RB_HTTP_POST, "/api/v1/cases", on_submit, ctx) != RB_OK ||
        api->http_route(ctx, RB_HTTP_GET, "/api/v1/cases/:tracking", on_status, ctx) != RB_OK)
        return RB_ERR;
    return RB_OK;
}

static const struct rb_plugin app = {
    RB_PLUGIN_HEADER,
    .name = "app",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "0.2.0",
    .description = "mobile-app JSON API",
    .init = app_init,
};

RB_PLUGIN_DEFINE(app)
