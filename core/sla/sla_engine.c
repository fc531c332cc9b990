/* The SLA engine: sla.check and sla.resume jobs. See sla_engine.h. */
#include "sla/sla_engine.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "config/calendar.h"
#include "db/db.h"
#include "jobs/jobs.h"

static const char *const check_names[] = {"ack", "warn", "resolve"};

/* sla.check runs handled by one read and one write; the claim (jobs: batch) bounds it too. */
#define SLA_BATCH_MAX 1000

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

/* ---- firing: one statement for a whole batch of SLA events ------------------------------- */

static const char case_sql[] =
    "SELECT status, extract(epoch from created_at)::bigint, "
    "  coalesce(extract(epoch from ack_due_at)::bigint, 0), "
    "  coalesce(extract(epoch from resolve_due_at)::bigint, 0), coalesce(sla_policy, ''), "
    "  coalesce(department_id, ''), coalesce(service_id, ''), kind, paused_at IS NOT NULL "
    "FROM cases WHERE id = $1::bigint";

/* The same columns for many cases, by id (column 9), in id order. */
static const char cases_sql[] =
    "SELECT status, extract(epoch from created_at)::bigint, "
    "  coalesce(extract(epoch from ack_due_at)::bigint, 0), "
    "  coalesce(extract(epoch from resolve_due_at)::bigint, 0), coalesce(sla_policy, ''), "
    "  coalesce(department_id, ''), coalesce(service_id, ''), kind, paused_at IS NOT NULL, id "
    "FROM cases WHERE id = ANY($1::bigint[]) ORDER BY id";

/* The open states, as the inbox lists them (a supervisor's load is their open cases). */
#define OPEN_STATES                                                                            \
    "('routed', 'acknowledged', 'in_progress', 'awaiting_citizen', 'transferred', 'reopened')"

/* A staff member s is not the official a case names (n: cases.names_official; the rule of
 * rb_staff_names_match: case, surrounding and repeated blanks ignored). */
#define NOT_NAMED(s, n)                                                                        \
    "(" n " IS NULL OR lower(regexp_replace(btrim(" n "), '\\s+', ' ', 'g')) NOT IN"           \
    " (lower(" s ".username), lower(regexp_replace(btrim(" s ".display_name), '\\s+', ' ',"    \
    " 'g'))))"

/* Every firing of the batch ($1: a JSON array of items, see fire_item; $2: the batch's job
 * ids, deleted with the work so that the runs end in the same transaction) recorded once in
 * sla_firings (its primary key is what makes an event fire exactly once, with any number of
 * processes or a retried run); for the firings that are new and in breach: the level's
 * actions on the case (summed per case), the case event, then each new firing's next event
 * queued. reassign: the active supervisors of the case's department who are not the official
 * it names, by fewest open cases assigned, ties by username; the cases of one batch and
 * department are dealt out in that order (the k-th to the (k mod n)-th), each with an event
 * "assigned", or "sla.unreachable" when there is no such supervisor. The people to tell
 * (data.notify) are resolved by ONE job "sla.notify" for the batch's events
 * (core/messages/escalation.c). Answers the breaches per check kind and the reassignments
 * that found nobody ("unreachable.reassign"). */
