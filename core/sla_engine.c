/* The SLA engine: sla.check and sla.resume jobs. See sla_engine.h. */
#include "sla_engine.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "db.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"

static const char *const check_names[] = {"ack", "warn", "resolve"};

struct rb_sla_engine {
    struct rb_db *db;         /* borrowed */
    struct rb_metrics *m;     /* borrowed; may be NULL */
    const struct rb_sla *sla; /* borrowed; NULL: SLA off */
};

/* ---- the events of a case, in order ------------------------------------------------------ */

static int event_cmp(const struct rb_sla_event *a, const struct rb_sla_event *b)
{
    if (a->due != b->due)
        return a->due < b->due ? -1 : 1;
    if (a->check != b->check)
        return a->check < b->check ? -1 : 1;
    return a->level - b->level;
}

static int event_order(const void *a, const void *b)
{
    return event_cmp(a, b);
}

int rb_sla_plan(const struct rb_sla *sla, const struct rb_sla_policy *p, int64_t created,
                int64_t ack_due, int64_t resolve_due, unsigned checks,
                struct rb_sla_event out[RB_SLA_PLAN_MAX])
{
    int n = 0;
    if (checks & (1u << RB_SLA_ACK))
        out[n++] = (struct rb_sla_event){RB_SLA_ACK, 0, ack_due, ack_due};
    for (int i = 0; (checks & (1u << RB_SLA_WARN)) && i < p->n_warn; i++)
        out[n++] = (struct rb_sla_event){
            RB_SLA_WARN, i, rb_cal_add(sla->cal, created, (int64_t)(p->resolve * p->warn_at[i])),
            resolve_due};
    for (size_t l = 0; (checks & (1u << RB_SLA_RESOLVE)) && l < sla->n_levels &&
                       n < RB_SLA_PLAN_MAX; l++)
        out[n++] = (struct rb_sla_event){RB_SLA_RESOLVE, (int)l,
                                         rb_cal_add(sla->cal, resolve_due,
                                                    (int64_t)sla->levels[l].after),
                                         resolve_due};
    qsort(out, (size_t)n, sizeof(*out), event_order);
    return n;
}

char *rb_sla_event_payload(long long case_id, const struct rb_sla_event *ev, int n)
{
    /* The event to run and the rest of the plan: later runs never recompute times, so a
     * rounding difference cannot bring an event back twice. */
    char *rest = rb_strdup("");
    for (int i = 1; i < n; i++) {
        char *more = rb_sprintf("%s%s[%d,%d,%lld,%lld]", rest, i > 1 ? "," : "", ev[i].check,
                                ev[i].level, (long long)ev[i].due, (long long)ev[i].deadline);
        free(rest);
        rest = more;
    }
    char *id = case_id >= 0 ? rb_sprintf("\"case_id\":%lld,", case_id) : rb_strdup("");
    char *out = rb_sprintf("{%s\"check\":\"%s\",\"level\":%d,\"due\":%lld,\"deadline\":%lld,"
                           "\"rest\":[%s]}",
                           id, check_names[ev[0].check], ev[0].level, (long long)ev[0].due,
                           (long long)ev[0].deadline, rest);
    free(id);
    free(rest);
    return out;
}

char *rb_sla_event_key(long long case_id, const struct rb_sla_event *ev)
{
    return rb_sprintf("sla:%lld:%s:%d:%lld", case_id, check_names[ev->check], ev->level,
                      (long long)ev->due);
}

/* ---- set-up ------------------------------------------------------------------------------- */

struct rb_sla_engine *rb_sla_engine_new(struct rb_db *db, struct rb_metrics *m,
                                        const struct rb_sla *sla)
{
    struct rb_sla_engine *e = rb_calloc(1, sizeof(*e));
    e->db = db;
    e->m = m;
    e->sla = sla;
    return e;
}

void rb_sla_engine_set(struct rb_sla_engine *e, const struct rb_sla *sla)
{
    e->sla = sla;
}

void rb_sla_engine_free(struct rb_sla_engine *e)
{
    free(e);
}

/* ---- sla.check ---------------------------------------------------------------------------- */

