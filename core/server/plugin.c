/* Loading plugins and the host API table they are handed.
 *
 * A plugin is checked before anything of it runs: the entry symbol must exist, and the
 * descriptor it returns must carry our magic, our ABI number and our struct size. Each
 * refusal is one sentence naming the file and both versions. */
#include "server/plugin.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "base/log.h"
#include "base/phone.h"
#include "base/tracking.h"
#include "cases/case_act.h"
#include "cases/case_comment.h"
#include "cases/case_rating.h"
#include "cases/case_read.h"
#include "cases/citizen_auth.h"
#include "db/db.h"
#include "intake/intake.h"
#include "jobs/jobs.h"
#include "lua/script.h"
#include "lua/templates.h"
#include "messages/message.h"
#include "messages/sender.h"
#include "net/http.h"
#include "net/http_client.h"
#include "outreach/outreach.h"
#include "server/server.h"
#include "sla/sla_policy.h"

/* 1 when the struct *p (which starts with its size) holds member. */
#define RB_HAS_FIELD(p, type, member)                                                         \
    ((p)->size >= offsetof(struct type, member) + sizeof((p)->member))

struct rb_plugin_ctx {
    const struct rb_plugin *desc; /* borrowed from the shared object */
    void *handle;                 /* owned: dlopen handle */
    char *path;                   /* owned */
    char *conf_name;              /* owned: name in rabta.yaml */
    const struct rb_node *config; /* borrowed from the current config; NULL for none */
    struct rb_server *srv;        /* borrowed */
    void *data;                   /* the plugin's own */
    char *services_json;          /* owned: last answer of host_services_json */
    char *districts_json;         /* owned: last answer of host_districts_json */
    struct rb_http_client *http_client; /* owned: made on the first http_fetch */
    rb_plugin_deliver_fn deliver_fn;     /* department plugins: see department_deliver */
    void *deliver_arg;
    int (*wants_fn)(struct rb_plugin_ctx *ctx, const char *department, void *arg);
    void *wants_arg;
    int inited, started;
    struct rb_errors *check; /* borrowed: set while rabtad --check runs init() or check() */
};

struct rb_plugins {
    struct rb_plugin_ctx *v; /* owned */
    size_t n;
};

/* ---- loading ------------------------------------------------------------------------- */

static const char *kind_name(enum rb_plugin_kind k)
{
    switch (k) {
    case RB_PLUGIN_CHANNEL:
        return "channel";
    case RB_PLUGIN_DEPARTMENT:
        return "department";
    }
    return "unknown";
}

static int valid_name(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return 0;
    return n >= 2 && n <= 40;
}

const struct rb_plugin *rb_plugin_open(const char *path, void **handle, struct rb_errors *errs)
{
    *handle = NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        rb_errors_add(errs, "plugin %s cannot be loaded: %s", path, dlerror());
        return NULL;
    }
    dlerror();
    void *sym = dlsym(h, RB_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        rb_errors_add(errs,
                      "plugin %s has no %s symbol: it is not a Rabta plugin, or it was built "
                      "without RB_PLUGIN_DEFINE",
                      path, RB_PLUGIN_ENTRY_SYMBOL);
        dlclose(h);
        return NULL;
    }
    rb_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof(entry)); /* object pointer to function pointer, portably */
    const struct rb_plugin *d = entry();
    const char *why = NULL;
    char buf[512];
    if (!d) {
        why = "its entry point returned no descriptor";
    } else if (d->magic != RB_PLUGIN_MAGIC) {
        snprintf(buf, sizeof(buf),
                 "its descriptor does not start with the Rabta plugin magic (0x%08x, expected "
                 "0x%08x): it is not a Rabta plugin",
                 d->magic, RB_PLUGIN_MAGIC);
        why = buf;
    } else if (d->abi != RB_PLUGIN_ABI) {
        snprintf(buf, sizeof(buf),
                 "it was built for plugin ABI %u but this rabtad speaks ABI %u: rebuild the "
                 "plugin against this version of rabta",
                 d->abi, RB_PLUGIN_ABI);
        why = buf;
    } else if (d->size != sizeof(struct rb_plugin) && d->size != RB_PLUGIN_SIZE_V1) {
        snprintf(buf, sizeof(buf),
                 "its descriptor is %zu bytes but plugin ABI %u defines it as %zu bytes: it was "
                 "built against a different rabta/plugin.h; rebuild it",
                 d->size, RB_PLUGIN_ABI, sizeof(struct rb_plugin));
        why = buf;
    } else if (!valid_name(d->name)) {
        why = "its name is missing or not a lowercase identifier of 2-40 characters "
              "(a-z, 0-9, _)";
    } else if (d->kind != RB_PLUGIN_CHANNEL && d->kind != RB_PLUGIN_DEPARTMENT) {
        why = "its kind is neither channel nor department";
    } else if (!d->init) {
        why = "it has no init function";
    }
    if (why) {
        rb_errors_add(errs, "plugin %s refused: %s", path, why);
        dlclose(h);
        return NULL;
    }
    *handle = h;
    return d;
}

static char *plugin_path(const struct rb_config *cfg, const struct rb_plugin_conf *pc)
{
    if (pc->path)
        return rb_strdup(pc->path);
    const char *dir = cfg->plugin_dir ? cfg->plugin_dir : RB_PLUGIN_DIR;
    return rb_sprintf("%s/%s.so", dir, pc->name);
}

