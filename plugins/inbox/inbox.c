/* inbox: the department plugin for departments whose staff work inside Rabta. New cases
 * appear in the department's inbox by themselves (the staff API lists the department's open
 * cases); delivery is where the duty officer will be told of each new case. */
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

/* A new case (or one transferred) for `department`: case_json is the case as the department
 * may see it (struct rb_delivery in rabta/plugin.h). Nothing to do yet: the case is in the
 * inbox already.
 *
 * TODO(lead, after the SMS work's message templates are merged): when conf.notify_duty_officer
 * is on and the department has a duty_phone, queue the duty-officer notice here (a template
 * such as "duty_officer.new_case" rendered with the case's tracking number, service and
 * priority, as an outgoing message job), and record it with api->case_event(ctx, case_id,
 * "inbox.notice", ...). Return RB_OK, or an error code to have the job retried. */
static int notify_new_case(struct rb_plugin_ctx *ctx, const char *department,
                           const char *case_json)
{
    (void)ctx;
    (void)department;
    (void)case_json;
    return RB_OK;
}

static void inbox_deliver(struct rb_job_run *run, const struct rb_job_info *job,
                          const struct rb_delivery *d, void *arg)
{
    struct rb_plugin_ctx *ctx = arg;
    (void)job;
    int rc = notify_new_case(ctx, d->department, d->case_json);
    api->job_finish(run, rc == RB_OK, rc == RB_OK ? NULL : "duty officer notice failed", -1, 0);
}

static int inbox_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (api->conf_parse(ctx, inbox_fields, 1, &conf) != RB_OK)
        return RB_EINVAL;
    if (RB_HOST_HAS(api, department_deliver) &&
        api->department_deliver(ctx, inbox_deliver, ctx) != RB_OK)
        return RB_ERR;
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
