/* open311: Open311 GeoReport v2 as a channel over Rabta's cases (docs/open311.md).
 *
 *   GET  /open311/discovery.{json,xml}        (also under /open311/v2/)
 *   GET  /open311/v2/services.{json,xml}       the configured services
 *   GET  /open311/v2/services/CODE.{json,xml}  a service definition (its questions)
 *   POST /open311/v2/requests.{json,xml}       a new complaint (form-encoded, api_key)
 *   GET  /open311/v2/requests.{json,xml}       search: service_request_id, service_code,
 *                                              start_date, end_date, status
 *   GET  /open311/v2/requests/ID.{json,xml}    one request
 *   GET  /open311/v2/tokens/TOKEN.{json,xml}   a token is the tracking number itself
 *   GET  /open311/v2/servicerequestupdates.{json,xml}   public updates in a window
 *   POST /open311/v2/servicerequestupdates.{json,xml}   a public update (api_key)
 *
 * Every path under /open311/ is this plugin's: an unknown one is 404 and a wrong method 405,
 * in Open311's error shape and in the format the path asks for (.xml, else JSON).
 *
 * Privacy: only cases that came in through this channel are visible here (tracking numbers
 * of other channels are shown only with the citizen's phone digits, plugins/app). The
 * reporter's phone, email and name never leave the database through this plugin: the SQL
 * does not even select them. API keys: only their SHA-256 is stored
 * (migrations/0005_open311.sql, `rabtad apikey`). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>
#include <rabta/plugin.h>

#include "open311.h"

#define SPEC_URL "http://wiki.open311.org/GeoReport_v2"
#define MAX_DEPTH 31 /* path segments after /open311/ that reach us (the core routes 32) */

static const struct rb_host_api *api;

static const char *key_cache_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block;
    double d = *(const double *)v;
    if (d >= 0 && d <= O311_KEY_CACHE_MAX)
        return NULL;
    snprintf(why, n, "must be from 0 (ask the database every time) to %.0fs: a revoked key "
                     "must stop working soon", O311_KEY_CACHE_MAX);
    return why;
}

#define F(key, type, member, check)                                                         \
    {key, type, offsetof(struct o311_conf, member), 0, 0, 0, NULL, check}
static const struct rb_conf_field_v2 conf_fields[] = {
    F("base_url", RB_CONF_STRING, base_url, NULL),
    F("contact", RB_CONF_STRING, contact, NULL),
    F("key_service", RB_CONF_STRING, key_service, NULL),
    F("jurisdiction_id", RB_CONF_STRING, jurisdiction_id, NULL),
    F("api_key_cache", RB_CONF_DURATION, key_cache, key_cache_ok),
};
#undef F

/* ---- discovery and services --------------------------------------------------------------- */

/* Hosts we repeat back in a URL: letters, digits and . - : [ ] only. */
static int plain_host(const char *h)
{
    size_t n = h ? strlen(h) : 0;
    return n > 0 && n < 256 &&
           strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:[]") == n;
}

static void on_discovery(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                         const char *base)
{
    (void)base;
    char url[512];
    const char *host = api->req_header(req, "Host");
    if (o->conf.base_url)
        snprintf(url, sizeof(url), "%s", o->conf.base_url);
    else if (plain_host(host))
        snprintf(url, sizeof(url), "http://%s/open311/v2", host);
    else
        snprintf(url, sizeof(url), "/open311/v2");
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:[s, s]}]}", "changeset", o->changeset,
        "contact", o->conf.contact ? o->conf.contact : "", "key_service",
        o->conf.key_service ? o->conf.key_service
                            : "Ask the bureau's administrator for an API key",
        "endpoints", "specification", SPEC_URL, "url", url, "changeset", o->changeset, "type",
        "production", "formats", "application/json", "text/xml");
    o311_send(req, 200, fmt, "discovery", doc);
}