struct rb_plugins *rb_plugins_load(const struct rb_config *cfg, struct rb_errors *errs)
{
    struct rb_plugins *ps = rb_calloc(1, sizeof(*ps));
    size_t before = errs->n;
    ps->v = rb_calloc(cfg->n_plugins ? cfg->n_plugins : 1, sizeof(*ps->v));
    for (size_t i = 0; i < cfg->n_plugins; i++) {
        const struct rb_plugin_conf *pc = &cfg->plugins[i];
        if (!pc->enabled)
            continue;
        char *path = plugin_path(cfg, pc);
        void *h;
        const struct rb_plugin *d = rb_plugin_open(path, &h, errs);
        if (!d) {
            free(path);
            continue;
        }
        const struct rb_plugin_ctx *dup = NULL;
        for (size_t j = 0; j < ps->n; j++)
            if (strcmp(ps->v[j].desc->name, d->name) == 0)
                dup = &ps->v[j];
        if (dup) {
            rb_errors_add(errs,
                          "plugin %s refused: its name \"%s\" is already taken by %s; two plugins "
                          "cannot share a name",
                          path, d->name, dup->path);
        } else if (strcmp(d->name, pc->name) != 0) {
            rb_errors_add(errs,
                          "%s:%d:%d: plugin %s calls itself \"%s\" but rabta.yaml lists it as "
                          "\"%s\"; use the plugin's own name",
                          pc->file, pc->line, pc->col, path, d->name, pc->name);
        } else {
            struct rb_plugin_ctx *c = &ps->v[ps->n++];
            c->desc = d;
            c->handle = h;
            c->path = path;
            c->conf_name = rb_strdup(pc->name);
            c->config = pc->config;
            rb_debug("plugins", "loaded %s plugin %s %s from %s", kind_name(d->kind), d->name,
                     d->version ? d->version : "", path);
            continue;
        }
        dlclose(h);
        free(path);
    }
    /* Departments name the plugin that receives their cases: it must be a department plugin. */
    for (size_t i = 0; errs->n == before && i < cfg->n_departments; i++) {
        const struct rb_department *dep = &cfg->departments[i];
        const struct rb_plugin *p = rb_plugins_get(ps, dep->plugin);
        if (p && p->kind != RB_PLUGIN_DEPARTMENT)
            rb_errors_add(errs,
                          "%s:%d:%d: department \"%s\" uses plugin \"%s\", which is a %s plugin; "
                          "a department needs a department plugin (e.g. staff_inbox or webhook)",
                          dep->file, dep->line, dep->col, dep->id, dep->plugin,
                          kind_name(p->kind));
    }
    if (errs->n != before) {
        rb_plugins_free(ps);
        return NULL;
    }
    return ps;
}

size_t rb_plugins_count(const struct rb_plugins *ps)
{
    return ps ? ps->n : 0;
}

const char *rb_plugins_name(const struct rb_plugins *ps, size_t i)
{
    return ps && i < ps->n ? ps->v[i].desc->name : NULL;
}

const struct rb_plugin *rb_plugins_get(const struct rb_plugins *ps, const char *name)
{
    for (size_t i = 0; ps && name && i < ps->n; i++)
        if (strcmp(ps->v[i].desc->name, name) == 0)
            return ps->v[i].desc;
    return NULL;
}

int rb_plugins_deliver(struct rb_plugins *ps, const char *name, struct rb_job_run *run,
                       const struct rb_job_info *job, const struct rb_delivery *d)
{
    for (size_t i = 0; ps && name && i < ps->n; i++) {
        struct rb_plugin_ctx *c = &ps->v[i];
        if (strcmp(c->desc->name, name) != 0)
            continue;
        if (!c->deliver_fn || !c->inited)
            return RB_ENOTFOUND;
        c->deliver_fn(run, job, d, c->deliver_arg);
        return RB_OK;
    }
    return RB_ENOTFOUND;
}

int rb_plugins_wants_delivery(struct rb_plugins *ps, const char *name, const char *department)
{
    for (size_t i = 0; ps && name && i < ps->n; i++) {
        struct rb_plugin_ctx *c = &ps->v[i];
        if (strcmp(c->desc->name, name) != 0)
            continue;
        if (!c->deliver_fn || !c->inited)
            return 0;
        return c->wants_fn ? c->wants_fn(c, department, c->wants_arg) != 0 : 1;
    }
    return 0;
}

int rb_plugins_init(struct rb_plugins *ps, struct rb_server *srv)
{
    for (size_t i = 0; i < ps->n; i++) {
        struct rb_plugin_ctx *c = &ps->v[i];
        c->srv = srv;
        int rc = c->desc->init(c, rb_host_api_get());
        if (rc != RB_OK) {
            rb_error(c->desc->name, "plugin %s (%s) failed to initialise (code %d)",
                     c->desc->name, c->path, rc);
            return RB_ERR;
        }
        c->inited = 1;
    }
    return RB_OK;
}

/* One plugin at --check: its own check() when it has one, else init() with inert effects. */
static void plugin_check(struct rb_plugin_ctx *c, struct rb_errors *errs)
{
    size_t mine = errs->n;
    int has_check = c->desc->size >= sizeof(struct rb_plugin) && c->desc->check;
    int rc = has_check ? c->desc->check(c, rb_host_api_get())
                       : c->desc->init(c, rb_host_api_get());
    if (rc != RB_OK && errs->n == mine)
        rb_errors_add(errs, "plugin %s (%s) refused its configuration (code %d)", c->desc->name,
                      c->path, rc);
    if (!has_check && rc == RB_OK && c->desc->stop)
        c->desc->stop(c);
}

int rb_plugins_check(struct rb_plugins *ps, struct rb_server *srv, struct rb_errors *errs)
{
    size_t before = errs->n;
    for (size_t i = 0; ps && i < ps->n; i++) {
        struct rb_plugin_ctx *c = &ps->v[i];
        c->srv = srv;
        c->check = errs;
        plugin_check(c, errs);
        c->check = NULL;
        c->srv = NULL;
    }
    return errs->n == before ? RB_OK : RB_EINVAL;
}

int rb_plugins_start(struct rb_plugins *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        struct rb_plugin_ctx *c = &ps->v[i];
        if (c->desc->start && c->desc->start(c) != RB_OK) {
            rb_error(c->desc->name, "plugin %s failed to start", c->desc->name);
            return RB_ERR;
        }
        c->started = 1;
    }
    return RB_OK;
}

void rb_plugins_reload(struct rb_plugins *ps, const struct rb_config *cfg)
{
    for (size_t i = 0; ps && i < ps->n; i++) {
        struct rb_plugin_ctx *c = &ps->v[i];
        const struct rb_plugin_conf *pc = rb_config_plugin(cfg, c->conf_name);
        c->config = pc ? pc->config : NULL;
        if (c->inited && c->desc->reload && c->desc->reload(c) != RB_OK)
            rb_warn(c->desc->name, "plugin %s could not apply the reloaded configuration; it "
                    "keeps its previous settings", c->desc->name);
    }
}

