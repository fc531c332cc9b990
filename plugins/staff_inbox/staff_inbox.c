/* staff_inbox: the department plugin for departments whose staff work inside Rabta. New cases
 * appear in the staff inbox by themselves (core's staff API lists the department's open cases,
 * core/staff/staff_api.c); this plugin's delivery is where the department's duty officer is
 * told of each new case.
 *
 * Duty-officer notice: when the plugin's config says notify_duty_officer and the department's
 * file has a duty_phone (normalised to E.164 when the config is loaded; a bad one stops start
 * and reload, naming the file), each new or transferred case queues one urgent SMS to that
 * phone, template "duty.new_case" of lua/templates.lua: kind, tracking number, department,
 * service, district and priority, never the complainant's name, phone or text. The message
 * carries the delivery's event id, so a delivery job that runs again finds it stored and
 * texts no second time; the job ends only once the message is stored (else it is retried).
 *
 * (An SLA escalation's notify ... via: inbox is no message: the core writes it as a staff
 * notification, core/messages/escalation.c.) */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <rabta/plugin.h>

/* The languages of the templates, as duty_language may name them. */
static const char *const languages[] = {"en", "ur", NULL};

struct staff_inbox_conf {
    int notify_duty_officer; /* send the department's duty officer a notice per new case */
    int duty_language;       /* index in languages: "en" (default) or "ur" */
};

static const struct rb_conf_field_v2 staff_inbox_fields[] = {
    {"notify_duty_officer", RB_CONF_BOOL, offsetof(struct staff_inbox_conf, notify_duty_officer),
     0, 0, 0, NULL, NULL},
    {"duty_language", RB_CONF_ENUM, offsetof(struct staff_inbox_conf, duty_language), 0, 0, 0,
     languages, NULL},
};

static const struct rb_host_api *api;
static struct staff_inbox_conf conf;

/* The language of the notices: "en" or "ur". */
static const char *duty_language(void)
{
    return languages[conf.duty_language];
}

/* A string member of o, or fallback when absent, null or empty. Borrowed. */
static const char *str_or(const json_t *o, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && s[0] ? s : fallback;
}

/* The service's name in lang from the host's services list, or its id. Borrowed from the
 * list (valid until the next services_json call) or from id. */
static const char *service_name(struct rb_plugin_ctx *ctx, const char *id, const char *lang,
                                json_t **list)
{
    *list = json_loads(api->services_json(ctx), 0, NULL);
    size_t i;
    json_t *sv;
    json_array_foreach(*list, i, sv)
    {
        if (strcmp(str_or(sv, "id", ""), id) == 0)
            return str_or(sv, strcmp(lang, "ur") == 0 ? "name_ur" : "name_en", id);
    }
    return id;
}

/* The words for a kind of case (templates kind.*), or the kind itself. Returns a new string;
 * caller frees. */
static char *kind_words(struct rb_plugin_ctx *ctx, const char *kind, const char *lang)
{
    char name[64], why[160];
    snprintf(name, sizeof(name), "kind.%s", kind);
    char *w = api->template_render(ctx, name, lang, NULL, why, sizeof(why));
    return w ? w : strdup(kind);
}

/* The notice's parameters as JSON text, or NULL when case_json is not an object. Returns a
 * new string; caller frees. */
static char *notice_params(struct rb_plugin_ctx *ctx, const struct rb_department_info *dep,
                           const char *case_json, const char *lang)
{
    json_t *c = json_loads(case_json, 0, NULL);
    if (!json_is_object(c)) {
        json_decref(c);
        return NULL;
    }
    json_t *services = NULL;
    const char *service = str_or(c, "service", NULL);
    service = service ? service_name(ctx, service, lang, &services) : "-";
    char *kind = kind_words(ctx, str_or(c, "kind", "case"), lang);
    const char *dname = strcmp(lang, "ur") == 0 ? dep->name_ur : dep->name_en;
    json_t *prio = json_object_get(c, "priority");
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "kind", kind ? kind : "case",
                          "tracking", str_or(c, "tracking_no", "-"), "department",
                          dname && dname[0] ? dname : dep->id, "service", service, "district",
                          str_or(c, "district", "-"), "priority",
                          (json_int_t)(json_is_integer(prio) ? json_integer_value(prio) : 0));
    char *out = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    json_decref(services);
    json_decref(c);
    free(kind);
    return out;
}

/* A delivery waiting for its notice to be stored. */
struct notice {
    struct rb_plugin_ctx *ctx;
    struct rb_job_run *run; /* until job_finish */
    long long case_id;
};

static void notice_stored(long long id, const char *err, void *arg)
{
    struct notice *n = arg;
    if (err) {
        api->log(n->ctx, RB_LOG_WARN, "case %lld: the duty officer's notice was not stored: %s",
                 n->case_id, err);
        api->job_finish(n->run, 0, "duty officer notice not stored", -1, 0);
    } else {
        if (id == 0)
            api->log(n->ctx, RB_LOG_DEBUG, "case %lld: the duty officer's notice was stored "
                                           "before", n->case_id);
        api->job_finish(n->run, 1, NULL, 0, 0);
    }
    free(n);
}

