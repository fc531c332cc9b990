/* Who is told of an escalation (escalation.h). */
#include "messages/escalation.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/process.h"
#include "base/text.h"
#include "config/config.h"
#include "db/db.h"
#include "jobs/jobs.h"
#include "lua/script.h"
#include "lua/templates.h"
#include "messages/message.h"
#include "messages/sender.h"
#include "sla/sla_engine.h"
#include "sla/sla_policy.h"

#define NOTIFY_BATCH 16 /* jobs per claim; each holds the events of one fired batch */
#define TEMPLATE "sla.escalated"

/* $1 event ids. Each escalation with its case and the staff its targets may name: the active
 * supervisors of the case's department and the oversight accounts, each [id, role, phone,
 * email], only when the event names that target. */
static const char read_sql[] =
    "SELECT e.id, e.case_id, e.data->'notify', coalesce(e.data->>'level', '0'), c.tracking_no,"
    "  coalesce(c.department_id, ''), coalesce(c.service_id, ''),"
    "  greatest(0, floor(extract(epoch FROM e.at - c.resolve_due_at)))::bigint,"
    "  (SELECT coalesce(json_agg(json_build_array(s.id, s.role, s.phone, s.email)"
    "     ORDER BY s.username), '[]') FROM staff s WHERE s.disabled_at IS NULL AND"
    "   ((s.role = 'supervisor' AND s.department_id = c.department_id"
    "     AND e.data->'notify' @> '[[\"supervisor\"]]')"
    "    OR (s.role = 'oversight' AND e.data->'notify' @> '[[\"oversight\"]]')))"
    " FROM case_events e JOIN cases c ON c.id = e.case_id"
    " WHERE e.id = ANY($1::bigint[]) AND e.event = 'sla.escalated'";

/* $1 notifications [{staff_id, case_id, event_id, level, body}], $2 targets nobody could be
 * reached for [{case_id, event_id, level, target, via, reason}]. Answers the unreachable
 * events written now (a retry writes none twice), per target and way. */
static const char write_sql[] =
    "WITH n AS (INSERT INTO staff_notifications (staff_id, case_id, event_id, kind, level, body)"
    "  SELECT x.staff_id, x.case_id, x.event_id, 'sla.escalated', x.level, x.body"
    "  FROM jsonb_to_recordset($1::jsonb) AS x(staff_id bigint, case_id bigint, event_id bigint,"
    "   level int, body text) ORDER BY x.staff_id, x.event_id ON CONFLICT DO NOTHING),"
    " u AS (INSERT INTO case_events (case_id, actor_type, actor_id, event, data)"
    "  SELECT x.case_id, 'system', 'sla', 'sla.unreachable', jsonb_build_object('action',"
    "   'notify', 'target', x.target, 'via', x.via, 'level', x.level, 'event_id', x.event_id,"
    "   'reason', x.reason)"
    "  FROM jsonb_to_recordset($2::jsonb) AS x(case_id bigint, event_id bigint, level int,"
    "   target text, via text, reason text)"
    "  WHERE NOT EXISTS (SELECT 1 FROM case_events o WHERE o.case_id = x.case_id"
    "   AND o.event = 'sla.unreachable' AND o.data->>'event_id' = x.event_id::text"
    "   AND o.data->>'target' = x.target AND o.data->>'via' = x.via)"
    "  RETURNING data->>'target' AS target, data->>'via' AS via)"
    " SELECT target, via, count(*) FROM u GROUP BY target, via";

/* One claim of sla.notify jobs. */
struct batch {
    struct rb_server *srv;    /* borrowed */
    struct rb_job_run **runs; /* owned array; each run borrowed until finished */
    size_t n;
    int pending;  /* queries still out */
    char *err;    /* owned; the first failure */
};

static void batch_end(struct batch *b, const char *err)
{
    if (err && !b->err)
        b->err = rb_strdup(err);
    if (--b->pending > 0)
        return;
    for (size_t i = 0; i < b->n; i++)
        rb_job_finish(b->runs[i], b->err == NULL, b->err, -1, 0);
    free(b->runs);
    free(b->err);
    free(b);
}