static const char fire_sql[] =
    "WITH t AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(case_id bigint,"
    "   check_kind text, level int, due float8, breached boolean, raise int, flag boolean,"
    "   reassign boolean, event text, data jsonb, next jsonb, next_at float8, next_key text)),"
    " f AS (INSERT INTO sla_firings (case_id, check_kind, level, due, breached, lateness)"
    "  SELECT case_id, check_kind, level, to_timestamp(due), breached,"
    "         now() - to_timestamp(due) FROM t ORDER BY case_id"
    "  ON CONFLICT DO NOTHING RETURNING case_id, check_kind, level, due),"
    " ft AS (SELECT t.* FROM t JOIN f ON f.case_id = t.case_id AND f.check_kind = t.check_kind"
    "  AND f.level = t.level AND f.due = to_timestamp(t.due)),"
    " a AS (SELECT case_id, sum(raise)::int AS raise, bool_or(flag) AS flag,"
    "  bool_or(reassign) AS reassign,"
    "  max(CASE WHEN check_kind IN ('resolve', 'citizen') THEN level + 1 ELSE 0 END) AS esc"
    "  FROM ft WHERE breached GROUP BY case_id),"
    " rs AS (SELECT a.case_id, a.esc, c.department_id AS dep, c.names_official AS named,"
    "  row_number() OVER (PARTITION BY c.department_id ORDER BY a.case_id) - 1 AS k"
    "  FROM a JOIN cases c ON c.id = a.case_id WHERE a.reassign),"
    " sup AS (SELECT s.id, s.username, s.display_name, s.department_id,"
    "  (SELECT count(*) FROM cases o WHERE o.assigned_staff_id = s.id"
    "   AND o.status IN " OPEN_STATES ") AS load"
    "  FROM staff s WHERE s.role = 'supervisor' AND s.disabled_at IS NULL"
    "  AND s.department_id IN (SELECT dep FROM rs)),"
    " pick AS (SELECT rs.case_id, rs.esc, p.id AS staff_id, p.username FROM rs LEFT JOIN LATERAL"
    "  (SELECT x.id, x.username FROM (SELECT e.id, e.username,"
    "    row_number() OVER (ORDER BY e.load, e.username) - 1 AS r, count(*) OVER () AS n"
    "    FROM sup e WHERE e.department_id = rs.dep AND " NOT_NAMED("e", "rs.named") ") x"
    "   WHERE x.r = rs.k % x.n) p ON true),"
    " up AS (UPDATE cases c SET updated_at = now(),"
    "   priority = greatest(1, c.priority - a.raise),"
    "   escalation_level = greatest(c.escalation_level, a.esc),"
    "   flagged_oversight_at = CASE WHEN a.flag THEN coalesce(c.flagged_oversight_at, now())"
    "                          ELSE c.flagged_oversight_at END,"
    "   assigned_staff_id = coalesce(pick.staff_id, c.assigned_staff_id)"
    "  FROM a LEFT JOIN pick ON pick.case_id = a.case_id WHERE c.id = a.case_id"
    "  RETURNING c.id),"
    " ev AS (INSERT INTO case_events (case_id, actor_type, actor_id, event, data)"
    "  SELECT case_id, 'system', 'sla', event, data FROM ft WHERE breached ORDER BY case_id"
    "  RETURNING id, data),"
    " asg AS (INSERT INTO case_events (case_id, actor_type, actor_id, event, data)"
    "  SELECT case_id, 'system', 'sla',"
    "   CASE WHEN staff_id IS NULL THEN 'sla.unreachable' ELSE 'assigned' END,"
    "   CASE WHEN staff_id IS NULL THEN jsonb_build_object('action', 'reassign', 'target',"
    "     'supervisor', 'level', esc,"
    "     'reason', 'no active supervisor in the department can take it')"
    "   ELSE jsonb_build_object('assigned_to', username, 'by', 'sla', 'level', esc) END"
    "  FROM pick ORDER BY case_id RETURNING event),"
    " nf AS (INSERT INTO jobs (kind, payload)"
    "  SELECT 'sla.notify', jsonb_build_object('events', jsonb_agg(id ORDER BY id)) FROM ev"
    "  WHERE jsonb_array_length(coalesce(data->'notify', '[]')) > 0 HAVING count(*) > 0),"
    " nx AS (INSERT INTO jobs (kind, payload, run_at, dedup_key)"
    "  SELECT 'sla.check', next, to_timestamp(next_at), next_key FROM ft"
    "  WHERE next IS NOT NULL ORDER BY next_at"
    "  ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running') DO NOTHING),"
    " done AS (DELETE FROM jobs WHERE id = ANY($2::bigint[]) AND state = 'running')"
    " SELECT check_kind, count(*) FROM ft WHERE breached GROUP BY check_kind"
    " UNION ALL SELECT 'unreachable.reassign', count(*) FROM asg"
    "  WHERE event = 'sla.unreachable' HAVING count(*) > 0";

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

/* The notify actions of a level as [[target, via], ...], for the event's data. */
static json_t *notify_json(const struct rb_sla_level *lv)
{
    json_t *arr = json_array();
    for (size_t i = 0; lv && i < lv->n; i++)
        if (lv->actions[i].type == RB_SLA_NOTIFY)
            json_array_append_new(arr, json_pack("[s, s]", lv->actions[i].target,
                                                 lv->actions[i].via));
    return arr;
}