void rb_plugins_stop(struct rb_plugins *ps)
{
    /* Reverse order of start, like destructors. */
    for (size_t i = ps ? ps->n : 0; i-- > 0;) {
        struct rb_plugin_ctx *c = &ps->v[i];
        if (c->inited && c->desc->stop)
            c->desc->stop(c);
        c->inited = c->started = 0;
    }
}

void rb_plugins_free(struct rb_plugins *ps)
{
    if (!ps)
        return;
    for (size_t i = 0; i < ps->n; i++) {
        /* Under the sanitizers keep the objects mapped so leak reports can symbolise them. */
#if !defined(__SANITIZE_ADDRESS__)
        dlclose(ps->v[i].handle);
#endif
        free(ps->v[i].path);
        free(ps->v[i].conf_name);
        free(ps->v[i].services_json);
        free(ps->v[i].districts_json);
        rb_http_client_free(ps->v[i].http_client);
    }
    free(ps->v);
    free(ps);
}

/* ---- the host API ---------------------------------------------------------------------- */

static void host_log(struct rb_plugin_ctx *ctx, enum rb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void host_log(struct rb_plugin_ctx *ctx, enum rb_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ctx->check && level >= RB_LOG_ERROR) { /* --check: one of its errors */
        char msg[1024];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        rb_errors_add(ctx->check, "plugin %s: %s", ctx->desc->name, msg);
    } else if ((int)level >= rb_log_min_level) {
        rb_log_vwrite(level, ctx->desc->name, "plugin", 0, fmt, ap);
    }
    va_end(ap);
}

static const struct rb_department *own_department(struct rb_plugin_ctx *ctx, const char *id);

/* The errors of a configuration block: into --check's list while it runs init(), else logged. */
static void conf_report(struct rb_plugin_ctx *ctx, struct rb_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        if (ctx->check)
            rb_errors_add(ctx->check, "%s", errs->msgs[i]);
        else
            rb_error(ctx->desc->name, "%s", errs->msgs[i]);
    }
}

/* The block a plugin parses: its own (department NULL) or that department's "config:" (an
 * absent one is an empty map placed at the department's file). Sets *what (a new string;
 * caller frees) and *empty. NULL map with RB_ENOTFOUND when no such department uses it. */
static int conf_block(struct rb_plugin_ctx *ctx, const char *department, struct rb_node *empty,
                      const struct rb_node **map, char **what)
{
    static const struct rb_node none = {.type = RB_NODE_MAP, .file = "rabta.yaml"};
    if (!department) {
        *map = ctx->config ? ctx->config : &none;
        *what = rb_sprintf("plugin %s", ctx->desc->name);
        return RB_OK;
    }
    const struct rb_department *d = own_department(ctx, department);
    if (!d)
        return RB_ENOTFOUND;
    *empty = (struct rb_node){.type = RB_NODE_MAP, .file = d->file, .line = d->line,
                              .col = d->col};
    *map = d->plugin_config ? d->plugin_config : empty;
    *what = rb_sprintf("department %s (plugin %s)", d->id, ctx->desc->name);
    return RB_OK;
}

/* conf_parse, department_conf_parse and conf_parse_v2: a v1 table is field_size 0. */
static int conf_parse_any(struct rb_plugin_ctx *ctx, const char *department, const void *fields,
                          size_t nfields, size_t field_size, void *out)
{
    struct rb_node empty;
    const struct rb_node *map;
    char *what;
    if (conf_block(ctx, department, &empty, &map, &what) != RB_OK)
        return RB_ENOTFOUND;
    struct rb_errors errs;
    rb_errors_init(&errs);
    int rc = field_size ? rb_conf_parse_v2(map, what, fields, nfields, field_size, NULL, out,
                                           &errs)
                        : rb_conf_parse(map, what, fields, nfields, NULL, out, &errs);
    conf_report(ctx, &errs);
    free(what);
    rb_errors_free(&errs);
    return rc;
}

static int host_conf_parse(struct rb_plugin_ctx *ctx, const struct rb_conf_field *fields,
                           size_t nfields, void *out)
{
    return conf_parse_any(ctx, NULL, fields, nfields, 0, out);
}

static int host_conf_parse_v2(struct rb_plugin_ctx *ctx, const char *department,
                              const struct rb_conf_field_v2 *fields, size_t nfields,
                              size_t field_size, void *out)
{
    if (!field_size)
        return RB_EINVAL;
    return conf_parse_any(ctx, department, fields, nfields, field_size, out);
}

static int host_http_route(struct rb_plugin_ctx *ctx, unsigned methods, const char *pattern,
                           rb_plugin_http_fn fn, void *arg)
{
    if (ctx->check)
        return RB_OK; /* --check: registrations have no effect */
    if (!ctx->srv || !ctx->srv->http || ctx->started)
        return RB_EINVAL;
    return rb_http_route(ctx->srv->http, methods, pattern, fn, arg);
}

static int host_http_error_owner(struct rb_plugin_ctx *ctx, const char *prefix,
                                 rb_plugin_error_fn fn, void *arg)
{
    if (ctx->check)
        return RB_OK; /* --check: registrations have no effect */
    if (!ctx->srv || !ctx->srv->http || ctx->started)
        return RB_EINVAL;
    int rc = rb_http_error_owner(ctx->srv->http, prefix, fn, arg);
    if (rc == RB_EEXIST)
        rb_error(ctx->desc->name, "plugin %s: the errors under %s already have a writer",
                 ctx->desc->name, prefix);
    return rc;
}

static double host_rate_limit(struct rb_plugin_ctx *ctx, const char *key, double per_second,
                              int burst, int take)
{
    if (!ctx || !ctx->srv || !ctx->srv->http)
        return 0;
    return rb_http_rate(ctx->srv->http, ctx->desc->name, key, per_second, burst, take);
}