static json_t *service_entry(struct o311 *o, json_t *s)
{
    const char *id = o311_str_of(s, "id");
    int metadata = json_array_size(json_object_get(o->questions, id)) > 0;
    return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "service_code", id,
                     "service_name", o311_str_of(s, "name_en"), "description",
                     o311_str_of(s, "name_ur"), "metadata", metadata, "type", "realtime",
                     "keywords", "", "group", o311_str_of(s, "department_name_en"));
}

/* The services for a request about them: NULL after answering a wrong jurisdiction_id or a
 * list that could not be loaded, else a new reference; caller decrefs. */
static json_t *services_asked(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt)
{
    if (o311_wrong_jurisdiction(o, req, api->req_query(req, "jurisdiction_id"), fmt))
        return NULL;
    json_t *svcs = o311_services_load(o);
    if (!svcs)
        o311_error(req, 500, fmt, "the service list is not available");
    return svcs;
}

static void on_services(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                        const char *base)
{
    (void)base;
    json_t *svcs = services_asked(req, o, fmt);
    if (!svcs)
        return;
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s) json_array_append_new(out, service_entry(o, s));
    json_decref(svcs);
    o311_send(req, 200, fmt, "services", out);
}

static void on_service_definition(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                                  const char *code)
{
    json_t *svcs = services_asked(req, o, fmt);
    if (!svcs)
        return;
    json_t *s = o311_service_find(svcs, code);
    if (!s) {
        json_decref(svcs);
        o311_error(req, 404, fmt, "no service with service_code \"%.64s\"", code);
        return;
    }
    json_t *attrs = json_object_get(o->questions, code);
    json_t *doc = json_pack("{s:s, s:o}", "service_code", o311_str_of(s, "id"), "attributes",
                            attrs ? json_incref(attrs) : json_array());
    json_decref(svcs);
    o311_send(req, 200, fmt, "service_definition", doc);
}
/* ---- routes: every path under /open311/ ------------------------------------------------- */

typedef void (*endpoint_fn)(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                            const char *base);

/* path: after "/open311/", without ".json"/".xml"; a last segment "*" is any name (base).
 * get answers GET (and HEAD); post, when there is one, gets a POST once its form and API key
 * are good (o311_post_start). */
static const struct endpoint {
    const char *path;
    endpoint_fn get;
    o311_post_fn post;
    const char *name; /* what "*" stands for, as the spec calls it */
} endpoints[] = {
    {"discovery", on_discovery, NULL, NULL},
    {"v2/discovery", on_discovery, NULL, NULL},
    {"v2/services", on_services, NULL, NULL},
    {"v2/services/*", on_service_definition, NULL, "service_code"},
    {"v2/requests", o311_requests_list, o311_request_submit, NULL},
    {"v2/requests/*", o311_on_request_one, NULL, "service_request_id"},
    {"v2/tokens/*", o311_on_token, NULL, "token"},
    {"v2/servicerequestupdates", o311_updates_list, o311_update_submit, NULL},
};
#define NENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

/* dir ("" or "a/b/") and base name the endpoint's path. */
static int endpoint_match(const char *pat, const char *dir, size_t dirlen, const char *base)
{
    size_t pl = strlen(pat);
    if (strncmp(pat, dir, dirlen) != 0 || pl < dirlen)
        return 0;
    if (pat[pl - 1] == '*')
        return pl - 1 == dirlen && *base;
    return strcmp(pat + dirlen, base) == 0;
}

static void reply_bad_method(struct rb_http_req *req, enum o311_fmt fmt, int post)
{
    char allow[32];
    snprintf(allow, sizeof(allow), "GET, HEAD%s", post ? ", POST" : "");
    api->reply_header(req, "Allow", allow);
    o311_error(req, 405, fmt, "this method is not allowed here; use %s", allow);
}

/* Every route of the plugin lands here: the endpoint, the format and the method are checked
 * in one place so that every refusal is in Open311's shape. */
