/* web: see web.h. This file: the configuration, the templates and assets (loaded at start and
 * again at reload; a broken template keeps the old set and logs file:line:col), and the
 * routes of the assets. */
#include "web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct web web_g;

/* Checks of single values (reported by the core at the value's file:line:col). */
static const char *secret_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    return strlen(*(char *const *)v) >= 32 ? NULL : "must have at least 32 characters";
}

static const char *kiosk_reset_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x >= 10 && x <= 3600 ? NULL : "must be from 10s to 1h";
}

#define F(key, type, member, flags, check)                                                    \
    {key, type, offsetof(struct web_conf, member), flags, 0, 0, NULL, check}
static const struct rb_conf_field_v2 web_fields[] = {
    F("dir", RB_CONF_STRING, dir, RB_CONF_REQUIRED, NULL),
    F("font", RB_CONF_STRING, font, 0, NULL),
    F("secret", RB_CONF_STRING, secret, 0, secret_ok),
    F("secure_cookies", RB_CONF_BOOL, secure_cookies, 0, NULL),
    F("kiosk_reset", RB_CONF_DURATION, kiosk_reset, 0, kiosk_reset_ok),
};
#undef F
#define DEFAULT_FONT "/usr/share/fonts/truetype/noto/NotoNastaliqUrdu-Regular.ttf"
#define ASSET_MAX (4 * 1024 * 1024)

static int read_asset(const char *path, const char *type, struct web_asset *out)
{
    size_t len;
    char *body = web_buf_file(path, ASSET_MAX, &len);
    if (!body)
        return -1;
    free(out->body);
    out->body = body;
    out->len = len;
    out->type = type;
    return 0;
}

/* The configured services by department and the districts, in both languages. */
static void load_lists(void)
{
    json_t *sv = json_loads(web_g.api->services_json(web_g.ctx), 0, NULL);
    json_t *ds = json_loads(web_g.api->districts_json(web_g.ctx), 0, NULL);
    for (int l = 0; l < 2; l++) {
        const char *nk = l ? "name_ur" : "name_en", *dk = l ? "department_name_ur" : "department_name_en";
        json_decref(web_g.departments[l]);
        json_decref(web_g.services[l]);
        json_decref(web_g.districts[l]);
        web_g.departments[l] = json_array();
        web_g.services[l] = json_array();
        web_g.districts[l] = json_array();
        size_t i;
        json_t *s;
        json_array_foreach(sv, i, s)
        {
            const char *dep = json_string_value(json_object_get(s, "department"));
            json_t *d = NULL, *x;
            size_t k;
            json_array_foreach(web_g.departments[l], k, x)
            {
                if (strcmp(json_string_value(json_object_get(x, "id")), dep) == 0)
                    d = x;
            }
            if (!d) {
                d = json_pack("{s:s, s:O, s:[]}", "id", dep, "name", json_object_get(s, dk),
                              "services");
                json_array_append_new(web_g.departments[l], d);
            }
            json_t *one = json_pack("{s:O, s:O, s:s, s:O}", "id", json_object_get(s, "id"), "name",
                                    json_object_get(s, nk), "department", dep, "department_name",
                                    json_object_get(s, dk));
            json_array_append(json_object_get(d, "services"), one);
            json_array_append_new(web_g.services[l], one);
        }
        json_array_foreach(ds, i, s)
        {
            json_array_append_new(web_g.districts[l],
                                  json_pack("{s:O, s:O}", "id", json_object_get(s, "id"), "name",
                                            json_object_get(s, nk)));
        }
    }
    json_decref(sv);
    json_decref(ds);
}

/* Templates and stylesheet from conf.dir, font from conf.font. RB_OK or RB_EINVAL (logged;
 * what was loaded before stays). */