static void host_reply_error(struct rb_http_req *req, int status, const char *code,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void host_reply_error(struct rb_http_req *req, int status, const char *code,
                             const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rb_http_reply_error(req, status, code, "%s", msg);
}

/* The plugin's callback sees an opaque result; core's sees a PGresult. */
struct db_call {
    rb_plugin_db_fn fn;
    void *arg;
};

static void db_trampoline(PGresult *res, const char *err, void *arg)
{
    struct db_call call = *(struct db_call *)arg;
    free(arg);
    if (call.fn)
        call.fn((const struct rb_db_result *)res, err, call.arg);
}

static struct db_call *db_call_new(rb_plugin_db_fn fn, void *arg)
{
    struct db_call *c = rb_malloc(sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    return c;
}

static int db_query_as(struct rb_plugin_ctx *ctx, int prepared, const char *sql, int nparams,
                       const char *const *params, rb_plugin_db_fn fn, void *arg)
{
    if (!ctx->srv || !ctx->srv->db)
        return RB_EUNAVAIL;
    struct db_call *c = db_call_new(fn, arg);
    int rc = (prepared ? rb_db_query_prepared : rb_db_query)(ctx->srv->db, sql, nparams, params,
                                                            db_trampoline, c);
    if (rc != RB_OK)
        free(c);
    return rc;
}

static int host_db_query(struct rb_plugin_ctx *ctx, const char *sql, int nparams,
                         const char *const *params, rb_plugin_db_fn fn, void *arg)
{
    return db_query_as(ctx, 0, sql, nparams, params, fn, arg);
}

static int host_db_query_prepared(struct rb_plugin_ctx *ctx, const char *sql, int nparams,
                                  const char *const *params, rb_plugin_db_fn fn, void *arg)
{
    return db_query_as(ctx, 1, sql, nparams, params, fn, arg);
}

static int host_db_ntuples(const struct rb_db_result *res)
{
    return res ? PQntuples((const PGresult *)res) : 0;
}

static int host_db_nfields(const struct rb_db_result *res)
{
    return res ? PQnfields((const PGresult *)res) : 0;
}

static const char *host_db_value(const struct rb_db_result *res, int row, int col)
{
    const PGresult *r = (const PGresult *)res;
    if (!r || row < 0 || col < 0 || row >= PQntuples(r) || col >= PQnfields(r) ||
        PQgetisnull(r, row, col))
        return NULL;
    return PQgetvalue(r, row, col);
}

static int host_job_enqueue(struct rb_plugin_ctx *ctx, const char *kind, const char *payload_json,
                            double delay_seconds, const char *dedup_key, rb_plugin_db_fn fn,
                            void *arg)
{
    if (!ctx->srv || !ctx->srv->db)
        return RB_EUNAVAIL;
    struct db_call *c = db_call_new(fn, arg);
    int rc = rb_jobs_enqueue(ctx->srv->db, kind, payload_json, delay_seconds, dedup_key,
                             db_trampoline, c);
    if (rc != RB_OK)
        free(c);
    return rc;
}

static int host_job_register(struct rb_plugin_ctx *ctx, const char *kind, rb_plugin_job_fn fn,
                             void *arg)
{
    if (ctx->check)
        return RB_OK;
    if (!ctx->srv || !ctx->srv->jobs || ctx->started)
        return RB_EINVAL;
    return rb_jobs_register(ctx->srv->jobs, kind, fn, arg);
}

static int host_job_pace(struct rb_plugin_ctx *ctx, const char *kind, double rate, int burst)
{
    if (ctx->check)
        return RB_OK;
    if (!ctx->srv || !ctx->srv->jobs)
        return RB_EINVAL;
    return rb_jobs_pace(ctx->srv->jobs, kind, rate, burst);
}

struct case_call {
    rb_plugin_case_fn fn;
    void *arg;
};

static void case_done(const struct rb_case_receipt *r, int status, const char *err, void *arg)
{
    struct case_call call = *(struct case_call *)arg;
    free(arg);
    if (!r) {
        call.fn(NULL, status ? status : 500, err, call.arg);
        return;
    }
    const struct rb_case_result res = {
        .size = sizeof(res), .id = r->id, .tracking_no = r->tracking_no, .status = r->status,
        .department = r->department, .category = r->category, .sla_policy = r->sla_policy,
        .priority = r->priority, .triage = r->triage, .replayed = r->replayed,
    };
    call.fn(&res, 0, NULL, call.arg);
}

_Static_assert(RB_CASE_ORIGIN_MAX == RB_INTAKE_ORIGIN_MAX, "one limit for a case's origin");
_Static_assert(RB_CASE_OUTCOME_UNKNOWN == RB_INTAKE_OUTCOME_UNKNOWN, "one outcome-unknown status");

/* The submission's channel-specific fields (plugin.h) as intake's extras, into x[3]; returns
 * how many. A reply needs all three of its fields (a plugin that sets only some has none). */
static size_t submission_extras(const struct rb_case_submission *sub, struct rb_case_extra *x)
{
    size_t n = 0;
    if (sub->origin)
        x[n++] = (struct rb_case_extra){.kind = RB_CASE_EXTRA_ORIGIN, .value = sub->origin};
    if (sub->reply_template && sub->reply_channel && sub->reply_to)
        x[n++] = (struct rb_case_extra){.kind = RB_CASE_EXTRA_REPLY,
                                        .value = sub->reply_template,
                                        .channel = sub->reply_channel, .to = sub->reply_to};
    if (sub->unless_awaiting) /* plugin.h: a question sent by SMS */
        x[n++] = (struct rb_case_extra){.kind = RB_CASE_EXTRA_HOLD, .channel = "sms"};
    return n;
}

static int host_case_submit(struct rb_plugin_ctx *ctx, const struct rb_case_submission *sub,
                            rb_plugin_case_fn fn, void *arg, char *why, size_t whylen)
{
    if (!ctx->srv || !ctx->srv->intake || !fn)
        return RB_EUNAVAIL;
    /* A plugin built against an older, shorter struct: refuse rather than read past it. */
    if (!sub || sub->size < offsetof(struct rb_case_submission, idem_hash) + sizeof(char *)) {
        snprintf(why, whylen, "plugin %s passed a case submission of an unknown size",
                 ctx->desc->name);
        return RB_EINVAL;
    }
    /* What the plugin's struct has; the fields added after it was built stay zero. */
    struct rb_case_submission s;
    memset(&s, 0, sizeof(s));
    memcpy(&s, sub, sub->size < sizeof(s) ? sub->size : sizeof(s));
    struct rb_case_extra extras[3];
    struct rb_case_in in = {
        .kind = s.kind, .service = s.service, .district = s.district, .text = s.text,
        .text_len = s.text_len, .channel = s.channel, .language = s.language,
        .phone = s.phone, .email = s.email, .lat = s.lat, .lon = s.lon,
        .anonymous = s.anonymous, .share_contact = s.share_contact, .official = s.official,
        .rating = s.rating, .idem_scope = s.idem_scope, .idem_key = s.idem_key,
        .idem_hash = s.idem_hash, .photo = s.photo, .photo_len = s.photo_len,
        .photo_type = s.photo_type, .citizen_id = s.citizen_id,
        .contact_unverified = s.contact_unverified, .extras = extras,
        .nextras = submission_extras(&s, extras),
    };
    struct case_call *c = rb_malloc(sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    int rc = rb_intake_submit(ctx->srv->intake, &in, case_done, c, why, whylen);
    if (rc != RB_OK)
        free(c);
    return rc;
}

static int host_tracking_parse(const char *in, char *out, size_t outlen, const char **why)
{
    char buf[RB_TRACKING_LEN];
    enum rb_tracking_fault fault;
    if (outlen < RB_TRACKING_LEN) {
        *why = "output buffer too small";
        return RB_EINVAL;
    }
    if (rb_tracking_parse_why(in, buf, &fault, why) != RB_OK)
        return RB_EINVAL;
    memcpy(out, buf, RB_TRACKING_LEN);
    return RB_OK;
}

static int host_phone_normalize(const char *in, char *out, size_t outlen, const char **why)
{
    char buf[RB_PHONE_MAX];
    if (outlen < RB_PHONE_MAX) {
        *why = "output buffer too small";
        return RB_EINVAL;
    }
    if (rb_phone_normalize(in, buf, why) != RB_OK)
        return RB_EINVAL;
    memcpy(out, buf, RB_PHONE_MAX);
    return RB_OK;
}

/* A YAML node as JSON: scalars as strings (the reader decides what they mean), maps as
 * objects, sequences as arrays. A new reference. */
static json_t *node_json(const struct rb_node *n)
{
    if (!n)
        return json_null();
    if (n->type == RB_NODE_SCALAR)
        return json_string(n->scalar ? n->scalar : "");
    json_t *out = n->type == RB_NODE_MAP ? json_object() : json_array();
    for (size_t i = 0; i < n->n; i++) {
        if (n->type == RB_NODE_MAP)
            json_object_set_new(out, n->keys[i]->scalar ? n->keys[i]->scalar : "",
                                node_json(n->items[i]));
        else
            json_array_append_new(out, node_json(n->items[i]));
    }
    return out;
}

static const char *host_services_json(struct rb_plugin_ctx *ctx)
{
    const struct rb_config *cfg = ctx->srv ? ctx->srv->cfg : NULL;
    json_t *arr = json_array();
    for (size_t i = 0; cfg && i < cfg->n_services; i++) {
        const struct rb_service *sv = &cfg->services[i];
        const struct rb_department *d = rb_config_department(cfg, sv->department);
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "id", sv->id, "name_en",
                           sv->name.en ? sv->name.en : "", "name_ur",
                           sv->name.ur ? sv->name.ur : "", "department", sv->department,
                           "department_name_en", d && d->name.en ? d->name.en : "",
                           "department_name_ur", d && d->name.ur ? d->name.ur : "",
                           "feedback", sv->feedback));
        if (sv->questions) {
            json_t *last = json_array_get(arr, json_array_size(arr) - 1);
            json_object_set_new(last, "questions", node_json(sv->questions));
            json_object_set_new(last, "questions_at",
                                json_sprintf("%s:%d:%d", sv->questions->file,
                                             sv->questions->line, sv->questions->col));
        }
    }
    free(ctx->services_json);
    ctx->services_json = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!ctx->services_json)
        rb_fatal("out of memory encoding the services");
    return ctx->services_json;
}

