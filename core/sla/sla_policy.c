/* SLA policies, overrides and the escalation ladder: loading and picking. See sla.h. */
#include "sla/sla_policy.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "config/calendar.h"

/* rel resolved against the directory of file. Returns a new string. */
static char *dir_join(const char *file, const char *rel)
{
    char *copy = rb_strdup(file);
    char *out = rb_path_join(dirname(copy), rel);
    free(copy);
    return out;
}

/* ---- policies --------------------------------------------------------------------------- */

struct policy_in {
    double acknowledge, resolve;
};

static void parse_policy(struct rb_sla *sla, const struct rb_node *key, const struct rb_node *map,
                         struct rb_errors *e)
{
    static const struct rb_conf_field fields[] = {
        {"acknowledge", RB_CONF_DURATION, offsetof(struct policy_in, acknowledge),
         RB_CONF_REQUIRED, 0, 0},
        {"resolve", RB_CONF_DURATION, offsetof(struct policy_in, resolve), RB_CONF_REQUIRED, 0,
         0},
    };
    static const char *const extra[] = {"warn_at", NULL};
    if (map->type != RB_NODE_MAP) {
        rb_errors_at(e, map, "key \"%s\": a policy is a map (acknowledge, resolve, warn_at), "
                             "got %s", key->scalar, rb_node_kind(map));
        return;
    }
    struct policy_in in = {0, 0};
    size_t before = e->n;
    char *what = rb_sprintf("policy \"%s\"", key->scalar);
    rb_conf_parse(map, what, fields, RB_ARRAY_LEN(fields), extra, &in, e);
    free(what);
    if (e->n != before)
        return;
    if (in.acknowledge <= 0 || in.resolve <= 0)
        rb_errors_at(e, rb_node_get(map, in.acknowledge <= 0 ? "acknowledge" : "resolve"),
                     "key \"%s\": must be more than 0", in.acknowledge <= 0 ? "acknowledge"
                                                                           : "resolve");
    if (in.acknowledge > in.resolve)
        rb_errors_at(e, rb_node_get(map, "acknowledge"),
                     "key \"acknowledge\": the time to acknowledge is longer than the time to "
                     "resolve");
    struct rb_sla_policy p = {.acknowledge = in.acknowledge, .resolve = in.resolve};
    const struct rb_node *w = rb_node_get(map, "warn_at");
    if (w && w->type != RB_NODE_SEQ) {
        rb_errors_at(e, w, "key \"warn_at\": expected a list of fractions such as [0.5, 0.75]");
    } else if (w) {
        if (w->n > RB_SLA_MAX_WARN)
            rb_errors_at(e, w, "key \"warn_at\": at most %d warnings", RB_SLA_MAX_WARN);
        for (size_t i = 0; i < w->n && i < RB_SLA_MAX_WARN; i++) {
            double f;
            if (rb_node_double(w->items[i], "warn_at", e, &f) != RB_OK)
                continue;
            if (!(f > 0 && f < 1) || (i && f <= p.warn_at[i - 1]))
                rb_errors_at(e, w->items[i], "key \"warn_at\": each fraction must be between 0 "
                                             "and 1 and larger than the one before");
            p.warn_at[p.n_warn++] = f;
        }
    }
    if (e->n != before)
        return;
    p.name = rb_strdup(key->scalar);
    sla->policies = rb_realloc(sla->policies, (sla->n_policies + 1) * sizeof(p));
    sla->policies[sla->n_policies++] = p;
}

static const struct rb_sla_policy *policy_named(const struct rb_sla *sla, const char *name)
{
    for (size_t i = 0; name && i < sla->n_policies; i++)
        if (strcmp(sla->policies[i].name, name) == 0)
            return &sla->policies[i];
    return NULL;
}

/* ---- overrides -------------------------------------------------------------------------- */

struct override_in {
    char *department, *service, *kind, *policy;
};

