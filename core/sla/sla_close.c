/* Closing the loops: the case.autoclose job (sla_close.h). */
#include "sla/sla_close.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/common.h"
#include "base/log.h"
#include "base/process.h"
#include "cases/case_state.h"
#include "config/calendar.h"
#include "db/db.h"
#include "jobs/jobs.h"
#include "sla/sla_policy.h"

/* $1 event id. The event that started the wait, its case, and whether the case is still where
 * that event put it (no later event changed its status). */
static const char event_sql[] =
    "SELECT e.case_id, coalesce(e.to_status, ''), extract(epoch FROM e.at)::bigint, c.kind,"
    "  c.status, NOT EXISTS (SELECT 1 FROM case_events l WHERE l.case_id = e.case_id"
    "   AND l.id > e.id AND l.to_status IS NOT NULL)"
    " FROM case_events e JOIN cases c ON c.id = e.case_id WHERE e.id = $1::bigint";

/* $1 case  $2 the waiting event  $3 the state it put the case in  $4 the closing event
 * $5 its data. Closes the case only if nothing moved it since; answers 1 or 0. */
static const char close_sql[] =
    "WITH c AS (SELECT id FROM cases WHERE id = $1::bigint AND status = $3::text"
    "  AND NOT EXISTS (SELECT 1 FROM case_events l WHERE l.case_id = $1::bigint"
    "   AND l.id > $2::bigint AND l.to_status IS NOT NULL) FOR UPDATE),"
    " u AS (UPDATE cases SET status = 'closed', closed_at = now() FROM c"
    "  WHERE cases.id = c.id AND cases.status = $3::text RETURNING cases.id),"
    " ev AS (INSERT INTO case_events (case_id, actor_type, actor_id, event, from_status,"
    "   to_status, data)"
    "  SELECT id, 'system', 'sla', $4::text, $3::text, 'closed', $5::jsonb FROM u)"
    " SELECT count(*) FROM u";

struct wait {
    struct rb_server *srv; /* borrowed */
    struct rb_job_run *run;
    long long event_id;
    int64_t due; /* when the wait ends */
    int armed;   /* this is the run queued at due */
};

static void finished(PGresult *res, const char *err, void *arg)
{
    struct wait *w = arg;
    if (!err && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "1") == 0)
        rb_info("sla", "case event %lld: the wait ended; case closed", w->event_id);
    rb_job_finish(w->run, err == NULL, err, -1, 0);
    free(w);
}

/* Queues the second run at due; this run ends when the job is stored. */
static void arm(struct wait *w, long long case_id, const char *status, int64_t now)
{
    char *payload = rb_sprintf("{\"case_id\":%lld,\"event_id\":%lld,\"status\":\"%s\","
                               "\"due\":%lld}", case_id, w->event_id, status, (long long)w->due);
    char *key = rb_sprintf("autoclose:%lld", w->event_id);
    if (rb_jobs_enqueue(w->srv->db, RB_SLA_CLOSE_JOB, payload, (double)(w->due - now), key,
                        finished, w) != RB_OK) {
        rb_job_finish(w->run, 0, "database queue full", 1, 0);
        free(w);
    }
    free(payload);
    free(key);
}

/* Closes the case (the state machine's "close" by the system) with its event. */
static void close_case(struct wait *w, long long case_id, enum rb_case_kind kind,
                       enum rb_case_state from, const char *event, double waited)
{
    enum rb_case_state to;
    const char *why = NULL;
    if (rb_case_transition(kind, from, RB_CASE_DO_CLOSE, RB_CASE_BY_SYSTEM, 1, &to, &why) !=
            RB_OK ||
        to != RB_CASE_CLOSED) {
        rb_warn("sla", "case %lld: not closed after the wait: %s", case_id, why ? why : "?");
        rb_job_finish(w->run, 1, NULL, 0, 0);
        free(w);
        return;
    }
    char id[24], ev[24], data[96];
    snprintf(id, sizeof(id), "%lld", case_id);
    snprintf(ev, sizeof(ev), "%lld", w->event_id);
    snprintf(data, sizeof(data), "{\"after_event\":%lld,\"waited_seconds\":%.0f}", w->event_id,
             waited);
    const char *p[5] = {id, ev, rb_case_state_str(from), event, data};
    if (rb_db_query(w->srv->db, close_sql, 5, p, finished, w) != RB_OK) {
        rb_job_finish(w->run, 0, "database queue full", 1, 0);
        free(w);
    }
}

static void event_read(PGresult *res, const char *err, void *arg)
{
    struct wait *w = arg;
    const struct rb_sla *sla = w->srv->sla;
    enum rb_case_kind kind;
    enum rb_case_state from;
    /* Nothing to wait for: no such event, SLA off, the case moved on since. */
    if (err || PQntuples(res) != 1 || !sla ||
        strcmp(PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 4)) != 0 ||
        strcmp(PQgetvalue(res, 0, 5), "t") != 0 ||
        rb_case_kind_from_str(PQgetvalue(res, 0, 3), &kind) != RB_OK ||
        rb_case_state_from_str(PQgetvalue(res, 0, 4), &from) != RB_OK) {
        rb_job_finish(w->run, err == NULL, err, -1, 0);
        free(w);
        return;
    }
    int no_reply = from == RB_CASE_AWAITING_CITIZEN;
    double wait = no_reply ? sla->close.no_reply
                  : from == RB_CASE_RESOLVED || from == RB_CASE_ANSWERED ? sla->close.no_rating
                                                                         : 0;
    long long case_id = atoll(PQgetvalue(res, 0, 0));
    int64_t at = atoll(PQgetvalue(res, 0, 2)), now = (int64_t)time(NULL);
    if (!w->armed && wait > 0)
        w->due = no_reply ? rb_cal_add(sla->cal, at, (int64_t)wait) : at + (int64_t)wait;
    if (wait <= 0 || w->due == RB_CAL_NEVER) { /* off, or a calendar with no time left */
        rb_job_finish(w->run, 1, NULL, 0, 0);
        free(w);
    } else if (!w->armed && w->due > now) {
        arm(w, case_id, PQgetvalue(res, 0, 4), now);
    } else {
        close_case(w, case_id, kind, from, no_reply ? "closed_no_reply" : "closed_no_rating",
                   (double)(now - at));
    }
}

static void run_autoclose(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    json_t *o = json_loads(job->payload ? job->payload : "{}", 0, NULL);
    json_int_t eid = 0, due = 0;
    int ok = o && json_unpack(o, "{s:I, s?I}", "event_id", &eid, "due", &due) == 0 && eid > 0;
    json_decref(o);
    if (!ok) {
        rb_job_finish(run, 0, "malformed case.autoclose payload", -1, 1);
        return;
    }
    struct wait *w = rb_calloc(1, sizeof(*w));
    w->srv = arg;
    w->run = run;
    w->event_id = eid;
    w->due = due;
    w->armed = due > 0;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)eid);
    const char *p[1] = {id};
    if (rb_db_query(w->srv->db, event_sql, 1, p, event_read, w) != RB_OK) {
        rb_job_finish(run, 0, "database queue full", 1, 0);
        free(w);
    }
}

int rb_sla_close_register(struct rb_server *srv)
{
    return rb_jobs_register(srv->jobs, RB_SLA_CLOSE_JOB, run_autoclose, srv);
}