/* One firing of a batch: check_kind ("ack", "warn", "resolve", "citizen"), level (0-based),
 * due, whether the case is in breach, the level's actions (lv; NULL: none) and the next event
 * of the plan (next[0..nnext), may be empty). Returns a new JSON object for fire_sql. */
static json_t *fire_item(long long case_id, const char *check_kind, int level, int64_t due,
                         int breached, const struct rb_sla_level *lv, const char *policy,
                         const struct rb_sla_event *next, int nnext)
{
    int raise = 0, flag = 0, reassign = 0;
    for (size_t i = 0; lv && i < lv->n; i++) {
        raise += lv->actions[i].type == RB_SLA_RAISE ? lv->actions[i].amount : 0;
        flag |= lv->actions[i].type == RB_SLA_FLAG;
        reassign |= lv->actions[i].type == RB_SLA_REASSIGN;
    }
    int escalates = !strcmp(check_kind, "resolve") || !strcmp(check_kind, "citizen");
    const char *event = !strcmp(check_kind, "ack")    ? "sla.ack_breached"
                        : !strcmp(check_kind, "warn") ? "sla.warning"
                                                      : "sla.escalated";
    json_t *data = json_pack("{s:s, s:i, s:I, s:s, s:s?, s:b, s:i}", "check", check_kind,
                             "level", escalates ? level + 1 : level, "due", (json_int_t)due,
                             "policy", policy ? policy : "", "reassigned_to",
                             reassign ? "supervisor" : NULL, "flagged", flag, "raised_by", raise);
    json_t *notify = notify_json(lv);
    if (json_array_size(notify) > 0)
        json_object_set_new(data, "notify", notify);
    else
        json_decref(notify);
    json_t *it = json_pack("{s:I, s:s, s:i, s:I, s:b, s:i, s:b, s:b, s:s, s:o}", "case_id",
                           (json_int_t)case_id, "check_kind", check_kind, "level", level, "due",
                           (json_int_t)due, "breached", breached, "raise", breached ? raise : 0,
                           "flag", breached && flag, "reassign", breached && reassign, "event",
                           event, "data", data);
    if (nnext > 0) {
        char *payload = rb_sla_event_payload(case_id, next, nnext);
        char *key = rb_sla_event_key(case_id, &next[0]);
        json_object_set_new(it, "next", json_loads(payload, 0, NULL));
        json_object_set_new(it, "next_at", json_integer(next[0].due));
        json_object_set_new(it, "next_key", json_string(key));
        free(payload);
        free(key);
    }
    return it;
}

/* Appends "id" to the array literal being built in *buf ("{1,2" ... closed by the caller). */
static void append_id(char **buf, size_t *len, size_t *cap, long long id)
{
    if (*len + 24 >= *cap) {
        *cap = *cap * 2 + 64;
        *buf = rb_realloc(*buf, *cap);
    }
    *len += (size_t)snprintf(*buf + *len, *cap - *len, "%s%lld", *len > 1 ? "," : "", id);
}

struct fire {
    struct rb_sla_engine *e;
    struct rb_job_run **runs; /* owned array; the runs are finished when the statement ends */
    size_t n;
};

static void fired(PGresult *res, const char *err, void *arg)
{
    struct fire *f = arg;
    for (int i = 0; !err && f->e->m && i < PQntuples(res); i++) {
        char labels[64];
        const char *what = PQgetvalue(res, i, 0);
        if (strcmp(what, "unreachable.reassign") == 0) {
            rb_warn("sla", "%s case(s) to reassign found no active supervisor in their "
                           "department (case event sla.unreachable)", PQgetvalue(res, i, 1));
            rb_metrics_count(f->e->m, RB_SLA_UNREACHABLE_METRIC, RB_SLA_UNREACHABLE_HELP,
                             "action=\"reassign\",target=\"supervisor\"",
                             atof(PQgetvalue(res, i, 1)));
            continue;
        }
        snprintf(labels, sizeof(labels), "check=\"%s\"", what);
        rb_metrics_count(f->e->m, "rabta_sla_breaches_total",
                         "SLA events that found a case in breach.", labels,
                         atof(PQgetvalue(res, i, 1)));
    }
    for (size_t i = 0; i < f->n; i++) {
        if (err)
            rb_job_finish(f->runs[i], 0, err, -1, 0);
        else
            rb_job_finish_deleted(f->runs[i]);
    }
    free(f->runs);
    free(f);
}