static const char case_sql[] =
    "SELECT status, extract(epoch from created_at)::bigint, "
    "  coalesce(extract(epoch from ack_due_at)::bigint, 0), "
    "  coalesce(extract(epoch from resolve_due_at)::bigint, 0), coalesce(sla_policy, ''), "
    "  coalesce(department_id, ''), coalesce(service_id, ''), kind, paused_at IS NOT NULL "
    "FROM cases WHERE id = $1::bigint";

/* Records the event once; in breach, applies the level's actions; queues the next event. */
static const char fire_sql[] =
    "WITH f AS (INSERT INTO sla_firings (case_id, check_kind, level, due, breached, lateness)"
    "  VALUES ($1::bigint, $2, $3::int, to_timestamp($4::float8), $5::boolean,"
    "          now() - to_timestamp($4::float8))"
    "  ON CONFLICT DO NOTHING RETURNING case_id),"
    " up AS (UPDATE cases SET priority = greatest(1, priority - $6::int),"
    "   escalation_level = CASE WHEN $2 = 'resolve' THEN greatest(escalation_level, $3::int + 1)"
    "                      ELSE escalation_level END,"
    "   flagged_oversight_at = CASE WHEN $7::boolean THEN coalesce(flagged_oversight_at, now())"
    "                          ELSE flagged_oversight_at END"
    "  WHERE id = $1::bigint AND $5::boolean AND EXISTS (SELECT 1 FROM f) RETURNING id),"
    " ev AS (INSERT INTO case_events (case_id, actor_type, actor_id, event, data)"
    "  SELECT $1::bigint, 'system', 'sla', $8, $9::jsonb FROM f WHERE $5::boolean),"
    " msg AS (INSERT INTO messages (case_id, channel, to_address, body, template)"
    "  SELECT $1::bigint, m->>'via', m->>'to', m->>'body', m->>'template'"
    "  FROM f, jsonb_array_elements($10::jsonb) m WHERE $5::boolean),"
    " nx AS (INSERT INTO jobs (kind, payload, run_at, dedup_key)"
    "  SELECT 'sla.check', $11::jsonb, to_timestamp($12::float8), $13 FROM f"
    "  WHERE $11::text IS NOT NULL"
    "  ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running') DO NOTHING)"
    " SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM up)";

struct check {
    struct rb_sla_engine *e;
    struct rb_job_run *run;
    long long case_id;
    struct rb_sla_event plan[RB_SLA_PLAN_MAX]; /* plan[0] is this run's event */
    int n;
};

static int open_status(const char *s)
{
    static const char *const closed[] = {"resolved", "closed", "rejected", "answered", NULL};
    for (const char *const *c = closed; *c; c++)
        if (strcmp(s, *c) == 0)
            return 0;
    return 1;
}

static int unacknowledged(const char *s)
{
    return !strcmp(s, "submitted") || !strcmp(s, "routed") || !strcmp(s, "transferred") ||
           !strcmp(s, "reopened");
}

static void fired(PGresult *res, const char *err, void *arg)
{
    struct check *c = arg;
    if (err) {
        rb_job_finish(c->run, 0, err, -1, 0);
    } else {
        if (c->e->m && atoi(PQgetvalue(res, 0, 1)) > 0) {
            char labels[48];
            snprintf(labels, sizeof(labels), "check=\"%s\"", check_names[c->plan[0].check]);
            rb_metrics_count(c->e->m, "rabta_sla_breaches_total",
                             "SLA events that found a case in breach.", labels, 1);
        }
        rb_job_finish(c->run, 1, NULL, 0, 0);
    }
    free(c);
}

/* Messages for the notify actions of a level, as a JSON array for fire_sql. */
static char *messages_json(const struct rb_sla_level *lv, const char *department,
                           long long case_id, const char *what)
{
    json_t *arr = json_array();
    for (size_t i = 0; lv && i < lv->n; i++) {
        const struct rb_sla_action *a = &lv->actions[i];
        if (a->type != RB_SLA_NOTIFY)
            continue;
        char *to = rb_sprintf("%s@%s", a->target, department[0] ? department : "bureau");
        char *body = rb_sprintf("Case %lld: %s", case_id, what);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "via", a->via, "to", to,
                                             "body", body, "template", "sla.escalation"));
        free(to);
        free(body);
    }
    char *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return out;
}

