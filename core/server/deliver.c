/* Handing cases to their department's plugin: the "case.deliver" job (see deliver.h). */
#include "server/deliver.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cases/case_read.h"
#include "config/config.h"
#include "jobs/jobs.h"
#include "server/plugin.h"
#include "server/server.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* $1 cases  $2 their events (arrays, pairwise). A row per pair found: tracking number, the
 * department the event sends the case to, whether the case is still there, the event's name,
 * the case as the department may see it, the event id. */
static const char deliver_sql[] =
    "SELECT c.tracking_no, d.dept, d.dept IS NOT DISTINCT FROM c.department_id, e.event,"
    " json_build_object("
    "  'tracking_no', c.tracking_no, 'kind', c.kind, 'status', c.status,"
    "  'service', c.service_id, 'category', c.category, 'priority', c.priority,"
    "  'text', c.text, 'district', c.district_id, 'lat', c.lat, 'long', c.long,"
    "  'language', c.language, 'channel', c.channel, 'anonymous', c.anonymous,"
    "  'names_official', c.names_official,"
    "  'created_at', " TS("c.created_at") ", 'ack_due_at', " TS("c.ack_due_at") ","
    "  'resolve_due_at', " TS("c.resolve_due_at") ", 'department', d.dept,"
    "  'event', e.event, 'event_id', e.id,"
    "  'transfer', CASE WHEN e.event = 'transfer' THEN json_build_object("
    "    'from_department', e.data->>'from_department', 'reason', e.note) END,"
    "  'contact_hidden', NOT " RB_SQL_CONTACT_VISIBLE ","
    "  'citizen', CASE WHEN z.id IS NOT NULL AND " RB_SQL_CONTACT_VISIBLE
    "    THEN json_build_object('phone', z.phone, 'email', z.email, 'name', z.name) END"
    " )::text, e.id"
    " FROM unnest($1::bigint[], $2::bigint[]) AS w(case_id, event_id)"
    " JOIN cases c ON c.id = w.case_id"
    " JOIN case_events e ON e.id = w.event_id AND e.case_id = c.id"
    " CROSS JOIN LATERAL (SELECT coalesce(CASE WHEN e.event = 'transfer'"
    "   THEN e.data->>'to_department' ELSE e.data->>'department' END, c.department_id) AS dept) d"
    " LEFT JOIN citizens z ON z.id = c.citizen_id";

#define DELIVER_BATCH 100

/* A batch of case.deliver runs: one query loads every case, then each goes to its plugin. */
struct batch {
    struct rb_server *srv;    /* borrowed */
    size_t n;
    struct rb_job_run **runs; /* owned array; each run borrowed until finished or handed on */
    long long *case_ids, *event_ids; /* owned; event 0: settled */
};

static void batch_free(struct batch *b)
{
    free(b->runs);
    free(b->case_ids);
    free(b->event_ids);
    free(b);
}

/* One loaded row for run: skip, or hand it to the department's plugin. */
static void deliver_one(struct rb_server *srv, struct rb_job_run *run, long long case_id,
                        PGresult *res, int row)
{
    char ctx[32];
    snprintf(ctx, sizeof(ctx), "case:%lld", case_id);
    const char *dept = PQgetisnull(res, row, 1) ? NULL : PQgetvalue(res, row, 1);
    const struct rb_department *d = dept ? rb_config_department(srv->cfg, dept) : NULL;
    if (strcmp(PQgetvalue(res, row, 2), "t") != 0) {
        /* Transferred again before this ran: the later transfer's own job delivers it. */
        rb_info(ctx, "delivery of %s to %s skipped: the case has moved on",
                PQgetvalue(res, row, 0), dept ? dept : "?");
        rb_job_finish(run, 1, NULL, 0, 0);
        return;
    }
    if (!d) {
        rb_warn(ctx, "delivery of %s: department \"%s\" is not configured; nothing to deliver",
                PQgetvalue(res, row, 0), dept ? dept : "");
        rb_job_finish(run, 1, NULL, 0, 0);
        return;
    }
    const struct rb_delivery dl = {
        .size = sizeof(dl), .case_id = case_id, .event_id = atoll(PQgetvalue(res, row, 5)),
        .event = PQgetvalue(res, row, 3), .tracking_no = PQgetvalue(res, row, 0),
        .department = d->id, .case_json = PQgetvalue(res, row, 4),
    };
    /* the plugin owns the run from here */
    if (rb_plugins_deliver(srv->plugins, d->plugin, run, rb_job_run_info(run), &dl) != RB_OK) {
        rb_debug(ctx, "delivery of %s: plugin %s takes no deliveries; done", dl.tracking_no,
                 d->plugin);
        rb_job_finish(run, 1, NULL, 0, 0);
    }
}

