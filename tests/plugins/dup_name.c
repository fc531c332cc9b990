/* Test plugin that calls itself "good": loading it next to good.so is a duplicate name. */
#include <rabta/plugin.h>

static int dup_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *api)
{
    (void)ctx;
    (void)api;
    return RB_OK;
}

static const struct rb_plugin dup = {
    RB_PLUGIN_HEADER, .name = "good", .kind = RB_PLUGIN_CHANNEL, .init = dup_init,
};

RB_PLUGIN_DEFINE(dup)
