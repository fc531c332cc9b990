/* Test plugin whose init fails: the server must refuse to start, naming it. */
#include <rabta/plugin.h>

static int fail_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *api)
{
    api->log(ctx, RB_LOG_ERROR, "init_fails: refusing to start, as designed");
    return RB_EINVAL;
}

static const struct rb_plugin p = {
    RB_PLUGIN_HEADER, .name = "init_fails", .kind = RB_PLUGIN_DEPARTMENT, .init = fail_init,
};

RB_PLUGIN_DEFINE(p)
