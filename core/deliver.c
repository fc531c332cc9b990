/* Handing cases to their department's plugin: the "case.deliver" job (see deliver.h). */
#include "deliver.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case_read.h"
#include "config.h"
#include "jobs.h"
#include "log.h"
#include "plugin.h"
#include "server.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* $1 case  $2 event. One row: tracking number, the department the event sends the case to,
 * whether the case is still there, the event's name, the case as the department may see it. */
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
    " )::text"
    " FROM cases c JOIN case_events e ON e.id = $2::bigint AND e.case_id = c.id"
    " CROSS JOIN LATERAL (SELECT coalesce(CASE WHEN e.event = 'transfer'"
    "   THEN e.data->>'to_department' ELSE e.data->>'department' END, c.department_id) AS dept) d"
    " LEFT JOIN citizens z ON z.id = c.citizen_id"
    " WHERE c.id = $1::bigint";

struct delivery_run {
    struct rb_server *srv;         /* borrowed */
    struct rb_job_run *run;        /* until finished */
    const struct rb_job_info *job; /* borrowed: valid until the run is finished */
    long long case_id, event_id;
};

static void loaded(PGresult *res, const char *err, void *arg)
{
    struct delivery_run *r = arg;
    struct rb_job_run *run = r->run;
    char ctx[32];
    snprintf(ctx, sizeof(ctx), "case:%lld", r->case_id);
    if (err) {
        rb_warn(ctx, "delivery: cannot load the case: %s", err);
        rb_job_finish(run, 0, err, -1, 0);
        free(r);
        return;
    }
    if (PQntuples(res) != 1) {
        rb_warn(ctx, "delivery: no case %lld with event %lld; nothing to deliver", r->case_id,
                r->event_id);
        rb_job_finish(run, 0, "no such case or event", -1, 1);
        free(r);
        return;
    }
    const char *dept = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
    const struct rb_department *d = dept ? rb_config_department(r->srv->cfg, dept) : NULL;
    if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
        /* Transferred again before this ran: the later transfer's own job delivers it. */
        rb_info(ctx, "delivery of %s to %s skipped: the case has moved on",
                PQgetvalue(res, 0, 0), dept ? dept : "?");
        rb_job_finish(run, 1, NULL, 0, 0);
    } else if (!d) {
        rb_warn(ctx, "delivery of %s: department \"%s\" is not configured; nothing to deliver",
                PQgetvalue(res, 0, 0), dept ? dept : "");
        rb_job_finish(run, 1, NULL, 0, 0);
    } else {
        const struct rb_delivery dl = {
            .size = sizeof(dl), .case_id = r->case_id, .event_id = r->event_id,
            .event = PQgetvalue(res, 0, 3), .tracking_no = PQgetvalue(res, 0, 0),
            .department = d->id, .case_json = PQgetvalue(res, 0, 4),
        };
        const struct rb_job_info *job = r->job;
        struct rb_plugins *ps = r->srv->plugins;
        free(r); /* the plugin owns the run from here */
        if (rb_plugins_deliver(ps, d->plugin, run, job, &dl) != RB_OK) {
            rb_debug(ctx, "delivery of %s: plugin %s takes no deliveries; done", dl.tracking_no,
                     d->plugin);
            rb_job_finish(run, 1, NULL, 0, 0);
        }
        return;
    }
    free(r);
}

static void on_deliver(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    struct rb_server *srv = arg;
    json_t *p = json_loads(job->payload, 0, NULL);
    json_t *jc = json_object_get(p, "case_id"), *je = json_object_get(p, "event_id");
    long long case_id = json_is_integer(jc) ? json_integer_value(jc) : 0;
    long long event_id = json_is_integer(je) ? json_integer_value(je) : 0;
    json_decref(p);
    if (case_id <= 0 || event_id <= 0) {
        rb_warn("jobs", "case.deliver job %lld has no case_id/event_id: %s", job->id,
                job->payload);
        rb_job_finish(run, 0, "payload lacks case_id or event_id", -1, 1);
        return;
    }
    struct delivery_run *r = rb_calloc(1, sizeof(*r));
    r->srv = srv;
    r->run = run;
    r->job = job;
    r->case_id = case_id;
    r->event_id = event_id;
    char cid[24], eid[24];
    snprintf(cid, sizeof(cid), "%lld", case_id);
    snprintf(eid, sizeof(eid), "%lld", event_id);
    const char *params[2] = {cid, eid};
    if (rb_db_query(srv->db, deliver_sql, 2, params, loaded, r) != RB_OK) {
        free(r);
        rb_job_finish(run, 0, "database queue full", 5, 0);
    }
}

int rb_deliver_register(struct rb_server *srv)
{
    return rb_jobs_register(srv->jobs, "case.deliver", on_deliver, srv);
}