static void case_read(PGresult *res, const char *err, void *arg)
{
    struct check *c = arg;
    const struct rb_sla *sla = c->e->sla;
    if (err) {
        rb_job_finish(c->run, 0, err, -1, 0);
        free(c);
        return;
    }
    if (PQntuples(res) != 1 || !sla) {
        rb_job_finish(c->run, 1, NULL, 0, 0); /* no such case, or SLA switched off */
        free(c);
        return;
    }
    const char *status = PQgetvalue(res, 0, 0);
    int64_t created = atoll(PQgetvalue(res, 0, 1));
    int64_t ack_due = atoll(PQgetvalue(res, 0, 2)), resolve_due = atoll(PQgetvalue(res, 0, 3));
    int paused = strcmp(PQgetvalue(res, 0, 8), "t") == 0;
    int64_t deadline = c->plan[0].check == RB_SLA_ACK ? ack_due : resolve_due;
    /* Stale: the deadlines moved (a pause, a transfer) and a newer job carries the event. Paused:
     * sla.resume queues the next event when the citizen answers. Done: nothing more to watch. */
    if (deadline != c->plan[0].deadline || paused || !open_status(status)) {
        rb_job_finish(c->run, 1, NULL, 0, 0);
        free(c);
        return;
    }
    const struct rb_sla_policy *p =
        rb_sla_pick(sla, PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 6), PQgetvalue(res, 0, 7),
                    PQgetvalue(res, 0, 4));
    int breached = c->plan[0].check == RB_SLA_ACK ? unacknowledged(status) : 1;
    const struct rb_sla_level *lv =
        c->plan[0].check == RB_SLA_RESOLVE && (size_t)c->plan[0].level < sla->n_levels
            ? &sla->levels[c->plan[0].level]
            : NULL;
    int raise = 0, flag = 0, reassign = 0;
    for (size_t i = 0; lv && i < lv->n; i++) {
        raise += lv->actions[i].type == RB_SLA_RAISE ? lv->actions[i].amount : 0;
        flag |= lv->actions[i].type == RB_SLA_FLAG;
        reassign |= lv->actions[i].type == RB_SLA_REASSIGN;
    }
    const char *event = c->plan[0].check == RB_SLA_ACK    ? "sla.ack_breached"
                        : c->plan[0].check == RB_SLA_WARN ? "sla.warning"
                                                     : "sla.escalated";
    char data[256];
    snprintf(data, sizeof(data),
             "{\"check\":\"%s\",\"level\":%d,\"due\":%lld,\"policy\":\"%s\",\"reassigned_to\":%s,"
             "\"flagged\":%s,\"raised_by\":%d}",
             check_names[c->plan[0].check], c->plan[0].check == RB_SLA_RESOLVE ? c->plan[0].level + 1 : c->plan[0].level,
             (long long)c->plan[0].due, p ? p->name : "", reassign ? "\"supervisor\"" : "null",
             flag ? "true" : "false", raise);
    char *msgs = messages_json(lv, PQgetvalue(res, 0, 5), c->case_id,
                               lv ? "the resolution deadline has passed" : "SLA notice");
    (void)created;
    char *payload = NULL, *key = NULL, when[32] = "";
    if (c->n > 1) {
        payload = rb_sla_event_payload(c->case_id, c->plan + 1, c->n - 1);
        key = rb_sla_event_key(c->case_id, &c->plan[1]);
        snprintf(when, sizeof(when), "%lld", (long long)c->plan[1].due);
    }
    char id[24], level[12], due[24], raise_s[12];
    snprintf(id, sizeof(id), "%lld", c->case_id);
    snprintf(level, sizeof(level), "%d", c->plan[0].level);
    snprintf(due, sizeof(due), "%lld", (long long)c->plan[0].due);
    snprintf(raise_s, sizeof(raise_s), "%d", breached ? raise : 0);
    const char *params[13] = {id, check_names[c->plan[0].check], level, due,
                              breached ? "true" : "false", raise_s,
                              breached && flag ? "true" : "false", event, data, msgs,
                              payload, payload ? when : NULL, key};
    if (rb_db_query(c->e->db, fire_sql, 13, params, fired, c) != RB_OK) {
        rb_job_finish(c->run, 0, "database queue full", 1, 0);
        free(c);
    }
    free(msgs);
    free(payload);
    free(key);
}

