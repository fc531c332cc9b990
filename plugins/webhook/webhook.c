/* webhook: the department plugin for departments with their own system. Each new case is
 * POSTed, signed, to the department's URL, and progress comes back on a signed callback.
 * The foundation loads it and validates its settings; delivery arrives with the staff work. */
#include <stddef.h>
#include <rabta/plugin.h>

struct webhook_conf {
    double timeout;    /* seconds per delivery attempt */
    long long max_attempts;
};

static const struct rb_conf_field webhook_fields[] = {
    {"timeout", RB_CONF_DURATION, offsetof(struct webhook_conf, timeout), 0, 0, 0},
    {"max_attempts", RB_CONF_INT, offsetof(struct webhook_conf, max_attempts), 0, 1, 100},
};

static const struct rb_host_api *api;
static struct webhook_conf conf;

static int webhook_parse(struct rb_plugin_ctx *ctx, struct webhook_conf *out)
{
    struct webhook_conf c = {.timeout = 10, .max_attempts = 12};
    if (api->conf_parse(ctx, webhook_fields, 2, &c) != RB_OK)
        return RB_EINVAL;
    *out = c;
    return RB_OK;
}

static int webhook_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    return webhook_parse(ctx, &conf);
}

static int webhook_reload(struct rb_plugin_ctx *ctx)
{
    return webhook_parse(ctx, &conf);
}

static const struct rb_plugin webhook = {
    RB_PLUGIN_HEADER,
    .name = "webhook",
    .kind = RB_PLUGIN_DEPARTMENT,
    .version = "0.1.0",
    .description = "cases are delivered to the department's own system over signed HTTP",
    .init = webhook_init,
    .reload = webhook_reload,
};

RB_PLUGIN_DEFINE(webhook)
