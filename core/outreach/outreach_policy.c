/* Outreach policies (outreach_policy.h). */
#include "outreach/outreach_policy.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rabta/plugin.h>

#include "base/text.h"
#include "config/tz.h"
#include "db/db.h"
#include "lua/script.h"

/* One policy block as YAML gives it; absent keys keep the values it was preset with. */
struct policy_in {
    double delay, call_wait, sms_wait, agent_sample, agent_wait;
    long long attempts, per_citizen_days;
    char *quiet_hours, *survey; /* owned */
};

static const struct rb_conf_field policy_fields[] = {
    {"delay", RB_CONF_DURATION, offsetof(struct policy_in, delay), 0, 0, 0},
    {"call_wait", RB_CONF_DURATION, offsetof(struct policy_in, call_wait), 0, 0, 0},
    {"sms_wait", RB_CONF_DURATION, offsetof(struct policy_in, sms_wait), 0, 0, 0},
    {"agent_sample", RB_CONF_DOUBLE, offsetof(struct policy_in, agent_sample), 0, 0, 0},
    {"agent_wait", RB_CONF_DURATION, offsetof(struct policy_in, agent_wait), 0, 0, 0},
    {"attempts", RB_CONF_INT, offsetof(struct policy_in, attempts), 0, 1, 10},
    {"per_citizen_days", RB_CONF_INT, offsetof(struct policy_in, per_citizen_days), 0, 0, 3650},
    {"quiet_hours", RB_CONF_STRING, offsetof(struct policy_in, quiet_hours), 0, 0, 0},
    {"survey", RB_CONF_STRING, offsetof(struct policy_in, survey), 0, 0, 0},
};

static const char *const policy_extra[] = {"channels", NULL};

const char *rb_outreach_channel_name(enum rb_outreach_channel c)
{
    return c == RB_OUTREACH_CALL ? "call" : "sms";
}

static void parse_channels(const struct rb_node *n, struct rb_outreach_policy *p,
                           struct rb_errors *e)
{
    if (!n || rb_node_is_null(n))
        return;
    if (n->type != RB_NODE_SEQ || n->n == 0 || n->n > RB_OUTREACH_MAX_CHANNELS) {
        rb_errors_at(e, n, "key \"channels\": expected a list of 1 to %d channels, e.g. [call, "
                           "sms]", RB_OUTREACH_MAX_CHANNELS);
        return;
    }
    p->n_channels = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct rb_node *c = n->items[i];
        if (c->type == RB_NODE_SCALAR && strcmp(c->scalar, "call") == 0)
            p->channels[p->n_channels++] = RB_OUTREACH_CALL;
        else if (c->type == RB_NODE_SCALAR && strcmp(c->scalar, "sms") == 0)
            p->channels[p->n_channels++] = RB_OUTREACH_SMS;
        else
            rb_errors_at(e, c, "key \"channels\": no channel \"%s\" (known: call, sms)",
                         c->type == RB_NODE_SCALAR ? c->scalar : rb_node_kind(c));
    }
}

/* Parses map over p (preset: the defaults). */
static void parse_policy(const struct rb_node *map, const char *what,
                         struct rb_outreach_policy *p, struct rb_errors *e)
{
    if (map && !rb_node_is_null(map) && map->type != RB_NODE_MAP) {
        rb_errors_at(e, map, "%s: expected a map of settings (delay, channels, ...)", what);
        return;
    }
    struct policy_in in = {p->delay,    p->call_wait, p->sms_wait, p->agent_sample,
                           p->agent_wait, p->attempts, p->per_citizen_days, NULL, NULL};
    size_t nerr = e->n;
    rb_conf_parse(map, what, policy_fields, RB_ARRAY_LEN(policy_fields), policy_extra, &in, e);
    const struct rb_node *at = map ? map : NULL;
    if (in.agent_sample < 0 || in.agent_sample > 1)
        rb_errors_at(e, rb_node_get(at, "agent_sample"), "key \"agent_sample\": expected a "
                     "share from 0 to 1, got %g", in.agent_sample);
    if (in.delay < 0 || in.call_wait < 0 || in.sms_wait < 0 || in.agent_wait < 0)
        rb_errors_add(e, "%s: delays cannot be negative", what);
    if (in.quiet_hours && rb_quiet_parse(in.quiet_hours, &p->quiet) != RB_OK)
        rb_errors_at(e, rb_node_get(at, "quiet_hours"), "key \"quiet_hours\": expected "
                     "\"HH:MM-HH:MM\", got \"%s\"", in.quiet_hours);
    if (in.survey && (strlen(in.survey) >= sizeof(p->survey) || !in.survey[0]))
        rb_errors_at(e, rb_node_get(at, "survey"), "key \"survey\": expected the name of a "
                     "survey of lua/surveys.lua");
    else if (in.survey)
        memcpy(p->survey, in.survey, strlen(in.survey) + 1);
    parse_channels(rb_node_get(at, "channels"), p, e);
    if (e->n == nerr) {
        p->delay = in.delay;
        p->call_wait = in.call_wait;
        p->sms_wait = in.sms_wait;
        p->agent_sample = in.agent_sample;
        p->agent_wait = in.agent_wait;
        p->attempts = in.attempts;
        p->per_citizen_days = in.per_citizen_days;
    }
    rb_conf_free(policy_fields, RB_ARRAY_LEN(policy_fields), &in);
}