/* Sends the firings (items: a JSON array; taken) and finishes runs[0..n) (taken) with the
 * outcome. */
static void fire_items(struct rb_sla_engine *e, json_t *items, struct rb_job_run **runs,
                       size_t n)
{
    struct fire *f = rb_calloc(1, sizeof(*f));
    f->e = e;
    f->runs = runs;
    f->n = n;
    char *text = json_dumps(items, JSON_COMPACT);
    json_decref(items);
    size_t cap = 64, len = 1;
    char *ids = rb_malloc(cap);
    ids[0] = '{';
    for (size_t i = 0; i < n; i++)
        append_id(&ids, &len, &cap, rb_job_run_info(runs[i])->id);
    ids[len++] = '}';
    ids[len] = '\0';
    const char *params[2] = {text, ids};
    if (rb_db_query(e->db, fire_sql, 2, params, fired, f) != RB_OK)
        fired(NULL, "database queue full", f);
    free(text);
    free(ids);
}

/* ---- sla.check, set by set ---------------------------------------------------------------- */

struct check {
    struct rb_job_run *run;
    long long case_id;
    struct rb_sla_event plan[RB_SLA_PLAN_MAX]; /* plan[0] is this run's event */
    int n;
};

struct checks {
    struct rb_sla_engine *e;
    struct check *v; /* owned */
    size_t n;
};