static int valid_event(const struct rb_sla_event *ev)
{
    return ev->check >= RB_SLA_ACK && ev->check <= RB_SLA_RESOLVE && ev->level >= 0 &&
           ev->level < 1000;
}

static int parse_event(const char *payload, long long *case_id, struct rb_sla_event *plan,
                       int *n)
{
    json_t *o = json_loads(payload, 0, NULL), *rest = NULL;
    const char *check = NULL;
    json_int_t id = 0, level = 0, due = 0, deadline = 0;
    int rc = o && json_unpack(o, "{s:I, s:s, s:I, s:I, s:I, s?o}", "case_id", &id, "check",
                              &check, "level", &level, "due", &due, "deadline", &deadline,
                              "rest", &rest) == 0
                 ? RB_OK
                 : RB_EINVAL;
    *n = 0;
    if (rc == RB_OK) {
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(check, check_names[i]) == 0)
                k = i;
        plan[0] = (struct rb_sla_event){(enum rb_sla_check)k, (int)level, due, deadline};
        *n = 1;
        if (!valid_event(&plan[0]))
            rc = RB_EINVAL;
        size_t i;
        json_t *item;
        json_array_foreach(rest, i, item) {
            json_int_t c = -1, l = -1, d = 0, dl = 0;
            if (*n >= RB_SLA_PLAN_MAX || json_unpack(item, "[IIII]", &c, &l, &d, &dl) != 0) {
                rc = RB_EINVAL;
                break;
            }
            plan[*n] = (struct rb_sla_event){(enum rb_sla_check)c, (int)l, d, dl};
            if (!valid_event(&plan[(*n)++]))
                rc = RB_EINVAL;
        }
        *case_id = id;
    }
    json_decref(o);
    return rc;
}

static void run_check(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    struct check *c = rb_calloc(1, sizeof(*c));
    c->e = arg;
    c->run = run;
    if (parse_event(job->payload, &c->case_id, c->plan, &c->n) != RB_OK) {
        rb_job_finish(run, 0, "malformed sla.check payload", -1, 1);
        free(c);
        return;
    }
    char id[24];
    snprintf(id, sizeof(id), "%lld", c->case_id);
    const char *params[1] = {id};
    if (rb_db_query(c->e->db, case_sql, 1, params, case_read, c) != RB_OK) {
        rb_job_finish(run, 0, "database queue full", 1, 0);
        free(c);
    }
}

/* ---- sla.resume --------------------------------------------------------------------------- */

static const char resume_sql[] =
    "WITH up AS (UPDATE cases SET ack_due_at = to_timestamp($2::float8),"
    "   resolve_due_at = to_timestamp($3::float8)"
    "  WHERE id = $1::bigint AND paused_at IS NULL RETURNING id),"
    " ev AS (INSERT INTO case_events (case_id, actor_type, actor_id, event, data)"
    "  SELECT id, 'system', 'sla', 'sla.resumed', $4::jsonb FROM up),"
    " nx AS (INSERT INTO jobs (kind, payload, run_at, dedup_key)"
    "  SELECT 'sla.check', $5::jsonb, to_timestamp($6::float8), $7 FROM up"
    "  WHERE $5::text IS NOT NULL"
    "  ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running') DO NOTHING)"
    " SELECT count(*) FROM up";

struct resume {
    struct rb_sla_engine *e;
    struct rb_job_run *run;
    long long case_id;
    int64_t paused_at, resumed_at;
};

static void resumed(PGresult *res, const char *err, void *arg)
{
    struct resume *r = arg;
    (void)res;
    rb_job_finish(r->run, err == NULL, err, -1, 0);
    free(r);
}