static void parse_override(struct rb_sla *sla, const struct rb_node *map,
                           const struct rb_config *cfg, struct rb_errors *e)
{
    static const struct rb_conf_field fields[] = {
        {"department", RB_CONF_STRING, offsetof(struct override_in, department), 0, 0, 0},
        {"service", RB_CONF_STRING, offsetof(struct override_in, service), 0, 0, 0},
        {"kind", RB_CONF_STRING, offsetof(struct override_in, kind), 0, 0, 0},
        {"policy", RB_CONF_STRING, offsetof(struct override_in, policy), RB_CONF_REQUIRED, 0, 0},
    };
    if (map->type != RB_NODE_MAP) {
        rb_errors_at(e, map, "key \"overrides\": each entry is a map such as "
                             "{service: fir_registration, policy: urgent}, got %s",
                     rb_node_kind(map));
        return;
    }
    struct override_in in = {0};
    size_t before = e->n;
    rb_conf_parse(map, "an overrides entry", fields, RB_ARRAY_LEN(fields), NULL, &in, e);
    if (in.department && cfg && !rb_config_department(cfg, in.department))
        rb_errors_at(e, rb_node_get(map, "department"), "key \"department\": no department \"%s\"",
                     in.department);
    if (in.service && cfg && !rb_config_service(cfg, in.service))
        rb_errors_at(e, rb_node_get(map, "service"), "key \"service\": no service \"%s\"",
                     in.service);
    if (in.kind && strcmp(in.kind, "complaint") && strcmp(in.kind, "feedback") &&
        strcmp(in.kind, "information"))
        rb_errors_at(e, rb_node_get(map, "kind"),
                     "key \"kind\": expected complaint, feedback or information");
    const struct rb_sla_policy *p = policy_named(sla, in.policy);
    if (in.policy && !p)
        rb_errors_at(e, rb_node_get(map, "policy"), "key \"policy\": no policy \"%s\" in "
                                                    "policies", in.policy);
    if (!in.department && !in.service && !in.kind && e->n == before)
        rb_errors_at(e, map, "an overrides entry must name a department, a service or a kind");
    free(in.policy);
    if (e->n != before) {
        free(in.department);
        free(in.service);
        free(in.kind);
        return;
    }
    sla->overrides = rb_realloc(sla->overrides, (sla->n_overrides + 1) * sizeof(*sla->overrides));
    sla->overrides[sla->n_overrides++] =
        (struct rb_sla_override){in.department, in.service, in.kind, p};
}

/* ---- escalation ------------------------------------------------------------------------- */

static const char *const roles[] = {"supervisor", "head", "oversight", "duty_officer", NULL};

static int one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* A channel's name; which channels exist is what the plugins register (--check). */
static int channel_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32 || s[0] < 'a' || s[0] > 'z')
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* The target of notify, reassign or flag (v), checked against what the verb can act on. */
static int parse_target(const char *verb, const struct rb_node *v, const char *via,
                        struct rb_errors *e)
{
    int notify = strcmp(verb, "notify") == 0;
    const char *only = strcmp(verb, "reassign") == 0 ? "supervisor"
                       : strcmp(verb, "flag") == 0   ? "oversight"
                                                     : NULL;
    if (v->type != RB_NODE_SCALAR || (notify && !one_of(v->scalar, roles)) ||
        (only && strcmp(v->scalar, only) != 0)) {
        if (only)
            rb_errors_at(e, v, "key \"%s\": expected %s", verb, only);
        else
            rb_errors_at(e, v, "key \"notify\": expected supervisor, head, oversight or "
                               "duty_officer");
        return RB_EINVAL;
    }
    if (notify && strcmp(via, "inbox") == 0 &&
        (strcmp(v->scalar, "head") == 0 || strcmp(v->scalar, "duty_officer") == 0)) {
        rb_errors_at(e, v, "key \"notify\": the %s has no staff inbox (inbox reaches staff "
                           "accounts: supervisor, oversight); notify the %s via sms or email",
                     strcmp(v->scalar, "head") == 0 ? "department head" : "duty officer",
                     strcmp(v->scalar, "head") == 0 ? "head" : "duty officer");
        return RB_EINVAL;
    }
    return RB_OK;
}

static int parse_action(const struct rb_node *map, struct rb_sla_action *a, struct rb_errors *e)
{
    memset(a, 0, sizeof(*a));
    if (map->type != RB_NODE_MAP || map->n == 0) {
        rb_errors_at(e, map, "an action is a map such as {notify: supervisor, via: sms}, "
                             "{reassign: supervisor}, {raise_priority: 1} or {flag: oversight}");
        return RB_EINVAL;
    }
    const char *verb = map->keys[0]->scalar;
    const struct rb_node *v = map->items[0];
    size_t allowed = 1;
    const char *via_s = "";
    if (strcmp(verb, "notify") == 0) {
        a->type = RB_SLA_NOTIFY;
        const struct rb_node *via = rb_node_get(map, "via");
        allowed = 2;
        if (!via || via->type != RB_NODE_SCALAR ||
            (strcmp(via->scalar, "inbox") != 0 && !channel_name(via->scalar))) {
            rb_errors_at(e, via ? via : map, "key \"via\": notify needs via: inbox (the staff "
                                             "inbox) or a channel such as sms or email (a-z, "
                                             "0-9, _)");
            return RB_EINVAL;
        }
        via_s = via->scalar;
        a->via_node = via;
    } else if (strcmp(verb, "reassign") == 0) {
        a->type = RB_SLA_REASSIGN;
    } else if (strcmp(verb, "flag") == 0) {
        a->type = RB_SLA_FLAG;
    } else if (strcmp(verb, "raise_priority") == 0) {
        long long n;
        a->type = RB_SLA_RAISE;
        if (rb_node_int(v, "raise_priority", e, &n) != RB_OK)
            return RB_EINVAL;
        if (n < 1 || n > 4) {
            rb_errors_at(e, v, "key \"raise_priority\": expected 1 to 4 steps");
            return RB_EINVAL;
        }
        a->amount = (int)n;
        return map->n == 1 ? RB_OK
                           : (rb_errors_at(e, map->keys[1], "unknown key \"%s\" in an action",
                                           map->keys[1]->scalar),
                              RB_EINVAL);
    } else {
        rb_errors_at(e, map->keys[0], "unknown action \"%s\" (notify, reassign, raise_priority, "
                                      "flag)", verb);
        return RB_EINVAL;
    }
    if (parse_target(verb, v, via_s, e) != RB_OK)
        return RB_EINVAL;
    if (map->n > allowed) {
        rb_errors_at(e, map->keys[allowed], "unknown key \"%s\" in a %s action",
                     map->keys[allowed]->scalar, verb);
        return RB_EINVAL;
    }
    a->target = rb_strdup(v->scalar);
    a->via = via_s[0] ? rb_strdup(via_s) : NULL;
    return RB_OK;
}