/* The row of case id in res (ordered by id, column 9), or -1. */
static int find_case(PGresult *res, long long id)
{
    int lo = 0, hi = PQntuples(res) - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        long long v = atoll(PQgetvalue(res, mid, 9));
        if (v == id)
            return mid;
        if (v < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* The firing of one check, or NULL when there is nothing to record: no such case, SLA off,
 * stale (the deadlines moved — a pause, a transfer — and a newer job carries the event),
 * paused (sla.resume queues the next event when the citizen answers) or closed. */
static json_t *check_item(const struct rb_sla *sla, const struct check *c, PGresult *res)
{
    int row = find_case(res, c->case_id);
    if (row < 0 || !sla)
        return NULL;
    const char *status = PQgetvalue(res, row, 0);
    int64_t ack_due = atoll(PQgetvalue(res, row, 2)), resolve_due = atoll(PQgetvalue(res, row, 3));
    int paused = strcmp(PQgetvalue(res, row, 8), "t") == 0;
    const struct rb_sla_event *ev = &c->plan[0];
    int64_t deadline = ev->check == RB_SLA_ACK ? ack_due : resolve_due;
    if (deadline != ev->deadline || paused || !open_status(status))
        return NULL;
    const struct rb_sla_policy *p =
        rb_sla_pick(sla, PQgetvalue(res, row, 5), PQgetvalue(res, row, 6),
                    PQgetvalue(res, row, 7), PQgetvalue(res, row, 4));
    int breached = ev->check == RB_SLA_ACK ? unacknowledged(status) : 1;
    const struct rb_sla_level *lv = ev->check == RB_SLA_RESOLVE && (size_t)ev->level < sla->n_levels
                                        ? &sla->levels[ev->level]
                                        : NULL;
    return fire_item(c->case_id, check_names[ev->check], ev->level, ev->due, breached, lv,
                     p ? p->name : "", c->plan + 1, c->n - 1);
}

static void cases_read(PGresult *res, const char *err, void *arg)
{
    struct checks *b = arg;
    json_t *items = json_array();
    struct rb_job_run **runs = rb_calloc(b->n ? b->n : 1, sizeof(*runs));
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        json_t *it = err ? NULL : check_item(b->e->sla, &b->v[i], res);
        if (err) {
            rb_job_finish(b->v[i].run, 0, err, -1, 0);
        } else if (!it) {
            rb_job_finish(b->v[i].run, 1, NULL, 0, 0);
        } else {
            json_array_append_new(items, it);
            runs[n++] = b->v[i].run;
        }
    }
    if (n > 0) {
        fire_items(b->e, items, runs, n);
    } else {
        json_decref(items);
        free(runs);
    }
    free(b->v);
    free(b);
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
        if (!valid_event(&plan[0]) || id <= 0)
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

/* A batch of sla.check runs: one query reads every case, one statement fires every event. */
static void run_checks(struct rb_job_run **runs, size_t n, void *arg)
{
    struct checks *b = rb_calloc(1, sizeof(*b));
    b->e = arg;
    b->v = rb_calloc(n, sizeof(*b->v));
    size_t cap = 64, len = 1;
    char *ids = rb_malloc(cap);
    ids[0] = '{';
    for (size_t i = 0; i < n; i++) {
        struct check *c = &b->v[b->n];
        c->run = runs[i];
        if (parse_event(rb_job_run_info(runs[i])->payload, &c->case_id, c->plan, &c->n) !=
            RB_OK) {
            rb_job_finish(runs[i], 0, "malformed sla.check payload", -1, 1);
            continue;
        }
        append_id(&ids, &len, &cap, c->case_id);
        b->n++;
    }
    ids[len++] = '}';
    ids[len] = '\0';
    const char *params[1] = {ids};
    if (b->n == 0 || rb_db_query(b->e->db, cases_sql, 1, params, cases_read, b) != RB_OK) {
        for (size_t i = 0; i < b->n; i++)
            rb_job_finish(b->v[i].run, 0, "database queue full", 1, 0);
        free(b->v);
        free(b);
    }
    free(ids);
}

/* Runs sql with the one parameter id for a job's state; when the query cannot be queued, fails
 * the run for a retry and frees state. */
static void query_one(struct rb_sla_engine *e, struct rb_job_run *run, const char *sql,
                      long long id, rb_db_fn fn, void *state)
{
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", id);
    const char *params[1] = {ids};
    if (rb_db_query(e->db, sql, 1, params, fn, state) != RB_OK) {
        rb_job_finish(run, 0, "database queue full", 1, 0);
        free(state);
    }
}

/* ---- sla.resume --------------------------------------------------------------------------- */

/* The CTE that queues a case's next sla.check (the parameters $P payload or NULL, $A its
 * run_at in epoch seconds, $K its dedup key), once per row of CTE "up". */
#define NEXT_CHECK_CTE(P, A, K)                                                               \
    " nx AS (INSERT INTO jobs (kind, payload, run_at, dedup_key)"                              \
    "  SELECT 'sla.check', " P "::jsonb, to_timestamp(" A "::float8), " K " FROM up"           \
    "  WHERE " P "::text IS NOT NULL"                                                          \
    "  ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running') DO NOTHING)"

/* A transfer after the pause has started the clock again from its own time (sla.transfer):
 * then there is nothing left to resume ($8: the pause's start). */
static const char resume_sql[] =
    "WITH up AS (UPDATE cases SET ack_due_at = to_timestamp($2::float8),"
    "   resolve_due_at = to_timestamp($3::float8)"
    "  WHERE id = $1::bigint AND paused_at IS NULL AND NOT EXISTS (SELECT 1 FROM case_events"
    "   WHERE case_id = $1::bigint AND event = 'transfer' AND at >= to_timestamp($8::float8))"
    "  RETURNING id),"
    " ev AS (INSERT INTO case_events (case_id, actor_type, actor_id, event, data)"
    "  SELECT id, 'system', 'sla', 'sla.resumed', $4::jsonb FROM up),"
    NEXT_CHECK_CTE("$5", "$6", "$7")
    " SELECT count(*) FROM up";

struct resume {
    struct rb_sla_engine *e;
    struct rb_job_run *run;
    long long case_id;
    int64_t paused_at, resumed_at; /* whole seconds, for the calendar */
    double paused_exact;           /* the pause as stored, to compare with events' times */
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
    /* Not truncated: a transfer earlier in the same second as the pause is before it. */
    char paused[40];
    snprintf(paused, sizeof(paused), "%.6f", r->paused_exact);
    const char *params[8] = {id, a, z, data, payload, payload ? when : NULL, key, paused};
    if (rb_db_query(r->e->db, resume_sql, 8, params, resumed, r) != RB_OK) {
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
    r->paused_exact = p;
    r->resumed_at = (int64_t)q;
    query_one(r->e, run, case_sql, r->case_id, resume_read, r);
}

/* ---- sla.citizen: a citizen's "unsatisfied" rating climbs one level ---------------------- */

/* $1 event id. The app plugin has already raised escalation_level to data.level (1-based)
 * and reopened the case in the rating's transaction; this performs that level's actions. */
static const char request_sql[] =
    "SELECT e.case_id, extract(epoch from e.at)::bigint, e.data->>'level',"
    "  coalesce(c.department_id, ''), coalesce(c.service_id, ''), c.kind,"
    "  coalesce(c.sla_policy, '')"
    " FROM case_events e JOIN cases c ON c.id = e.case_id"
    " WHERE e.id = $1::bigint AND e.event = 'escalation.requested'";

struct event_job {
    struct rb_sla_engine *e;
    struct rb_job_run *run;
    long long case_id, event_id;
};

/* The payload case event jobs carry (migration 0011): {"case_id", "event_id", "event"}. */
static struct event_job *event_job_new(struct rb_sla_engine *e, struct rb_job_run *run,
                                       const struct rb_job_info *job)
{
    json_t *o = json_loads(job->payload, 0, NULL);
    json_int_t cid = 0, eid = 0;
    int ok = o && json_unpack(o, "{s:I, s:I}", "case_id", &cid, "event_id", &eid) == 0 &&
             cid > 0 && eid > 0;
    json_decref(o);
    if (!ok) {
        rb_job_finish(run, 0, "malformed case event job payload", -1, 1);
        return NULL;
    }
    struct event_job *j = rb_calloc(1, sizeof(*j));
    j->e = e;
    j->run = run;
    j->case_id = cid;
    j->event_id = eid;
    return j;
}

static void request_read(PGresult *res, const char *err, void *arg)
{
    struct event_job *j = arg;
    const struct rb_sla *sla = j->e->sla;
    const char *level = err || PQntuples(res) != 1 ? NULL : PQgetvalue(res, 0, 2);
    long lv = level && *level && strspn(level, "0123456789") == strlen(level) && strlen(level) < 6
                  ? atol(level)
                  : 0;
    if (err || !sla || lv < 1 || (size_t)lv > sla->n_levels) {
        /* No such event, SLA off, or past the top of the ladder: nothing to climb. */
        if (!err && level)
            rb_info("sla", "case %lld: the citizen asked to escalate to level %s, but the "
                           "ladder has %zu levels", j->case_id, level, sla ? sla->n_levels : 0);
        rb_job_finish(j->run, err == NULL, err, -1, 0);
        free(j);
        return;
    }
    const struct rb_sla_policy *p =
        rb_sla_pick(sla, PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5),
                    PQgetvalue(res, 0, 6));
    /* Keyed on the request's own time: a retried run records nothing twice. */
    json_t *items = json_array();
    json_array_append_new(items, fire_item(j->case_id, "citizen", (int)lv - 1,
                                           atoll(PQgetvalue(res, 0, 1)), 1,
                                           &sla->levels[lv - 1], p ? p->name : "", NULL,
                                           0));
    struct rb_job_run **runs = rb_malloc(sizeof(*runs));
    runs[0] = j->run;
    fire_items(j->e, items, runs, 1);
    free(j);
}

static void run_request(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    struct event_job *j = event_job_new(arg, run, job);
    if (j)
        query_one(j->e, run, request_sql, j->event_id, request_read, j);
}

/* ---- sla.transfer: a transfer restarts the clock under the new department's policy ------ */

/* $1 event id. The transfer, and the case as it is now. */
static const char transfer_read_sql[] =
    "SELECT e.case_id, extract(epoch from e.at)::bigint, coalesce(e.data->>'to_department', ''),"
    "  coalesce(c.department_id, ''), coalesce(c.service_id, ''), c.kind,"
    "  coalesce(c.sla_policy, ''), c.status, c.paused_at IS NOT NULL"
    " FROM case_events e JOIN cases c ON c.id = e.case_id"
    " WHERE e.id = $1::bigint AND e.event = 'transfer'";

/* $1 case  $2 ack due  $3 resolve due  $4 department  $5 policy  $6 event data  $7 next job
 * payload  $8 its run_at  $9 its dedup key. New deadlines (once: a retried run finds them
 * stored and changes nothing), the old plan's pending job replaced by the new plan's. */
static const char transfer_sql[] =
    "WITH up AS (UPDATE cases SET ack_due_at = to_timestamp($2::float8),"
    "   resolve_due_at = to_timestamp($3::float8), sla_policy = $5"
    "  WHERE id = $1::bigint AND department_id = $4"
    "   AND (ack_due_at, resolve_due_at) IS DISTINCT FROM"
    "       (to_timestamp($2::float8), to_timestamp($3::float8)) RETURNING id),"
    " old AS (DELETE FROM jobs WHERE kind = 'sla.check' AND state = 'queued'"
    "  AND (payload->>'case_id')::bigint = $1::bigint AND EXISTS (SELECT 1 FROM up)),"
    " ev AS (INSERT INTO case_events (case_id, actor_type, actor_id, event, data)"
    "  SELECT id, 'system', 'sla', 'sla.recomputed', $6::jsonb FROM up),"
    NEXT_CHECK_CTE("$7", "$8", "$9")
    " SELECT count(*) FROM up";

static void transferred(PGresult *res, const char *err, void *arg)
{
    struct event_job *j = arg;
    (void)res;
    rb_job_finish(j->run, err == NULL, err, -1, 0);
    free(j);
}

static void transfer_read(PGresult *res, const char *err, void *arg)
{
    struct event_job *j = arg;
    const struct rb_sla *sla = j->e->sla;
    /* Nothing to do: no such event, SLA off, a later transfer moved the case on (its own job
     * recomputes), the case is closed or waits for the citizen (sla.resume plans then). */
    if (err || PQntuples(res) != 1 || !sla ||
        strcmp(PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3)) != 0 ||
        !open_status(PQgetvalue(res, 0, 7)) || strcmp(PQgetvalue(res, 0, 8), "t") == 0) {
        rb_job_finish(j->run, err == NULL, err, -1, 0);
        free(j);
        return;
    }
    const char *dept = PQgetvalue(res, 0, 3);
    const struct rb_sla_policy *p = rb_sla_pick(sla, dept, PQgetvalue(res, 0, 4),
                                                PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 6));
    int64_t at = atoll(PQgetvalue(res, 0, 1)), ack = 0, resolve = 0;
    struct rb_sla_event plan[RB_SLA_PLAN_MAX];
    int n = 0;
    if (p) {
        rb_sla_deadlines(sla, p, at, &ack, &resolve);
        n = rb_sla_plan(sla, p, at, ack, resolve,
                        1u << RB_SLA_ACK | 1u << RB_SLA_WARN | 1u << RB_SLA_RESOLVE, plan);
    }
    if (n == 0) { /* no policy or no working time left: keep what the case has */
        rb_job_finish(j->run, 1, NULL, 0, 0);
        free(j);
        return;
    }
    char *payload = rb_sla_event_payload(j->case_id, plan, n);
    char *key = rb_sla_event_key(j->case_id, &plan[0]);
    char id[24], a[24], z[24], when[24];
    snprintf(id, sizeof(id), "%lld", j->case_id);
    snprintf(a, sizeof(a), "%lld", (long long)ack);
    snprintf(z, sizeof(z), "%lld", (long long)resolve);
    snprintf(when, sizeof(when), "%lld", (long long)plan[0].due);
    json_t *d = json_pack("{s:s, s:s, s:I, s:I, s:I}", "reason", "transfer", "policy", p->name,
                          "from", (json_int_t)at, "ack_due", (json_int_t)ack, "resolve_due",
                          (json_int_t)resolve);
    char *data = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    const char *params[9] = {id, a, z, dept, p->name, data, payload, when, key};
    if (rb_db_query(j->e->db, transfer_sql, 9, params, transferred, j) != RB_OK) {
        rb_job_finish(j->run, 0, "database queue full", 1, 0);
        free(j);
    }
    free(data);
    free(payload);
    free(key);
}

static void run_transfer(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    struct event_job *j = event_job_new(arg, run, job);
    if (j)
        query_one(j->e, run, transfer_read_sql, j->event_id, transfer_read, j);
}

int rb_sla_engine_register(struct rb_sla_engine *e, struct rb_jobs *jobs)
{
    if (rb_jobs_register_batch(jobs, "sla.check", run_checks, SLA_BATCH_MAX, e) != RB_OK ||
        rb_jobs_register(jobs, "sla.resume", run_resume, e) != RB_OK ||
        rb_jobs_register(jobs, "sla.citizen", run_request, e) != RB_OK ||
        rb_jobs_register(jobs, "sla.transfer", run_transfer, e) != RB_OK)
        return RB_ERR;
    return RB_OK;
}