static void resume_read(PGresult *res, const char *err, void *arg)
{
    struct resume *r = arg;
    const struct rb_sla *sla = r->e->sla;
    if (err || PQntuples(res) != 1 || !sla) {
        rb_job_finish(r->run, err == NULL, err, -1, 0);
        free(r);
        return;
    }
    int64_t created = atoll(PQgetvalue(res, 0, 1));
    int64_t ack_due = atoll(PQgetvalue(res, 0, 2)), resolve_due = atoll(PQgetvalue(res, 0, 3));
    const char *status = PQgetvalue(res, 0, 0);
    /* The business time left at the pause is given back from the moment of the reply. */
    int64_t new_resolve = rb_cal_resume(sla->cal, resolve_due, r->paused_at, r->resumed_at);
    int64_t new_ack = unacknowledged(status) && ack_due > r->paused_at
                          ? rb_cal_resume(sla->cal, ack_due, r->paused_at, r->resumed_at)
                          : ack_due;
    const struct rb_sla_policy *p =
        rb_sla_pick(sla, PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 6), PQgetvalue(res, 0, 7),
                    PQgetvalue(res, 0, 4));
    /* A new plan from the reply on: the acknowledgement (if still owed) and the resolution
     * ladder at the moved deadlines; warnings are not repeated after a pause. */
    struct rb_sla_event plan[RB_SLA_PLAN_MAX], ahead[RB_SLA_PLAN_MAX];
    int n = 0, m = 0;
    (void)created;
    if (p)
        n = rb_sla_plan(sla, p, created, new_ack, new_resolve,
                        (unacknowledged(status) ? 1u << RB_SLA_ACK : 0) | 1u << RB_SLA_RESOLVE,
                        plan);
    for (int i = 0; i < n; i++)
        if (plan[i].due >= r->resumed_at || plan[i].check == RB_SLA_RESOLVE)
            ahead[m++] = plan[i];
    char *payload = NULL, *key = NULL, when[24] = "";
    if (m > 0) {
        payload = rb_sla_event_payload(r->case_id, ahead, m);
        key = rb_sla_event_key(r->case_id, &ahead[0]);
        snprintf(when, sizeof(when), "%lld", (long long)ahead[0].due);
    }
    char id[24], a[24], z[24], data[128];
    snprintf(id, sizeof(id), "%lld", r->case_id);
    snprintf(a, sizeof(a), "%lld", (long long)new_ack);
    snprintf(z, sizeof(z), "%lld", (long long)new_resolve);
    snprintf(data, sizeof(data), "{\"paused_seconds\":%lld,\"resolve_due\":%lld}",
             (long long)(r->resumed_at - r->paused_at), (long long)new_resolve);
    const char *params[7] = {id, a, z, data, payload, payload ? when : NULL, key};
    if (rb_db_query(r->e->db, resume_sql, 7, params, resumed, r) != RB_OK) {
        rb_job_finish(r->run, 0, "database queue full", 1, 0);
        free(r);
    }
    free(payload);
    free(key);
}

static void run_resume(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    struct resume *r = rb_calloc(1, sizeof(*r));
    r->e = arg;
    r->run = run;
    json_t *o = json_loads(job->payload, 0, NULL);
    json_int_t id = 0;
    double p = 0, q = 0;
    if (!o || json_unpack(o, "{s:I, s:F, s:F}", "case_id", &id, "paused_at", &p, "resumed_at",
                          &q) != 0 || q < p) {
        json_decref(o);
        rb_job_finish(run, 0, "malformed sla.resume payload", -1, 1);
        free(r);
        return;
    }
    json_decref(o);
    r->case_id = id;
    r->paused_at = (int64_t)p;
    r->resumed_at = (int64_t)q;
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", r->case_id);
    const char *params[1] = {ids};
    if (rb_db_query(r->e->db, case_sql, 1, params, resume_read, r) != RB_OK) {
        rb_job_finish(run, 0, "database queue full", 1, 0);
        free(r);
    }
}

int rb_sla_engine_register(struct rb_sla_engine *e, struct rb_jobs *jobs)
{
    if (rb_jobs_register(jobs, "sla.check", run_check, e) != RB_OK ||
        rb_jobs_register(jobs, "sla.resume", run_resume, e) != RB_OK)
        return RB_ERR;
    return RB_OK;
}
