/* inbox: the department plugin for departments whose staff work inside Rabta. New cases
 * appear in the department's inbox (the staff API); optionally the duty officer is notified.
 * The foundation loads it and reads its settings; delivery arrives with the cases and staff
 * work. */
#include <stddef.h>
#include <rabta/plugin.h>

struct inbox_conf {
    int notify_duty_officer; /* send the department's duty officer a notice per new case */
};

static const struct rb_conf_field inbox_fields[] = {
    {"notify_duty_officer", RB_CONF_BOOL, offsetof(struct inbox_conf, notify_duty_officer), 0, 0, 0},
};

static const struct rb_host_api *api;
static struct inbox_conf conf;

static int inbox_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (api->conf_parse(ctx, inbox_fields, 1, &conf) != RB_OK)
        return RB_EINVAL;
    api->log(ctx, RB_LOG_DEBUG, "inbox ready (duty officer notices %s)",
             conf.notify_duty_officer ? "on" : "off");
    return RB_OK;
}

static int inbox_reload(struct rb_plugin_ctx *ctx)
{
    struct inbox_conf next = {0};
    if (api->conf_parse(ctx, inbox_fields, 1, &next) != RB_OK)
        return RB_EINVAL;
    conf = next;
    return RB_OK;
}

static const struct rb_plugin inbox = {
    RB_PLUGIN_HEADER,
    .name = "inbox",
    .kind = RB_PLUGIN_DEPARTMENT,
    .version = "0.1.0",
    .description = "cases are worked on in Rabta's own staff inbox",
    .init = inbox_init,
    .reload = inbox_reload,
};

RB_PLUGIN_DEFINE(inbox)