static void parse_level(struct rb_sla *sla, const struct rb_node *map, struct rb_errors *e)
{
    if (map->type != RB_NODE_MAP) {
        rb_errors_at(e, map, "key \"escalation\": each level is a map with after and actions");
        return;
    }
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->scalar, "after") && strcmp(map->keys[i]->scalar, "actions"))
            rb_errors_at(e, map->keys[i], "unknown key \"%s\" in an escalation level (after, "
                                          "actions)", map->keys[i]->scalar);
    const struct rb_node *after = rb_node_get(map, "after");
    const struct rb_node *actions = rb_node_get(map, "actions");
    struct rb_sla_level lv = {0};
    if (!after)
        rb_errors_at(e, map, "missing required key \"after\" in an escalation level");
    else if (rb_node_duration(after, "after", e, &lv.after) == RB_OK && sla->n_levels &&
             lv.after <= sla->levels[sla->n_levels - 1].after)
        rb_errors_at(e, after, "key \"after\": each level must come later than the one before");
    if (!actions || actions->type != RB_NODE_SEQ || actions->n == 0) {
        rb_errors_at(e, actions ? actions : map, "key \"actions\": a level needs at least one "
                                                 "action");
        return;
    }
    lv.actions = rb_calloc(actions->n, sizeof(*lv.actions));
    for (size_t i = 0; i < actions->n; i++)
        if (parse_action(actions->items[i], &lv.actions[lv.n], e) == RB_OK)
            lv.n++;
    sla->levels = rb_realloc(sla->levels, (sla->n_levels + 1) * sizeof(lv));
    sla->levels[sla->n_levels++] = lv;
}

/* ---- closing the loops and the staff's language ------------------------------------------ */

static void parse_close(struct rb_sla *sla, const struct rb_node *root, struct rb_errors *e)
{
    static const struct rb_conf_field fields[] = {
        {"no_reply", RB_CONF_DURATION, offsetof(struct rb_sla_close, no_reply), 0, 0, 0},
        {"no_rating", RB_CONF_DURATION, offsetof(struct rb_sla_close, no_rating), 0, 0, 0},
        {"reopen_window", RB_CONF_DURATION, offsetof(struct rb_sla_close, reopen_window), 0, 0,
         0},
    };
    const struct rb_node *c = rb_node_get(root, "close");
    if (c) {
        size_t before = e->n;
        rb_conf_parse(c, "key \"close\"", fields, RB_ARRAY_LEN(fields), NULL, &sla->close, e);
        for (size_t i = 0; e->n == before && i < RB_ARRAY_LEN(fields); i++) {
            const double *d = (const double *)((const char *)&sla->close + fields[i].offset);
            if (rb_node_get(c, fields[i].key) && *d <= 0)
                rb_errors_at(e, rb_node_get(c, fields[i].key),
                             "key \"%s\": must be more than 0 (leave the key out to turn it "
                             "off)", fields[i].key);
        }
    }
    const struct rb_node *lang = rb_node_get(root, "notify_language");
    sla->notify_language = "ur";
    if (lang && (lang->type != RB_NODE_SCALAR ||
                 (strcmp(lang->scalar, "ur") && strcmp(lang->scalar, "en"))))
        rb_errors_at(e, lang, "key \"notify_language\": expected ur or en");
    else if (lang)
        sla->notify_language = strcmp(lang->scalar, "en") == 0 ? "en" : "ur";
}

/* ---- the file --------------------------------------------------------------------------- */