static void set_builtin(struct rb_outreach_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->delay = 2 * 3600;
    p->call_wait = 2 * 3600; /* past the IVR policy's dials: its result ends the call step */
    p->sms_wait = 24 * 3600;
    p->channels[0] = RB_OUTREACH_CALL;
    p->channels[1] = RB_OUTREACH_SMS;
    p->n_channels = 2;
    p->attempts = 1;
    p->agent_sample = 0;
    p->agent_wait = 3 * 86400;
    p->per_citizen_days = 30;
    rb_quiet_parse("21:00-08:00", &p->quiet);
    snprintf(p->survey, sizeof(p->survey), "default");
}

/* The services block: each key a service with feedback: true. */
static void parse_services(struct rb_outreach *o, const struct rb_node *svc,
                           const struct rb_config *cfg, struct rb_errors *e)
{
    if (svc && !rb_node_is_null(svc) && svc->type != RB_NODE_MAP) {
        rb_errors_at(e, svc, "key \"services\": expected a map of service ids to settings");
        return;
    }
    for (size_t i = 0; svc && svc->type == RB_NODE_MAP && i < svc->n; i++) {
        const struct rb_service *s = rb_config_service(cfg, svc->keys[i]->scalar);
        if (!s)
            rb_errors_at(e, svc->keys[i], "key \"services\": no service \"%s\"",
                         svc->keys[i]->scalar);
        else if (!s->feedback)
            rb_errors_at(e, svc->keys[i], "key \"services\": service \"%s\" does not ask for "
                         "feedback (its file %s has no \"feedback: true\")", s->id, s->file);
    }
    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct rb_service *s = &cfg->services[i];
        if (!s->feedback)
            continue;
        struct rb_outreach_policy *p = &o->policies[o->n++];
        *p = o->defaults;
        p->service = s->id;
        char what[96];
        snprintf(what, sizeof(what), "services.%s", s->id);
        parse_policy(rb_node_get(svc, s->id), what, p, e);
    }
}

struct rb_outreach *rb_outreach_load(const char *path, const struct rb_config *cfg,
                                     struct rb_errors *errs)
{
    size_t nerr = errs->n;
    struct rb_outreach *o = rb_calloc(1, sizeof(*o));
    o->policies = rb_calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*o->policies));
    set_builtin(&o->defaults);
    struct rb_doc *doc = path ? rb_doc_load(path, errs) : NULL;
    const struct rb_node *root = doc ? doc->root : NULL;
    if (root && root->type != RB_NODE_MAP) {
        rb_errors_at(errs, root, "expected a map with timezone, defaults and services");
        root = NULL;
    }
    static const char *const top[] = {"timezone", "defaults", "services"};
    for (size_t i = 0; root && i < root->n; i++) {
        size_t k = 0;
        while (k < RB_ARRAY_LEN(top) && strcmp(root->keys[i]->scalar, top[k]) != 0)
            k++;
        if (k == RB_ARRAY_LEN(top))
            rb_errors_at(errs, root->keys[i], "unknown key \"%s\" (known: timezone, defaults, "
                         "services)", root->keys[i]->scalar);
    }
    parse_policy(rb_node_get(root, "defaults"), "defaults", &o->defaults, errs);
    parse_services(o, rb_node_get(root, "services"), cfg, errs);
    const struct rb_node *tzn = rb_node_get(root, "timezone");
    const char *zone = tzn && tzn->type == RB_NODE_SCALAR ? tzn->scalar : "Asia/Karachi";
    char *why = NULL;
    o->tz = rb_tz_load(zone, &why);
    if (!o->tz) {
        if (tzn)
            rb_errors_at(errs, tzn, "key \"timezone\": %s", why ? why : "unknown zone");
        else
            rb_errors_add(errs, "outreach: time zone %s: %s", zone, why ? why : "unknown");
        free(why);
    }
    rb_doc_free(doc);
    if (errs->n > nerr) {
        rb_outreach_free(o);
        return NULL;
    }
    return o;
}

void rb_outreach_free(struct rb_outreach *o)
{
    if (!o)
        return;
    rb_tz_free(o->tz);
    free(o->policies);
    free(o);
}