static const char *host_districts_json(struct rb_plugin_ctx *ctx)
{
    const struct rb_config *cfg = ctx->srv ? ctx->srv->cfg : NULL;
    json_t *arr = json_array();
    for (size_t i = 0; cfg && i < cfg->n_districts; i++) {
        const struct rb_district *d = &cfg->districts[i];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s?}", "id", d->id, "name_en",
                                             d->name.en ? d->name.en : d->id, "name_ur",
                                             d->name.ur ? d->name.ur : d->id, "division",
                                             d->division));
    }
    free(ctx->districts_json);
    ctx->districts_json = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!ctx->districts_json)
        rb_fatal("out of memory encoding the districts");
    return ctx->districts_json;
}

struct citizen_call {
    rb_plugin_citizen_fn fn;
    void *arg;
};

static void citizen_done(const struct rb_citizen *c, const char *err, void *arg)
{
    struct citizen_call call = *(struct citizen_call *)arg;
    free(arg);
    if (!c) {
        call.fn(NULL, err, call.arg);
        return;
    }
    const struct rb_citizen_info info = {
        .size = sizeof(info), .id = c->id, .phone = c->phone[0] ? c->phone : NULL,
        .email = c->email[0] ? c->email : NULL,
    };
    call.fn(&info, NULL, call.arg);
}

