/* Notices to citizens on case events (notice.h). */
#include "notice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common.h"
#include "config.h"
#include "db.h"
#include "jobs.h"
#include "log.h"
#include "message.h"
#include "server.h"

/* The event, its case and the citizen's phone. $1 event id. */
static const char load_sql[] =
    "SELECT e.event, e.case_id, c.tracking_no, c.language, c.channel,"
    "  coalesce(c.department_id, ''), ci.id, ci.phone, ci.opted_out_at IS NOT NULL"
    " FROM case_events e JOIN cases c ON c.id = e.case_id"
    " LEFT JOIN citizens ci ON ci.id = c.citizen_id"
    " WHERE e.id = $1::bigint";

struct notice {
    struct rb_server *srv;  /* borrowed */
    struct rb_job_run *run; /* borrowed until rb_job_finish */
    long long event_id;
};

static void queued(long long id, const char *err, void *arg)
{
    struct notice *n = arg;
    if (err)
        rb_job_finish(n->run, 0, err, -1, 0);
    else {
        if (id == 0)
            rb_debug("notice", "event %lld: its notice was queued before", n->event_id);
        rb_job_finish(n->run, 1, NULL, 0, 0);
    }
    free(n);
}

static void finish(struct notice *n, int ok, const char *err, int permanent)
{
    rb_job_finish(n->run, ok, err, -1, permanent);
    free(n);
}

static void loaded(PGresult *res, const char *err, void *arg)
{
    struct notice *n = arg;
    if (err)
        return finish(n, 0, err, 0);
    if (PQntuples(res) != 1)
        return finish(n, 0, "no such case event", 1);
    const char *event = PQgetvalue(res, 0, 0), *lang = PQgetvalue(res, 0, 3),
               *channel = PQgetvalue(res, 0, 4), *dep_id = PQgetvalue(res, 0, 5);
    int has_phone = !PQgetisnull(res, 0, 7) && PQgetvalue(res, 0, 7)[0];
    if (!has_phone || PQgetvalue(res, 0, 8)[0] == 't')
        return finish(n, 1, NULL, 0); /* nobody to tell, or the citizen sent STOP */
    if (strcmp(event, "routed") == 0 && strcmp(channel, "sms") == 0)
        return finish(n, 1, NULL, 0); /* the SMS reply carried the tracking number */
    if (strcmp(lang, "en") != 0)
        lang = "ur";
    const struct rb_department *dep = rb_config_department(n->srv->cfg, dep_id);
    const char *dep_name = dep ? (strcmp(lang, "en") == 0 ? dep->name.en : dep->name.ur) : NULL;
    json_t *params = json_pack("{s:s, s:s}", "tracking", PQgetvalue(res, 0, 2), "department",
                               dep_name && dep_name[0] ? dep_name : dep_id);
    char name[80], why[256];
    snprintf(name, sizeof(name), "notice.%s", event);
    struct rb_message_req m = {
        .template = name, .language = lang, .params = params, .channel = "sms",
        .to = PQgetvalue(res, 0, 7), .case_id = atoll(PQgetvalue(res, 0, 1)),
        .citizen_id = atoll(PQgetvalue(res, 0, 6)), .event_id = n->event_id,
        .notice = 1, .urgent = 0,
    };
    int rc = rb_message_queue(n->srv, &m, queued, n, why, sizeof(why));
    json_decref(params);
    if (rc == RB_EINVAL) {
        rb_warn("notice", "event %lld (%s): no notice: %s", n->event_id, event, why);
        finish(n, 0, why, 1);
    } else if (rc != RB_OK) {
        finish(n, 0, "database unavailable", 0);
    }
}

static void notice_job(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    json_error_t e;
    json_t *p = json_loads(job->payload ? job->payload : "{}", 0, &e);
    json_t *ev = p ? json_object_get(p, "event_id") : NULL;
    long long event_id = json_is_integer(ev) ? (long long)json_integer_value(ev) : 0;
    json_decref(p);
    if (event_id <= 0) {
        rb_job_finish(run, 0, "payload has no event_id", -1, 1);
        return;
    }
    struct notice *n = rb_calloc(1, sizeof(*n));
    n->srv = arg;
    n->run = run;
    n->event_id = event_id;
    char id[24];
    snprintf(id, sizeof(id), "%lld", event_id);
    const char *params[1] = {id};
    if (rb_db_query(n->srv->db, load_sql, 1, params, loaded, n) != RB_OK)
        finish(n, 0, "database unavailable", 0);
}

int rb_notice_register(struct rb_server *srv)
{
    return rb_jobs_register(srv->jobs, RB_NOTICE_JOB, notice_job, srv);
}
