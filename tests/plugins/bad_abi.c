/* Test plugin built "for" a future ABI: must be refused naming both versions. */
#include <rabta/plugin.h>

static int bad_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *api)
{
    (void)ctx;
    (void)api;
    return RB_OK;
}

static const struct rb_plugin bad = {
    .magic = RB_PLUGIN_MAGIC, .abi = RB_PLUGIN_ABI + 1, .size = sizeof(struct rb_plugin),
    .name = "bad_abi", .kind = RB_PLUGIN_CHANNEL, .init = bad_init,
};

RB_PLUGIN_DEFINE(bad)
