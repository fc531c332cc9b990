/* Test plugin whose descriptor size differs from ours (built against another header). */
#include <rabta/plugin.h>

static int bad_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *api)
{
    (void)ctx;
    (void)api;
    return RB_OK;
}

static const struct rb_plugin bad = {
    .magic = RB_PLUGIN_MAGIC, .abi = RB_PLUGIN_ABI, .size = sizeof(struct rb_plugin) + 16,
    .name = "bad_size", .kind = RB_PLUGIN_CHANNEL, .init = bad_init,
};

RB_PLUGIN_DEFINE(bad)