const struct rb_outreach_policy *rb_outreach_policy(const struct rb_outreach *o,
                                                    const char *service)
{
    for (size_t i = 0; o && service && i < o->n; i++)
        if (strcmp(o->policies[i].service, service) == 0)
            return &o->policies[i];
    return NULL;
}

double rb_outreach_quiet_wait(const struct rb_outreach *o, const struct rb_outreach_policy *p)
{
    if (!o || !p || !o->tz || p->quiet.start == p->quiet.end)
        return 0;
    return (double)rb_quiet_wait(&p->quiet, o->tz, (int64_t)time(NULL));
}

void rb_outreach_sql_arrays(const struct rb_outreach *o, char **services, char **delays,
                            char **samples)
{
    struct rb_sbuf a = {0}, b = {0}, c = {0};
    rb_sbuf_puts(&a, "{");
    rb_sbuf_puts(&b, "{");
    rb_sbuf_puts(&c, "{");
    for (size_t i = 0; o && i < o->n; i++) {
        char d[32], s[32];
        snprintf(d, sizeof(d), "%.3f", o->policies[i].delay);
        snprintf(s, sizeof(s), "%.6f", o->policies[i].agent_sample);
        rb_sbuf_elem(&a, o->policies[i].service);
        rb_sbuf_elem(&b, d);
        rb_sbuf_elem(&c, s);
    }
    rb_sbuf_puts(&a, "}");
    rb_sbuf_puts(&b, "}");
    rb_sbuf_puts(&c, "}");
    *services = a.p;
    *delays = b.p;
    *samples = c.p;
}

void rb_outreach_check_surveys(const struct rb_outreach *o, struct rb_script *rules,
                               struct rb_errors *errs)
{
    if (!o || o->n == 0)
        return;
    if (!rb_script_has_module(rules, "surveys")) {
        rb_errors_add(errs, "outreach: services ask for feedback but there is no "
                            "lua/surveys.lua");
        return;
    }
    for (size_t i = 0; i < o->n; i++) {
        const char *name = o->policies[i].survey;
        size_t k = 0;
        while (k < i && strcmp(o->policies[k].survey, name) != 0)
            k++;
        if (k < i)
            continue; /* checked */
        json_t *req = json_pack("{s:s, s:s}", "survey", name, "language", "en");
        char err[512];
        json_t *r = rb_script_call(rules, "surveys", "questions", req, err, sizeof(err));
        if (!r)
            rb_errors_add(errs, "outreach: service %s: survey \"%s\": %s",
                          o->policies[i].service, name, err);
        json_decref(r);
        json_decref(req);
    }
}

/* "YYYY-MM-DD HH:MM[:SS]" (or with T), optionally followed by Z or +HH:MM / -HH:MM; without a
 * zone, Pakistan time (+05:00). Writes the form PostgreSQL reads into out. 0 or -1. */
int rb_outreach_parse_time(const char *s, char out[40])
{
    static const char pat[] = "dddd-dd-dd?dd:dd";
    size_t n = strlen(s);
    if (n < 16 || n > 30)
        return -1;
    for (size_t i = 0; i < 16; i++) {
        char c = s[i];
        if (pat[i] == 'd' ? (c < '0' || c > '9') : pat[i] == '?' ? (c != ' ' && c != 'T')
                                                                   : c != pat[i])
            return -1;
    }
    int mo = atoi(s + 5), d = atoi(s + 8), h = atoi(s + 11), mi = atoi(s + 14), y = atoi(s);
    if (y < 2000 || y > 2100 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59)
        return -1;
    const char *rest = s + 16;
    char sec[4] = ":00";
    if (rest[0] == ':') {
        if (rest[1] < '0' || rest[1] > '5' || rest[2] < '0' || rest[2] > '9')
            return -1;
        memcpy(sec, rest, 3);
        rest += 3;
    }
    const char *zone = "+05:00";
    if (strcmp(rest, "Z") == 0)
        zone = "+00:00";
    else if (rest[0] && !((rest[0] == '+' || rest[0] == '-') && strlen(rest) == 6 &&
                          rest[3] == ':' && strspn(rest + 1, "0123456789:") == 5))
        return -1;
    else if (rest[0])
        zone = rest;
    snprintf(out, 40, "%.10s %.5s%s%s", s, s + 11, sec, zone);
    return 0;
}

const char *rb_outreach_check_text(const char *v, size_t max, int required)
{
    size_t len = v ? strlen(v) : 0;
    if (required && len == 0)
        return "is empty";
    if (rb_text_chars(v ? v : "", len) > max)
        return "is too long";
    if (len && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@'))
        return "starts like a spreadsheet formula (=, +, -, @); refused";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20)
            return "has a control character";
    return NULL;
}