static void dispatch(struct rb_http_req *req, void *arg)
{
    static const char prefix[] = "/open311/";
    const char *path = api->req_path(req);
    enum o311_fmt fmt = o311_path_format(req);
    if (!path || strncmp(path, prefix, sizeof(prefix) - 1) != 0) {
        o311_error(req, 404, fmt, "not an Open311 path");
        return;
    }
    const char *rest = path + sizeof(prefix) - 1, *slash = strrchr(rest, '/');
    const char *file = slash ? slash + 1 : rest;
    char base[256];
    if (strcmp(file, ".json") == 0 || strcmp(file, ".xml") == 0) { /* "services/.json" */
        for (size_t i = 0; i < NENDPOINTS; i++)
            if (endpoints[i].name && endpoint_match(endpoints[i].path, rest,
                                                    (size_t)(file - rest), "x")) {
                o311_error(req, 400, fmt, "%s was not provided (it is the last part of the "
                                          "path)", endpoints[i].name);
                return;
            }
    }
    if (o311_split_format(file, base, sizeof(base), &fmt) != 0) {
        o311_error(req, 404, fmt, "nothing here: Open311 paths end in .json or .xml (see "
                                  "/open311/discovery.json)");
        return;
    }
    enum rb_http_method method = api->req_method(req);
    for (size_t i = 0; i < NENDPOINTS; i++) {
        const struct endpoint *e = &endpoints[i];
        if (!endpoint_match(e->path, rest, (size_t)(file - rest), base))
            continue;
        if (method == RB_HTTP_GET || method == RB_HTTP_HEAD)
            e->get(req, api->get_data(arg), fmt, base);
        else if (method == RB_HTTP_POST && e->post)
            o311_post_start(req, api->get_data(arg), fmt, e->post);
        else
            reply_bad_method(req, fmt, e->post != NULL);
        return;
    }
    o311_error(req, 404, fmt, "nothing here: %.200s (see /open311/discovery.%s)", path,
               fmt == O311_XML ? "xml" : "json");
}

#define ALL_METHODS                                                                           \
    (RB_HTTP_GET | RB_HTTP_POST | RB_HTTP_PUT | RB_HTTP_DELETE | RB_HTTP_PATCH |              \
     RB_HTTP_HEAD | RB_HTTP_OPTIONS)

/* Each endpoint under its own pattern (so metrics name it), then "/open311/:p1" ...
 * "/open311/:p1/.../:p31" for every other path. */
static int routes_add(struct rb_plugin_ctx *ctx)
{
    char pattern[512];
    int rc = RB_OK;
    for (size_t i = 0; rc == RB_OK && i < NENDPOINTS; i++) {
        const char *p = endpoints[i].path;
        size_t n = strlen(p);
        if (p[n - 1] == '*') {
            snprintf(pattern, sizeof(pattern), "/open311/%.*s:file", (int)(n - 1), p);
            rc = api->http_route(ctx, ALL_METHODS, pattern, dispatch, ctx);
            continue;
        }
        static const char *const suffixes[] = {".json", ".xml"};
        for (int s = 0; rc == RB_OK && s < 2; s++) {
            snprintf(pattern, sizeof(pattern), "/open311/%s%s", p, suffixes[s]);
            rc = api->http_route(ctx, ALL_METHODS, pattern, dispatch, ctx);
        }
    }
    size_t len = snprintf(pattern, sizeof(pattern), "/open311");
    for (int d = 1; rc == RB_OK && d <= MAX_DEPTH; d++) {
        len += (size_t)snprintf(pattern + len, sizeof(pattern) - len, "/:p%d", d);
        rc = api->http_route(ctx, ALL_METHODS, pattern, dispatch, ctx);
    }
    return rc;
}
/* ---- life --------------------------------------------------------------------------------- */