static int host_citizen_auth(struct rb_plugin_ctx *ctx, const char *token,
                             rb_plugin_citizen_fn fn, void *arg)
{
    if (!ctx->srv || !ctx->srv->auth || !fn)
        return RB_EUNAVAIL;
    struct citizen_call *c = rb_malloc(sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    int rc = rb_auth_citizen(ctx->srv->auth, token, citizen_done, c);
    if (rc != RB_OK)
        free(c);
    return rc;
}

static void host_citizen_forget(struct rb_plugin_ctx *ctx, const char *token)
{
    if (ctx->srv && ctx->srv->auth)
        rb_auth_forget(ctx->srv->auth, token);
}

struct status_call {
    rb_plugin_case_status_fn fn;
    void *arg;
};

static void status_done(const struct rb_case_status *st, const char *err, void *arg)
{
    struct status_call call = *(struct status_call *)arg;
    free(arg);
    if (!st) {
        call.fn(NULL, err, call.arg);
        return;
    }
    const struct rb_case_status_info info = {
        .size = sizeof(info), .citizen_id = st->citizen_id, .tracking_no = st->tracking_no,
        .kind = st->kind, .status = st->status, .service = st->service,
        .department = st->department, .created_at = st->created_at,
        .updated_at = st->updated_at, .resolve_due_at = st->resolve_due_at, .sla = st->sla,
        .phone_last4 = st->phone_last4,
    };
    call.fn(&info, NULL, call.arg);
}

static int host_case_status(struct rb_plugin_ctx *ctx, const char *tracking,
                            rb_plugin_case_status_fn fn, void *arg)
{
    if (!ctx->srv || !ctx->srv->case_read || !fn)
        return RB_EUNAVAIL;
    struct status_call *c = rb_malloc(sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    int rc = rb_case_status_get(ctx->srv->case_read, tracking, status_done, c);
    if (rc != RB_OK)
        free(c);
    return rc;
}

static void host_set_data(struct rb_plugin_ctx *ctx, void *data)
{
    ctx->data = data;
}

static void *host_get_data(struct rb_plugin_ctx *ctx)
{
    return ctx->data;
}

static int host_http_fetch_ca(struct rb_plugin_ctx *ctx, enum rb_http_method method,
                              const char *url, const char *const *headers, const char *body,
                              size_t len, double timeout, const char *ca_file,
                              rb_plugin_fetch_fn fn, void *arg)
{
    if (!ctx->srv || !ctx->srv->base)
        return RB_EUNAVAIL;
    if (!ctx->http_client)
        ctx->http_client = rb_http_client_new(ctx->srv->base);
    return rb_http_fetch_ca(ctx->http_client, method, url, headers, body, len, timeout, ca_file,
                            fn, arg);
}

static int host_http_fetch(struct rb_plugin_ctx *ctx, enum rb_http_method method,
                           const char *url, const char *const *headers, const char *body,
                           size_t len, double timeout, rb_plugin_fetch_fn fn, void *arg)
{
    return host_http_fetch_ca(ctx, method, url, headers, body, len, timeout, NULL, fn, arg);
}

static int host_api_request(struct rb_plugin_ctx *ctx, struct rb_http_req *from,
                            enum rb_http_method method, const char *uri,
                            const char *const *headers, const char *body, size_t len,
                            rb_plugin_api_fn fn, void *arg)
{
    if (!uri || strncmp(uri, "/api/", 5) != 0)
        return RB_EINVAL;
    if (!ctx->srv || !ctx->srv->http)
        return RB_EUNAVAIL;
    return rb_http_local(ctx->srv->http, method, uri, headers, body, len,
                         from ? rb_http_req_peer(from) : NULL, fn, arg);
}

/* ---- departments -------------------------------------------------------------------------- */

static int host_department_wants(struct rb_plugin_ctx *ctx,
                                 int (*wants)(struct rb_plugin_ctx *ctx, const char *department,
                                              void *arg),
                                 void *arg)
{
    if (!wants || ctx->started || ctx->desc->kind != RB_PLUGIN_DEPARTMENT)
        return RB_EINVAL;
    ctx->wants_fn = wants;
    ctx->wants_arg = arg;
    return RB_OK;
}

static int host_department_deliver(struct rb_plugin_ctx *ctx, rb_plugin_deliver_fn fn, void *arg)
{
    if (!fn || ctx->started || ctx->desc->kind != RB_PLUGIN_DEPARTMENT)
        return RB_EINVAL;
    ctx->deliver_fn = fn;
    ctx->deliver_arg = arg;
    return RB_OK;
}

/* The department of the current config with this id that uses this plugin, or NULL. */
static const struct rb_department *own_department(struct rb_plugin_ctx *ctx, const char *id)
{
    const struct rb_department *d =
        ctx->srv && ctx->srv->cfg ? rb_config_department(ctx->srv->cfg, id) : NULL;
    return d && strcmp(d->plugin, ctx->desc->name) == 0 ? d : NULL;
}

static const char *host_department_id(struct rb_plugin_ctx *ctx, size_t i)
{
    const struct rb_config *cfg = ctx->srv ? ctx->srv->cfg : NULL;
    for (size_t k = 0; cfg && k < cfg->n_departments; k++)
        if (strcmp(cfg->departments[k].plugin, ctx->desc->name) == 0 && i-- == 0)
            return cfg->departments[k].id;
    return NULL;
}

static int host_department_conf_parse(struct rb_plugin_ctx *ctx, const char *department,
                                      const struct rb_conf_field *fields, size_t nfields,
                                      void *out)
{
    return conf_parse_any(ctx, department, fields, nfields, 0, out);
}

static int host_department_info(struct rb_plugin_ctx *ctx, const char *department,
                                struct rb_department_info *out)
{
    if (!out || out->size < offsetof(struct rb_department_info, email) + sizeof(out->email))
        return RB_EINVAL;
    const struct rb_department *d = department ? own_department(ctx, department) : NULL;
    if (!d)
        return RB_ENOTFOUND;
    out->id = d->id;
    out->name_en = d->name.en;
    out->name_ur = d->name.ur;
    out->duty_phone = d->duty_phone;
    out->email = d->email;
    return RB_OK;
}

struct act_call {
    rb_plugin_case_act_fn fn;
    void *arg;
};

static void act_done(const struct rb_case_act_outcome *o, void *arg)
{
    struct act_call call = *(struct act_call *)arg;
    free(arg);
    const struct rb_case_act_result r = {
        .size = sizeof(r), .status = o->status, .case_id = o->case_id,
        .from_status = o->from_status, .to_status = o->to_status, .error = o->error,
    };
    call.fn(&r, call.arg);
}

/* A JSON object, or NULL: what a case event's data may be. */
static int json_object_text(const char *s)
{
    if (!s)
        return 1;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    int ok = json_is_object(j);
    json_decref(j);
    return ok;
}

static int host_case_act(struct rb_plugin_ctx *ctx, const char *tracking, const char *department,
                         const char *action, const char *text, const char *data_json,
                         rb_plugin_case_act_fn fn, void *arg)
{
    /* What a department's own system may report: the staff's steps on its own cases. */
    static const enum rb_case_action allowed[] = {RB_CASE_DO_ACKNOWLEDGE, RB_CASE_DO_START,
                                                  RB_CASE_DO_RESOLVE, RB_CASE_DO_REJECT,
                                                  RB_CASE_DO_ANSWER};
    enum rb_case_action a;
    char canon[RB_TRACKING_LEN];
    int known = 0;
    if (!fn || !action || rb_case_action_from_str(action, &a) != RB_OK || !tracking ||
        rb_tracking_parse(tracking, canon) != RB_OK || !json_object_text(data_json))
        return RB_EINVAL;
    for (size_t i = 0; i < RB_ARRAY_LEN(allowed); i++)
        known |= allowed[i] == a;
    if (!known)
        return RB_EINVAL;
    if (!ctx->srv || !ctx->srv->db)
        return RB_EUNAVAIL;
    if (text && strspn(text, " \t\r\n") == strlen(text))
        text = NULL; /* blank is no text: the step that needs one is refused */
    struct act_call *c = rb_malloc(sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    int rc = rb_case_act(ctx->srv->db, canon, department, a, "department", ctx->desc->name, text,
                         data_json, act_done, c);
    if (rc != RB_OK)
        free(c);
    return rc;
}

static int host_case_event(struct rb_plugin_ctx *ctx, long long case_id, const char *event,
                           const char *note, const char *data_json, rb_plugin_db_fn fn, void *arg)
{
    size_t nl = strlen(ctx->desc->name);
    if (case_id <= 0 || !event || strlen(event) > 64 || strncmp(event, ctx->desc->name, nl) != 0 ||
        event[nl] != '.' || !event[nl + 1] ||
        strspn(event + nl + 1, "abcdefghijklmnopqrstuvwxyz0123456789_.") != strlen(event + nl + 1) ||
        !json_object_text(data_json))
        return RB_EINVAL;
    if (!ctx->srv || !ctx->srv->db)
        return RB_EUNAVAIL;
    char id[24];
    snprintf(id, sizeof(id), "%lld", case_id);
    const char *p[5] = {id, ctx->desc->name, event, note, data_json};
    struct db_call *c = db_call_new(fn, arg);
    int rc = rb_db_query(ctx->srv->db,
                         "INSERT INTO case_events (case_id, actor_type, actor_id, event, note, data)"
                         " VALUES ($1::bigint, 'department', $2::text, $3::text, $4::text,"
                         " coalesce($5::jsonb, '{}') || '{\"internal\": true}') RETURNING id",
                         5, p, db_trampoline, c);
    if (rc != RB_OK)
        free(c);
    return rc;
}

/* ---- messages and ratings (issue 6: SMS notices) ---------------------------------------- */

static json_t *params_parse(const char *params_json, char *why, size_t whylen)
{
    if (!params_json)
        return json_object();
    json_error_t e;
    json_t *p = json_loads(params_json, 0, &e);
    if (!json_is_object(p)) {
        snprintf(why, whylen, "params_json is not a JSON object");
        json_decref(p);
        return NULL;
    }
    return p;
}

static char *host_template_render(struct rb_plugin_ctx *ctx, const char *name,
                                  const char *language, const char *params_json, char *why,
                                  size_t whylen)
{
    if (!ctx->srv || !ctx->srv->rules || !name) {
        snprintf(why, whylen, "no templates are loaded");
        return NULL;
    }
    json_t *p = params_parse(params_json, why, whylen);
    if (!p)
        return NULL;
    char *out = rb_template_render(rb_script_templates(ctx->srv->rules), name, language, p, why, whylen);
    json_decref(p);
    return out;
}

static int host_message_queue(struct rb_plugin_ctx *ctx, const struct rb_message_out *m,
                              rb_plugin_message_fn fn, void *arg, char *why, size_t whylen)
{
    if (!ctx->srv || !ctx->srv->db || !ctx->srv->rules)
        return RB_EUNAVAIL;
    if (!m || m->size < offsetof(struct rb_message_out, urgent) + sizeof(m->urgent)) {
        snprintf(why, whylen, "struct rb_message_out is too small");
        return RB_EINVAL;
    }
    json_t *p = params_parse(m->params_json, why, whylen);
    if (!p)
        return RB_EINVAL;
    struct rb_message_req r = {
        .template = m->template, .language = m->language, .params = p, .channel = m->channel,
        .to = m->to, .case_id = m->case_id, .citizen_id = m->citizen_id,
        .event_id = m->event_id, .notice = m->notice, .urgent = m->urgent,
        .subject_template = RB_HAS_FIELD(m, rb_message_out, subject_template)
                                ? m->subject_template
                                : NULL,
        .data_json = RB_HAS_FIELD(m, rb_message_out, data_json) ? m->data_json : NULL,
    };
    int rc = rb_message_queue(ctx->srv, &r, fn, arg, why, whylen);
    json_decref(p);
    return rc;
}

static double host_quiet_wait(struct rb_plugin_ctx *ctx)
{
    return rb_message_quiet_wait(ctx->srv);
}

static int host_case_rate(struct rb_plugin_ctx *ctx, const char *tracking, long long citizen_id,
                          int rating, int satisfied, const char *comment, rb_plugin_db_fn fn,
                          void *arg)
{
    if (!ctx->srv || !ctx->srv->db)
        return RB_EUNAVAIL;
    struct db_call *c = db_call_new(fn, arg);
    double window = ctx->srv->sla ? ctx->srv->sla->close.reopen_window : 0;
    int rc = rb_case_rate(ctx->srv->db, tracking, citizen_id, rating, satisfied, comment,
                          window, db_trampoline, c);
    if (rc != RB_OK)
        free(c);
    return rc;
}

static int host_case_comment(struct rb_plugin_ctx *ctx, const struct rb_case_comment *in,
                             rb_plugin_db_fn fn, void *arg)
{
    if (!in || in->size < offsetof(struct rb_case_comment, reply_to) + sizeof(in->reply_to))
        return RB_EINVAL; /* every field is in the first version of the struct */
    if (!ctx->srv || !ctx->srv->db)
        return RB_EUNAVAIL;
    struct rb_case_comment c = *in;
    c.size = sizeof(c);
    struct db_call *call = db_call_new(fn, arg);
    int rc = rb_case_comment(ctx->srv->db, &c, db_trampoline, call);
    if (rc != RB_OK)
        free(call);
    return rc;
}

static struct event_base *host_event_base(struct rb_plugin_ctx *ctx)
{
    return ctx->check || !ctx->srv ? NULL : ctx->srv->base;
}

static char *host_lua_data(struct rb_plugin_ctx *ctx, const char *name, char *why,
                           size_t whylen)
{
    if (!name) {
        snprintf(why, whylen, "no module name");
        return NULL;
    }
    return rb_script_module_json(ctx->srv ? ctx->srv->rules : NULL, name, why, whylen);
}

static int host_message_sender(struct rb_plugin_ctx *ctx, const char *channel,
                               rb_plugin_send_fn fn, void *arg)
{
    if (!ctx->srv || ctx->started)
        return RB_EINVAL;
    char why[400];
    int rc = rb_sender_register(ctx->srv, channel, ctx->desc->name, fn, arg, why, sizeof(why));
    if (rc != RB_OK)
        rb_error("plugins", "%s", why);
    return rc;
}

static int host_survey_answer(struct rb_plugin_ctx *ctx, const char *phone, const char *text,
                              size_t len, const char *ref,
                              void (*fn)(int taken, const char *err, void *arg), void *arg)
{
    if (!ctx->srv || !ctx->srv->db || !phone || !text || !fn)
        return RB_EAGAIN;
    return rb_outreach_sms_answer(ctx->srv, phone, text, len, ref, fn, arg);
}

static int host_survey_call_result(struct rb_plugin_ctx *ctx, long long message_id,
                                   const char *answers_json, const char *disposition,
                                   void (*fn)(int found, const char *err, void *arg), void *arg)
{
    if (!ctx->srv || !ctx->srv->db || !fn)
        return RB_EAGAIN;
    json_t *a = answers_json ? json_loads(answers_json, 0, NULL) : NULL;
    if (answers_json && !json_is_object(a)) {
        json_decref(a);
        return RB_EINVAL;
    }
    int rc = rb_outreach_record(ctx->srv, "call", message_id, 0, a, disposition, fn, arg);
    json_decref(a);
    return rc;
}

static char *host_survey_walk(struct rb_plugin_ctx *ctx, const char *survey,
                              const char *language, const char *given_json, char *why,
                              size_t whylen)
{
    if (!ctx->srv || !ctx->srv->rules) {
        snprintf(why, whylen, "no rules are loaded");
        return NULL;
    }
    json_t *given = given_json ? json_loads(given_json, 0, NULL) : NULL;
    if (given_json && !json_is_object(given)) {
        json_decref(given);
        snprintf(why, whylen, "the answers given must be a JSON object");
        return NULL;
    }
    json_t *w = rb_outreach_walk(ctx->srv, survey, language, given, why, whylen);
    json_decref(given);
    char *text = w ? json_dumps(w, JSON_COMPACT) : NULL;
    json_decref(w);
    return text;
}

static const struct rb_host_api host_api = {
    .size = sizeof(struct rb_host_api),
    .abi = RB_PLUGIN_ABI,
    .log = host_log,
    .conf_parse = host_conf_parse,
    .conf_free = rb_conf_free,
    .http_route = host_http_route,
    .req_method = rb_http_req_method,
    .req_path = rb_http_req_path,
    .req_param = rb_http_req_param,
    .req_query = rb_http_req_query,
    .req_header = rb_http_req_header,
    .req_body = rb_http_req_body,
    .reply = rb_http_reply,
    .reply_error = host_reply_error,
    .db_query = host_db_query,
    .db_ntuples = host_db_ntuples,
    .db_nfields = host_db_nfields,
    .db_value = host_db_value,
    .job_enqueue = host_job_enqueue,
    .set_data = host_set_data,
    .get_data = host_get_data,
    .job_register = host_job_register,
    .job_finish = rb_job_finish,
    .case_submit = host_case_submit,
    .tracking_parse = host_tracking_parse,
    .phone_normalize = host_phone_normalize,
    .services_json = host_services_json,
    .citizen_auth = host_citizen_auth,
    .citizen_forget = host_citizen_forget,
    .case_status = host_case_status,
    .reply_header = rb_http_add_header,
    .req_peer = rb_http_req_peer,
    .http_fetch = host_http_fetch,
    .http_fetch_ca = host_http_fetch_ca,
    .department_deliver = host_department_deliver,
    .department_id = host_department_id,
    .department_conf_parse = host_department_conf_parse,
    .case_act = host_case_act,
    .case_event = host_case_event,
    .template_render = host_template_render,
    .message_queue = host_message_queue,
    .quiet_wait = host_quiet_wait,
    .case_rate = host_case_rate,
    .department_info = host_department_info,
    .case_comment = host_case_comment,
    .department_wants = host_department_wants,
    .job_pace = host_job_pace,
    .db_query_prepared = host_db_query_prepared,
    .conf_parse_v2 = host_conf_parse_v2,
    .conf_free_v2 = rb_conf_free_v2,
    .event_base = host_event_base,
    .lua_data = host_lua_data,
    .message_sender = host_message_sender,
    .message_done = rb_sender_done,
    .api_request = host_api_request,
    .districts_json = host_districts_json,
    .reply_db_error = rb_http_reply_db_error,
    .rate_limit = host_rate_limit,
    .survey_answer = host_survey_answer,
    .survey_call_result = host_survey_call_result,
    .survey_walk = host_survey_walk,
    .http_error_owner = host_http_error_owner,
};

const struct rb_host_api *rb_host_api_get(void)
{
    return &host_api;
}