struct rb_sla *rb_sla_load(const char *path, const struct rb_config *cfg, struct rb_errors *e)
{
    size_t before = e->n;
    struct rb_doc *doc = rb_doc_load(path, e);
    if (!doc)
        return NULL;
    struct rb_sla *sla = rb_calloc(1, sizeof(*sla));
    sla->doc = doc;
    const struct rb_node *root = doc->root;
    if (!root || root->type != RB_NODE_MAP) {
        rb_errors_add(e, "%s:1:1: expected a map with calendar, policies and escalation", path);
        rb_sla_free(sla);
        return NULL;
    }
    for (size_t i = 0; i < root->n; i++) {
        const char *k = root->keys[i]->scalar;
        if (strcmp(k, "calendar") && strcmp(k, "policies") && strcmp(k, "overrides") &&
            strcmp(k, "escalation") && strcmp(k, "close") && strcmp(k, "notify_language"))
            rb_errors_at(e, root->keys[i], "unknown key \"%s\" (calendar, policies, overrides, "
                                           "escalation, close, notify_language)", k);
    }
    const struct rb_node *cal = rb_node_get(root, "calendar");
    if (!cal || cal->type != RB_NODE_SCALAR) {
        rb_errors_at(e, cal ? cal : root, "key \"calendar\": the business calendar file is "
                                          "required (e.g. calendar: calendars/punjab.yaml)");
    } else {
        char *cpath = dir_join(path, cal->scalar);
        sla->cal = rb_cal_load_from(cpath, cal, "calendar", e);
        free(cpath);
    }
    const struct rb_node *pol = rb_node_get(root, "policies");
    if (!pol || pol->type != RB_NODE_MAP)
        rb_errors_at(e, pol ? pol : root, "key \"policies\": a map of named policies is required");
    else
        for (size_t i = 0; i < pol->n; i++)
            parse_policy(sla, pol->keys[i], pol->items[i], e);
    if (pol && pol->type == RB_NODE_MAP && !policy_named(sla, "default") && e->n == before)
        rb_errors_at(e, pol, "key \"policies\": a policy named \"default\" is required");
    const struct rb_node *ov = rb_node_get(root, "overrides");
    if (ov && ov->type != RB_NODE_SEQ)
        rb_errors_at(e, ov, "key \"overrides\": expected a list");
    else
        for (size_t i = 0; ov && i < ov->n; i++)
            parse_override(sla, ov->items[i], cfg, e);
    const struct rb_node *esc = rb_node_get(root, "escalation");
    if (!esc || esc->type != RB_NODE_SEQ || esc->n == 0)
        rb_errors_at(e, esc ? esc : root, "key \"escalation\": a list of levels is required");
    else
        for (size_t i = 0; i < esc->n; i++)
            parse_level(sla, esc->items[i], e);
    parse_close(sla, root, e);
    if (e->n != before) {
        rb_sla_free(sla);
        return NULL;
    }
    return sla;
}

void rb_sla_free(struct rb_sla *sla)
{
    if (!sla)
        return;
    rb_cal_free(sla->cal);
    for (size_t i = 0; i < sla->n_policies; i++)
        free(sla->policies[i].name);
    free(sla->policies);
    for (size_t i = 0; i < sla->n_overrides; i++) {
        free(sla->overrides[i].department);
        free(sla->overrides[i].service);
        free(sla->overrides[i].kind);
    }
    free(sla->overrides);
    for (size_t i = 0; i < sla->n_levels; i++) {
        for (size_t j = 0; j < sla->levels[i].n; j++) {
            free(sla->levels[i].actions[j].target);
            free(sla->levels[i].actions[j].via);
        }
        free(sla->levels[i].actions);
    }
    free(sla->levels);
    rb_doc_free(sla->doc);
    free(sla);
}

static int matches(const char *want, const char *have)
{
    return !want || (have && strcmp(want, have) == 0);
}

const struct rb_sla_policy *rb_sla_pick(const struct rb_sla *sla, const char *department,
                                        const char *service, const char *kind,
                                        const char *rules_policy)
{
    for (size_t i = 0; i < sla->n_overrides; i++) {
        const struct rb_sla_override *o = &sla->overrides[i];
        if (matches(o->department, department) && matches(o->service, service) &&
            matches(o->kind, kind))
            return o->policy;
    }
    const struct rb_sla_policy *p = policy_named(sla, rules_policy);
    return p ? p : policy_named(sla, "default");
}

void rb_sla_deadlines(const struct rb_sla *sla, const struct rb_sla_policy *p, int64_t t,
                      int64_t *ack_due, int64_t *resolve_due)
{
    *ack_due = rb_cal_add(sla->cal, t, (int64_t)p->acknowledge);
    *resolve_due = rb_cal_add(sla->cal, t, (int64_t)p->resolve);
}
