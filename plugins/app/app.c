/* app: the mobile-app channel (JSON API under /api/v1/). The foundation serves the API's
 * discovery document; citizens' registration and cases arrive with the cases work. */
#include <stddef.h>
#include <stdio.h>
#include <rabta/plugin.h>

static const struct rb_host_api *api;

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
    if (api->conf_parse(ctx, NULL, 0, NULL) != RB_OK)
        return RB_EINVAL;
    return api->http_route(ctx, RB_HTTP_GET, "/api/v1", on_root, NULL);
}

static const struct rb_plugin app = {
    RB_PLUGIN_HEADER,
    .name = "app",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "0.1.0",
    .description = "mobile-app JSON API",
    .init = app_init,
};

RB_PLUGIN_DEFINE(app)
