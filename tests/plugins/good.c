/* A well-formed test plugin: registers GET /test/good, GET /test/sleep?s=N (answers after a
 * database pg_sleep, to have a slow in-flight request) and reads a config block. */
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <rabta/plugin.h>

struct good_conf {
    char *greeting;
    long long answer;
};

static const struct rb_conf_field good_fields[] = {
    {"greeting", RB_CONF_STRING, offsetof(struct good_conf, greeting), 0, 0, 0},
    {"answer", RB_CONF_INT, offsetof(struct good_conf, answer), 0, 0, 100},
};

static const struct rb_host_api *api;
static struct good_conf conf;

static void on_good(struct rb_http_req *req, void *arg)
{
    (void)arg;
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"plugin\":\"good\",\"greeting\":\"%s\",\"answer\":%lld}",
                     conf.greeting ? conf.greeting : "", conf.answer);
    api->reply(req, 200, NULL, body, (size_t)n);
}

static void slept(const struct rb_db_result *res, const char *err, void *arg)
{
    struct rb_http_req *req = arg;
    (void)res;
    if (err) {
        api->reply_error(req, 503, "database_unavailable", "%s", err);
        return;
    }
    api->reply(req, 200, NULL, "{\"slept\":true}", 14);
}

static void on_sleep(struct rb_http_req *req, void *arg)
{
    struct rb_plugin_ctx *ctx = arg;
    const char *s = api->req_query(req, "s");
    const char *params[1] = {s ? s : "1"};
    if (api->db_query(ctx, "SELECT pg_sleep($1::float8)", 1, params, slept, req) != RB_OK)
        api->reply_error(req, 503, "database_unavailable", "the database queue is full");
}

static int good_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (api->conf_parse(ctx, good_fields, sizeof(good_fields) / sizeof(good_fields[0]), &conf) !=
        RB_OK)
        return RB_EINVAL;
    if (api->http_route(ctx, RB_HTTP_GET, "/test/good", on_good, ctx) != RB_OK)
        return RB_ERR;
    if (api->http_route(ctx, RB_HTTP_GET, "/test/sleep", on_sleep, ctx) != RB_OK)
        return RB_ERR;
    api->log(ctx, RB_LOG_INFO, "good plugin ready");
    return RB_OK;
}

static void good_stop(struct rb_plugin_ctx *ctx)
{
    (void)ctx;
    api->conf_free(good_fields, sizeof(good_fields) / sizeof(good_fields[0]), &conf);
}

static const struct rb_plugin good = {
    RB_PLUGIN_HEADER,
    .name = "good",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "1.0",
    .description = "test plugin",
    .init = good_init,
    .stop = good_stop,
};

RB_PLUGIN_DEFINE(good)