/* A new case (or one transferred) for d->department: when notices are on and the department
 * has a duty phone, queue the notice and finish the run once it is stored; otherwise finish
 * now. */
static void staff_inbox_deliver(struct rb_job_run *run, const struct rb_job_info *job,
                          const struct rb_delivery *d, void *arg)
{
    struct rb_plugin_ctx *ctx = arg;
    (void)job;
    struct rb_department_info dep = {.size = sizeof(dep)};
    if (!conf.notify_duty_officer || !RB_HOST_HAS(api, department_info) ||
        api->department_info(ctx, d->department, &dep) != RB_OK || !dep.duty_phone) {
        api->job_finish(run, 1, NULL, 0, 0);
        return;
    }
    const char *lang = duty_language();
    char *params = notice_params(ctx, &dep, d->case_json, lang);
    if (!params) {
        api->log(ctx, RB_LOG_ERROR, "case %lld: the delivery's case is not a JSON object; no "
                                    "duty officer notice", d->case_id);
        api->job_finish(run, 0, "malformed case", -1, 1);
        return;
    }
    const struct rb_message_out m = {
        .size = sizeof(m), .template = "duty.new_case", .language = lang,
        .params_json = params, .channel = "sms", .to = dep.duty_phone, .case_id = d->case_id,
        .event_id = d->event_id, .notice = 0, .urgent = 1,
    };
    struct notice *n = calloc(1, sizeof(*n));
    if (!n) {
        free(params);
        api->job_finish(run, 0, "out of memory", -1, 0);
        return;
    }
    n->ctx = ctx;
    n->run = run;
    n->case_id = d->case_id;
    char why[256];
    int rc = api->message_queue(ctx, &m, notice_stored, n, why, sizeof(why));
    free(params);
    if (rc != RB_OK) {
        /* A template that does not render can be fixed by a reload: retry with back-off. */
        if (rc == RB_EINVAL)
            api->log(ctx, RB_LOG_ERROR, "case %lld: no duty officer notice for %s: %s",
                     d->case_id, d->department, why);
        api->job_finish(run, 0, rc == RB_EINVAL ? why : "database unavailable", -1, 0);
        free(n);
    }
}

/* A new case of department is worth a delivery only when it would text its duty officer. */
static int staff_inbox_wants(struct rb_plugin_ctx *ctx, const char *department, void *arg)
{
    (void)arg;
    struct rb_department_info dep = {.size = sizeof(dep)};
    return conf.notify_duty_officer && RB_HOST_HAS(api, department_info) &&
           api->department_info(ctx, department, &dep) == RB_OK && dep.duty_phone;
}

/* Parses the plugin's config into out. RB_OK or RB_EINVAL (reported with file:line:col). */
static int parse(struct rb_plugin_ctx *ctx, struct staff_inbox_conf *out)
{
    return RB_CONF_PARSE_V2(api, ctx, NULL, staff_inbox_fields, out) == RB_OK ? RB_OK : RB_EINVAL;
}

static int staff_inbox_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (!RB_HOST_HAS(api, conf_free_v2)) {
        api->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the staff_inbox plugin (no "
                                    "conf_parse_v2 in the host API)");
        return RB_ERR;
    }
    if (parse(ctx, &conf) != RB_OK)
        return RB_EINVAL;
    if (RB_HOST_HAS(api, department_deliver) &&
        api->department_deliver(ctx, staff_inbox_deliver, ctx) != RB_OK)
        return RB_ERR;
    if (RB_HOST_HAS(api, department_wants) &&
        api->department_wants(ctx, staff_inbox_wants, NULL) != RB_OK)
        return RB_ERR;
    if (conf.notify_duty_officer && !RB_HOST_HAS(api, department_info))
        api->log(ctx, RB_LOG_WARN, "this rabtad cannot tell the staff_inbox plugin the "
                                   "departments' duty phones: no duty officer notices");
    api->log(ctx, RB_LOG_DEBUG, "staff_inbox ready (duty officer notices %s)",
             conf.notify_duty_officer ? "on" : "off");
    return RB_OK;
}

static int staff_inbox_reload(struct rb_plugin_ctx *ctx)
{
    struct staff_inbox_conf next = {0};
    if (parse(ctx, &next) != RB_OK)
        return RB_EINVAL;
    conf = next;
    return RB_OK;
}

static const struct rb_plugin staff_inbox = {
    RB_PLUGIN_HEADER,
    .name = "staff_inbox",
    .kind = RB_PLUGIN_DEPARTMENT,
    .version = "0.3.0",
    .description = "staff work cases in Rabta's inbox; the duty officer is texted each new one",
    .init = staff_inbox_init,
    .reload = staff_inbox_reload,
};

RB_PLUGIN_DEFINE(staff_inbox)