static void set_changeset(struct o311 *o)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(o->changeset, sizeof(o->changeset), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void open311_stop(struct rb_plugin_ctx *ctx);

static int open311_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (!RB_HOST_HAS(api, conf_free_v2)) {
        api->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the open311 plugin: its host "
                                    "API has no conf_parse_v2 (plugin needs ABI %u with "
                                    "conf_parse_v2)", RB_PLUGIN_ABI);
        return RB_ERR;
    }
    if (sodium_init() < 0)
        return RB_ERR;
    o311_out_init(host);
    o311_form_init(host);
    o311_attrs_init(host);
    o311_requests_init(host);
    o311_updates_init(host);
    struct o311 *o = calloc(1, sizeof(*o));
    if (!o)
        return RB_ERR;
    o->ctx = ctx;
    o->conf.key_cache = O311_KEY_CACHE_DEFAULT;
    api->set_data(ctx, o);
    if (RB_CONF_PARSE_V2(api, ctx, NULL, conf_fields, &o->conf) != RB_OK ||
        !(o->questions = o311_questions_load(o))) {
        open311_stop(ctx); /* the core calls stop() only after a successful init() */
        return RB_EINVAL;
    }
    set_changeset(o);
    if (RB_HOST_HAS(api, http_error_owner) &&
        api->http_error_owner(ctx, "/open311", o311_error_writer, NULL) != RB_OK) {
        open311_stop(ctx);
        return RB_ERR;
    }
    if (routes_add(ctx) != RB_OK) {
        open311_stop(ctx);
        return RB_ERR;
    }
    return RB_OK;
}

/* A reloaded configuration: the plugin's block and the services' questions are read again
 * and swapped in only if both are valid; the changeset moves on, as the service list may
 * have changed. */
static int open311_reload(struct rb_plugin_ctx *ctx)
{
    struct o311 *o = api->get_data(ctx);
    struct o311_conf fresh = {.key_cache = O311_KEY_CACHE_DEFAULT};
    if (!o)
        return RB_OK;
    set_changeset(o);
    json_decref(o->services); /* the service list the host has now is read at next use */
    o->services = NULL;
    json_t *questions = o311_questions_load(o);
    if (!questions || RB_CONF_PARSE_V2(api, ctx, NULL, conf_fields, &fresh) != RB_OK) {
        json_decref(questions);
        RB_CONF_FREE_V2(api, conf_fields, &fresh);
        return RB_EINVAL;
    }
    RB_CONF_FREE_V2(api, conf_fields, &o->conf);
    o->conf = fresh;
    json_decref(o->questions);
    o->questions = questions;
    return RB_OK;
}

static void open311_stop(struct rb_plugin_ctx *ctx)
{
    struct o311 *o = api ? api->get_data(ctx) : NULL;
    if (!o)
        return;
    RB_CONF_FREE_V2(api, conf_fields, &o->conf);
    json_decref(o->questions);
    json_decref(o->services);
    sodium_memzero(o->keys, sizeof(o->keys));
    api->set_data(ctx, NULL);
    free(o);
}

/* rabtad --check: the plugin's block and the services' questions, as init() reads them. */
static int open311_check(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (!RB_HOST_HAS(api, conf_free_v2))
        return RB_EINVAL;
    o311_attrs_init(host);
    o311_requests_init(host);
    struct o311 o = {.ctx = ctx, .conf.key_cache = O311_KEY_CACHE_DEFAULT};
    int rc = RB_CONF_PARSE_V2(api, ctx, NULL, conf_fields, &o.conf);
    json_t *questions = o311_questions_load(&o);
    RB_CONF_FREE_V2(api, conf_fields, &o.conf);
    json_decref(o.services);
    if (!questions)
        rc = RB_EINVAL;
    json_decref(questions);
    return rc == RB_OK ? RB_OK : RB_EINVAL;
}

static const struct rb_plugin open311 = {
    RB_PLUGIN_HEADER,
    .name = "open311",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "0.1.0",
    .description = "Open311 GeoReport v2 (services, requests, updates) over Rabta's cases",
    .init = open311_init,
    .stop = open311_stop,
    .reload = open311_reload,
    .check = open311_check,
};

RB_PLUGIN_DEFINE(open311)