static void written(PGresult *res, const char *err, void *arg)
{
    struct batch *b = arg;
    for (int i = 0; !err && i < PQntuples(res); i++) {
        const char *target = PQgetvalue(res, i, 0), *via = PQgetvalue(res, i, 1);
        char labels[96];
        snprintf(labels, sizeof(labels), "action=\"notify\",target=\"%s\",via=\"%s\"", target,
                 via);
        if (b->srv->metrics)
            rb_metrics_count(b->srv->metrics, RB_SLA_UNREACHABLE_METRIC,
                             RB_SLA_UNREACHABLE_HELP, labels, atof(PQgetvalue(res, i, 2)));
    }
    batch_end(b, err);
}

static void queued(PGresult *res, const char *err, void *arg)
{
    (void)res;
    batch_end(arg, err);
}

/* What one event gives: rows for write_sql and messages for rb_message_queue_many. */
struct out {
    json_t *notes, *lost; /* owned arrays */
    struct rb_message_req *reqs; /* owned; .to is set from addrs when all are added */
    json_t **params;      /* owned, one per request */
    char (*addrs)[256];   /* owned copies of the addresses */
    char (*chans)[40];    /* owned copies of the channels (an escalation's via) */
    size_t nreq, cap;
};

static void add_message(struct out *o, const char *via, const char *to, const json_t *params,
                        const char *lang, long long case_id, long long event_id)
{
    if (o->nreq == o->cap) {
        o->cap = o->cap * 2 + 16;
        o->reqs = rb_realloc(o->reqs, o->cap * sizeof(*o->reqs));
        o->params = rb_realloc(o->params, o->cap * sizeof(*o->params));
        o->addrs = rb_realloc(o->addrs, o->cap * sizeof(*o->addrs));
        o->chans = rb_realloc(o->chans, o->cap * sizeof(*o->chans));
    }
    snprintf(o->addrs[o->nreq], sizeof(o->addrs[0]), "%s", to);
    snprintf(o->chans[o->nreq], sizeof(o->chans[0]), "%s", via);
    o->params[o->nreq] = json_deep_copy(params);
    o->reqs[o->nreq] = (struct rb_message_req){
        .template = TEMPLATE, .language = lang, .params = o->params[o->nreq],
        /* .channel and .to: set once chans and addrs stop moving (loaded) */
        .case_id = case_id, .event_id = event_id, .notice = 0, .urgent = 0,
    };
    o->nreq++;
}

/* One escalation's row of read_sql. */
struct esc {
    long long event_id, case_id;
    int level;
    const struct rb_department *dep; /* borrowed; NULL: unknown or none */
    const char *dep_id;
    json_t *staff;  /* borrowed: [[id, role, phone, email], ...] */
    json_t *params; /* borrowed: the template's values */
    const char *body; /* borrowed: the rendered text, NULL when it does not render */
    const char *lang;
};

/* A channel that reaches people at their e-mail address; every other one (sms, call) at their
 * phone. */
static int by_email(const char *via)
{
    return strcmp(via, "email") == 0;
}

/* The people a target names who can be reached by via, each added to o; returns how many,
 * and *known how many people the target names at all. */
static int reach(const struct esc *e, const char *target, const char *via, struct out *o,
                 int *known)
{
    int n = 0;
    *known = 0;
    if (!strcmp(target, "supervisor") || !strcmp(target, "oversight")) {
        size_t i;
        json_t *s;
        json_array_foreach(e->staff, i, s) {
            const char *role = json_string_value(json_array_get(s, 1));
            if (!role || strcmp(role, target) != 0)
                continue;
            (*known)++;
            const char *addr = json_string_value(json_array_get(s, by_email(via) ? 3 : 2));
            if (!strcmp(via, "inbox") && e->body) {
                json_array_append_new(
                    o->notes, json_pack("{s:O, s:I, s:I, s:i, s:s}", "staff_id",
                                        json_array_get(s, 0), "case_id", (json_int_t)e->case_id,
                                        "event_id", (json_int_t)e->event_id, "level", e->level,
                                        "body", e->body));
                n++;
            } else if (strcmp(via, "inbox") != 0 && addr && *addr) {
                add_message(o, via, addr, e->params, e->lang, e->case_id, e->event_id);
                n++;
            }
        }
        return n;
    }
    const char *addr = NULL;
    if (e->dep && !strcmp(target, "head")) {
        *known = e->dep->head.phone || e->dep->head.email;
        addr = by_email(via) ? e->dep->head.email : e->dep->head.phone;
    } else if (e->dep && !strcmp(target, "duty_officer")) {
        *known = e->dep->duty_phone || e->dep->email;
        addr = by_email(via) ? e->dep->email : e->dep->duty_phone;
    }
    if (addr && *addr && strcmp(via, "inbox") != 0) {
        add_message(o, via, addr, e->params, e->lang, e->case_id, e->event_id);
        n++;
    }
    return n;
}

