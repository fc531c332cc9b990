/* Test plugin whose descriptor lacks the magic: not a Rabta plugin. */
#include <rabta/plugin.h>

static const struct rb_plugin bad = {
    .magic = 0xdeadbeefu, .abi = RB_PLUGIN_ABI, .size = sizeof(struct rb_plugin),
    .name = "bad_magic", .kind = RB_PLUGIN_CHANNEL,
};

RB_PLUGIN_DEFINE(bad)