static void loaded(PGresult *res, const char *err, void *arg)
{
    struct batch *b = arg;
    if (err) {
        rb_warn("jobs", "delivery: cannot load %zu cases: %s", b->n, err);
        for (size_t i = 0; i < b->n; i++)
            rb_job_finish(b->runs[i], 0, err, -1, 0);
        batch_free(b);
        return;
    }
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
        long long eid = atoll(PQgetvalue(res, r, 5));
        for (size_t i = 0; i < b->n; i++)
            if (b->event_ids[i] == eid) {
                b->event_ids[i] = 0;
                deliver_one(b->srv, b->runs[i], b->case_ids[i], res, r);
            }
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->event_ids[i]) {
            rb_warn("jobs", "delivery: no case %lld with event %lld; nothing to deliver",
                    b->case_ids[i], b->event_ids[i]);
            rb_job_finish(b->runs[i], 0, "no such case or event", -1, 1);
        }
    batch_free(b);
}

static void on_deliver(struct rb_job_run **runs, size_t n, void *arg)
{
    struct batch *b = rb_calloc(1, sizeof(*b));
    b->srv = arg;
    b->runs = rb_calloc(n, sizeof(*b->runs));
    b->case_ids = rb_calloc(n, sizeof(*b->case_ids));
    b->event_ids = rb_calloc(n, sizeof(*b->event_ids));
    struct rb_sbuf cs = {0}, es = {0};
    rb_sbuf_puts(&cs, "{");
    rb_sbuf_puts(&es, "{");
    for (size_t i = 0; i < n; i++) {
        const struct rb_job *job = rb_job_run_info(runs[i]);
        json_t *p = json_loads(job->payload, 0, NULL);
        json_t *jc = json_object_get(p, "case_id"), *je = json_object_get(p, "event_id");
        long long case_id = json_is_integer(jc) ? json_integer_value(jc) : 0;
        long long event_id = json_is_integer(je) ? json_integer_value(je) : 0;
        json_decref(p);
        if (case_id <= 0 || event_id <= 0) {
            rb_warn("jobs", "case.deliver job %lld has no case_id/event_id: %s", job->id,
                    job->payload);
            rb_job_finish(runs[i], 0, "payload lacks case_id or event_id", -1, 1);
            continue;
        }
        char cid[24], eid[24];
        snprintf(cid, sizeof(cid), "%lld", case_id);
        snprintf(eid, sizeof(eid), "%lld", event_id);
        rb_sbuf_elem(&cs, cid);
        rb_sbuf_elem(&es, eid);
        b->runs[b->n] = runs[i];
        b->case_ids[b->n] = case_id;
        b->event_ids[b->n] = event_id;
        b->n++;
    }
    rb_sbuf_puts(&cs, "}");
    rb_sbuf_puts(&es, "}");
    const char *params[2] = {cs.p, es.p};
    if (b->n == 0) {
        batch_free(b);
    } else if (rb_db_query_prepared(b->srv->db, deliver_sql, 2, params, loaded, b) != RB_OK) {
        for (size_t i = 0; i < b->n; i++)
            rb_job_finish(b->runs[i], 0, "database queue full", 5, 0);
        batch_free(b);
    }
    free(cs.p);
    free(es.p);
}

int rb_deliver_register(struct rb_server *srv)
{
    return rb_jobs_register_batch(srv->jobs, "case.deliver", on_deliver, DELIVER_BATCH, srv);
}