/* Records that target could not be reached by via, and why: a case event and a metric. */
static void record_lost(const struct esc *e, const char *target, const char *via,
                        const char *why, struct out *o)
{
    rb_warn("sla", "case %lld: escalation level %d: nobody to reach for notify %s via %s: %s",
            e->case_id, e->level, target, via, why);
    json_array_append_new(o->lost, json_pack("{s:I, s:I, s:i, s:s, s:s, s:s}", "case_id",
                                             (json_int_t)e->case_id, "event_id",
                                             (json_int_t)e->event_id, "level", e->level,
                                             "target", target, "via", via, "reason", why));
}

/* Why target could not be reached by via (known: how many people it names). */
static void lost(const struct esc *e, const char *target, const char *via, int known,
                 struct out *o)
{
    char why[200];
    if (!e->body)
        snprintf(why, sizeof(why), "the template %s does not render", TEMPLATE);
    else if (known == 0)
        snprintf(why, sizeof(why), "department %s has no %s", e->dep_id[0] ? e->dep_id : "(none)",
                 !strcmp(target, "head")           ? "head"
                 : !strcmp(target, "duty_officer") ? "duty officer"
                                                   : !strcmp(target, "supervisor")
                                                         ? "active supervisor"
                                                         : "active oversight account");
    else
        snprintf(why, sizeof(why), "no %s named has %s", target,
                 by_email(via) ? "an e-mail address" : "a phone");
    record_lost(e, target, via, why, o);
}

/* The template's values for row r: never the complainant's data. Returns a new object. */
static json_t *text_params(struct rb_server *srv, PGresult *res, int r, const char *lang,
                           const struct rb_department *dep)
{
    const char *dep_id = PQgetvalue(res, r, 5), *svc_id = PQgetvalue(res, r, 6);
    const struct rb_service *svc = rb_config_service(srv->cfg, svc_id);
    const char *dname = dep ? (!strcmp(lang, "en") ? dep->name.en : dep->name.ur) : NULL;
    const char *sname = svc ? (!strcmp(lang, "en") ? svc->name.en : svc->name.ur) : NULL;
    long long late = atoll(PQgetvalue(res, r, 7));
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "tracking", PQgetvalue(res, r, 4),
                     "department", dname && *dname ? dname : dep_id, "service",
                     sname && *sname ? sname : (*svc_id ? svc_id : "-"), "level",
                     PQgetvalue(res, r, 3), "hours", (json_int_t)(late / 3600), "minutes",
                     (json_int_t)(late % 3600 / 60));
}

/* Resolves the targets of row r into o. */
static void resolve_row(struct rb_server *srv, PGresult *res, int r, struct out *o)
{
    const char *lang = srv->sla && srv->sla->notify_language ? srv->sla->notify_language : "ur";
    struct esc e = {
        .event_id = atoll(PQgetvalue(res, r, 0)), .case_id = atoll(PQgetvalue(res, r, 1)),
        .level = atoi(PQgetvalue(res, r, 3)), .dep_id = PQgetvalue(res, r, 5), .lang = lang,
    };
    e.dep = rb_config_department(srv->cfg, e.dep_id);
    json_t *notify = json_loads(PQgetvalue(res, r, 2), 0, NULL);
    e.staff = json_loads(PQgetvalue(res, r, 8), 0, NULL);
    e.params = text_params(srv, res, r, lang, e.dep);
    char why[256];
    char *body = rb_template_render(rb_script_templates(srv->rules), TEMPLATE, lang, e.params,
                                    why, sizeof(why));
    if (!body)
        rb_warn("sla", "case %lld: template %s: %s", e.case_id, TEMPLATE, why);
    e.body = body;
    size_t i;
    json_t *a;
    json_array_foreach(notify, i, a) {
        const char *target = json_string_value(json_array_get(a, 0));
        const char *via = json_string_value(json_array_get(a, 1));
        if (!target || !via)
            continue;
        int known = 0;
        char nosend[256];
        /* A channel nobody sends (its plugin not loaded since the configuration was checked)
         * reaches nobody: said once per target, not retried for ever. */
        if (body && strcmp(via, "inbox") != 0 &&
            rb_sender_check(srv, via, nosend, sizeof(nosend)) != RB_OK)
            record_lost(&e, target, via, nosend, o);
        else if (!body || reach(&e, target, via, o, &known) == 0)
            lost(&e, target, via, known, o);
    }
    free(body);
    json_decref(e.params);
    json_decref(e.staff);
    json_decref(notify);
}