static int load(void)
{
    char err[4096], path[1024];
    struct web_tmpl_set *t = web_tmpl_load(web_g.conf.dir, err, sizeof(err));
    if (!t) {
        web_g.api->log(web_g.ctx, RB_LOG_ERROR, "web templates: %s", err);
        return RB_EINVAL;
    }
    snprintf(path, sizeof(path), "%s/static/site.css", web_g.conf.dir);
    struct web_asset css = {0};
    if (read_asset(path, "text/css; charset=utf-8", &css) != 0) {
        web_g.api->log(web_g.ctx, RB_LOG_ERROR, "%s: cannot read the stylesheet", path);
        web_tmpl_free(t);
        return RB_EINVAL;
    }
    snprintf(path, sizeof(path), "%s/static/kiosk.js", web_g.conf.dir);
    if (read_asset(path, "text/javascript; charset=utf-8", &web_g.kiosk_js) != 0)
        web_g.api->log(web_g.ctx, RB_LOG_WARN, "%s: cannot read it; kiosks will not start over",
                       path);
    const char *font = web_g.conf.font ? web_g.conf.font : DEFAULT_FONT;
    if (read_asset(font, "font/ttf", &web_g.font) != 0)
        web_g.api->log(web_g.ctx, RB_LOG_WARN,
                       "%s: cannot read the Urdu font (Debian package fonts-noto-core, "
                       "installed by tools/deps.sh); pages fall back to the system's fonts",
                       font);
    web_tmpl_free(web_g.tmpl);
    web_g.tmpl = t;
    web_kept_free(web_g.kept); /* rendered from the old templates and lists */
    web_g.kept = NULL;
    free(web_g.css.body);
    web_g.css = css;
    load_lists();
    return RB_OK;
}

static void on_asset(struct rb_http_req *req, void *arg)
{
    const struct web_asset *a = arg;
    if (!a->body) {
        web_g.api->reply_error(req, 404, "not_found", "this asset is not installed");
        return;
    }
    web_g.api->reply_header(req, "Cache-Control", "public, max-age=86400");
    web_g.api->reply_header(req, "X-Content-Type-Options", "nosniff");
    web_g.api->reply(req, 200, a->type, a->body, a->len);
}

static int web_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *api)
{
    if (!RB_HOST_HAS(api, api_request)) {
        api->log(ctx, RB_LOG_ERROR, "web needs a server with the host API entry api_request");
        return RB_EINVAL;
    }
    web_g.ctx = ctx;
    web_g.api = api;
    web_g.conf.kiosk_reset = 90;
    if (RB_CONF_PARSE_V2(api, ctx, NULL, web_fields, &web_g.conf) != RB_OK)
        return RB_EINVAL;
    if (web_g.conf.secret)
        crypto_auth_hmacsha256(web_g.key, (const unsigned char *)web_g.conf.secret,
                               strlen(web_g.conf.secret),
                               (const unsigned char *)"rabta web csrf key derivation....");
    else
        randombytes_buf(web_g.key, sizeof(web_g.key));
    if (load() != RB_OK)
        return RB_EINVAL;
    int rc = api->http_route(ctx, RB_HTTP_GET, "/assets/site.css", on_asset, &web_g.css);
    if (rc == RB_OK)
        rc = api->http_route(ctx, RB_HTTP_GET, "/assets/nastaliq.ttf", on_asset, &web_g.font);
    if (rc == RB_OK)
        rc = api->http_route(ctx, RB_HTTP_GET, "/assets/kiosk.js", on_asset, &web_g.kiosk_js);
    if (rc == RB_OK)
        rc = web_citizen_routes(ctx);
    if (rc == RB_OK)
        rc = web_staff_routes(ctx);
    if (rc == RB_OK)
        rc = web_dashboard_routes(ctx);
    if (rc == RB_OK)
        rc = web_notices_routes(ctx);
    if (rc == RB_OK)
        rc = web_admin_routes(ctx);
    return rc;
}

static int web_reload(struct rb_plugin_ctx *ctx)
{
    (void)ctx;
    return load();
}

static void web_stop(struct rb_plugin_ctx *ctx)
{
    (void)ctx;
    web_tmpl_free(web_g.tmpl);
    web_kept_free(web_g.kept);
    web_dashboard_free();
    free(web_g.css.body);
    free(web_g.font.body);
    free(web_g.kiosk_js.body);
    for (int l = 0; l < 2; l++) {
        json_decref(web_g.departments[l]);
        json_decref(web_g.services[l]);
        json_decref(web_g.districts[l]);
    }
    RB_CONF_FREE_V2(web_g.api, web_fields, &web_g.conf);
    memset(&web_g, 0, sizeof(web_g));
}

static const struct rb_plugin web_desc = {
    RB_PLUGIN_HEADER,
    .name = "web",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "1.0",
    .description = "citizens' portal and staff screens, rendered on the server",
    .init = web_init,
    .stop = web_stop,
    .reload = web_reload,
};

RB_PLUGIN_DEFINE(web_desc)