static void out_free(struct out *o)
{
    json_decref(o->notes);
    json_decref(o->lost);
    for (size_t i = 0; i < o->nreq; i++)
        json_decref(o->params[i]);
    free(o->reqs);
    free(o->params);
    free(o->addrs);
    free(o->chans);
}

static void loaded(PGresult *res, const char *err, void *arg)
{
    struct batch *b = arg;
    if (err) {
        batch_end(b, err);
        return;
    }
    struct out o = {json_array(), json_array(), NULL, NULL, NULL, NULL, 0, 0};
    for (int r = 0; r < PQntuples(res); r++)
        resolve_row(b->srv, res, r, &o);
    /* One statement per channel (every one has a sender: resolve_row recorded the others as
     * unreachable); one that fails is retried with the run, storing nothing twice. */
    const struct rb_message_req **reqs = rb_calloc(o.nreq + 1, sizeof(*reqs));
    int *refused = rb_calloc(o.nreq + 1, sizeof(int));
    for (size_t i = 0; i < o.nreq; i++) {
        o.reqs[i].to = o.addrs[i];
        o.reqs[i].channel = o.chans[i];
    }
    for (size_t first = 0; first < o.nreq; first++) {
        size_t n = 0;
        int seen = 0;
        for (size_t i = 0; i < first && !seen; i++) /* this channel went with an earlier one */
            seen = strcmp(o.chans[i], o.chans[first]) == 0;
        for (size_t i = first; i < o.nreq && !seen; i++)
            if (strcmp(o.chans[i], o.chans[first]) == 0)
                reqs[n++] = &o.reqs[i];
        if (n == 0)
            continue;
        b->pending++;
        int rc = rb_message_queue_many(b->srv, reqs, n, refused, queued, b);
        if (rc != RB_OK)
            batch_end(b, rc == RB_ENOTFOUND ? "the escalation texts do not render"
                                            : "database unavailable");
    }
    if (json_array_size(o.notes) + json_array_size(o.lost) > 0) {
        char *notes = json_dumps(o.notes, JSON_COMPACT), *lost = json_dumps(o.lost, JSON_COMPACT);
        const char *params[2] = {notes, lost};
        b->pending++;
        if (rb_db_query(b->srv->db, write_sql, 2, params, written, b) != RB_OK)
            batch_end(b, "database unavailable");
        free(notes);
        free(lost);
    }
    free(refused);
    free(reqs);
    out_free(&o);
    batch_end(b, NULL);
}

static void notify_batch(struct rb_job_run **runs, size_t n, void *arg)
{
    struct batch *b = rb_calloc(1, sizeof(*b));
    b->srv = arg;
    b->runs = rb_calloc(n, sizeof(*b->runs));
    b->pending = 1;
    struct rb_sbuf ids = {0};
    rb_sbuf_puts(&ids, "{");
    for (size_t i = 0; i < n; i++) {
        const struct rb_job *job = rb_job_run_info(runs[i]);
        json_t *p = json_loads(job->payload ? job->payload : "{}", 0, NULL);
        json_t *events = p ? json_object_get(p, "events") : NULL, *v;
        size_t k;
        if (!json_is_array(events)) {
            rb_job_finish(runs[i], 0, "payload has no events", -1, 1);
            json_decref(p);
            continue;
        }
        json_array_foreach(events, k, v) {
            char id[24];
            snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(v));
            if (json_integer_value(v) > 0)
                rb_sbuf_elem(&ids, id);
        }
        json_decref(p);
        b->runs[b->n++] = runs[i];
    }
    rb_sbuf_puts(&ids, "}");
    const char *params[1] = {ids.p};
    if (b->n == 0) {
        free(b->runs);
        free(b);
    } else if (rb_db_query(b->srv->db, read_sql, 1, params, loaded, b) != RB_OK) {
        batch_end(b, "database unavailable");
    }
    free(ids.p);
}

int rb_escalation_register(struct rb_server *srv)
{
    return rb_jobs_register_batch(srv->jobs, RB_SLA_NOTIFY_JOB, notify_batch, NOTIFY_BATCH, srv);
}
