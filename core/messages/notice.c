/* Notices to citizens on case events (notice.h). */
#include "messages/notice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/common.h"
#include "base/log.h"
#include "base/process.h"
#include "config/config.h"
#include "db/db.h"
#include "jobs/jobs.h"
#include "messages/message.h"
#include "messages/sender.h"

/* The events, their cases and the citizens' phones and e-mail addresses. $1 event ids. */
static const char load_sql[] =
    "SELECT e.id, e.event, e.case_id, c.tracking_no, c.language, c.channel,"
    "  coalesce(c.department_id, ''), ci.id, ci.phone, ci.opted_out_at IS NOT NULL, ci.email"
    " FROM case_events e JOIN cases c ON c.id = e.case_id"
    " LEFT JOIN citizens ci ON ci.id = c.citizen_id"
    " WHERE e.id = ANY($1::bigint[])";

#define NOTICE_BATCH 200

/* A batch of notice runs: one query loads every event, one statement stores every notice. */
struct batch {
    struct rb_server *srv;     /* borrowed */
    size_t n;
    struct rb_job_run **runs;  /* owned array; each run borrowed until finished */
    long long *event_ids;      /* owned; 0: finished already */
    size_t nmsg;
    struct rb_job_run **msg_runs; /* owned; the runs whose notice is being stored */
};

static void batch_free(struct batch *b)
{
    free(b->runs);
    free(b->event_ids);
    free(b->msg_runs);
    free(b);
}

static void stored(PGresult *res, const char *err, void *arg)
{
    (void)res;
    struct batch *b = arg;
    for (size_t i = 0; i < b->nmsg; i++)
        rb_job_finish(b->msg_runs[i], err ? 0 : 1, err, -1, 0);
    batch_free(b);
}

/* How row r's citizen hears of it: by SMS to their phone, else by e-mail to their address,
 * each only when a plugin sends that channel; NULL: nobody to tell. *to borrowed from res. */
static const char *contact(struct rb_server *srv, const PGresult *res, int r, const char **to)
{
    if (!PQgetisnull(res, r, 8) && PQgetvalue(res, r, 8)[0] && rb_sender_has(srv, "sms")) {
        *to = PQgetvalue(res, r, 8);
        return "sms";
    }
    if (!PQgetisnull(res, r, 10) && PQgetvalue(res, r, 10)[0] && rb_sender_has(srv, "email")) {
        *to = PQgetvalue(res, r, 10);
        return "email";
    }
    return NULL;
}

static void loaded(PGresult *res, const char *err, void *arg)
{
    struct batch *b = arg;
    if (err) {
        for (size_t i = 0; i < b->n; i++)
            if (b->event_ids[i])
                rb_job_finish(b->runs[i], 0, err, -1, 0);
        batch_free(b);
        return;
    }
    int rows = PQntuples(res);
    const struct rb_message_req **reqs = rb_calloc((size_t)rows + 1, sizeof(*reqs));
    struct rb_message_req *mr = rb_calloc((size_t)rows + 1, sizeof(*mr));
    json_t **params = rb_calloc((size_t)rows + 1, sizeof(*params));
    char (*names)[80] = rb_calloc((size_t)rows + 1, sizeof(*names));
    struct rb_job_run **req_run = rb_calloc((size_t)rows + 1, sizeof(*req_run));
    size_t nreq = 0;
    for (int r = 0; r < rows; r++) {
        long long eid = atoll(PQgetvalue(res, r, 0));
        size_t i = 0;
        while (i < b->n && b->event_ids[i] != eid)
            i++;
        if (i == b->n)
            continue;
        struct rb_job_run *run = b->runs[i];
        b->event_ids[i] = 0;
        /* Another run of the batch for the same event: the one notice (unique per event)
         * serves it too. */
        for (size_t j = i + 1; j < b->n; j++)
            if (b->event_ids[j] == eid) {
                b->event_ids[j] = 0;
                rb_job_finish(b->runs[j], 1, NULL, 0, 0);
            }
        const char *event = PQgetvalue(res, r, 1), *lang = PQgetvalue(res, r, 4),
                   *channel = PQgetvalue(res, r, 5), *dep_id = PQgetvalue(res, r, 6);
        const char *to = NULL, *via = contact(b->srv, res, r, &to);
        if (!via || PQgetvalue(res, r, 9)[0] == 't' ||
            (strcmp(event, "routed") == 0 && strcmp(channel, "sms") == 0)) {
            /* nobody to tell, the citizen sent STOP, or the SMS reply carried the number */
            rb_job_finish(run, 1, NULL, 0, 0);
            continue;
        }
        if (strcmp(lang, "en") != 0)
            lang = "ur";
        const struct rb_department *dep = rb_config_department(b->srv->cfg, dep_id);
        const char *dep_name =
            dep ? (strcmp(lang, "en") == 0 ? dep->name.en : dep->name.ur) : NULL;
        params[nreq] = json_pack("{s:s, s:s}", "tracking", PQgetvalue(res, r, 3), "department",
                                 dep_name && dep_name[0] ? dep_name : dep_id);
        snprintf(names[nreq], sizeof(names[nreq]), "notice.%s", event);
        mr[nreq] = (struct rb_message_req){
            .template = names[nreq], .language = lang, .params = params[nreq],
            .channel = via, .to = to,
            .case_id = atoll(PQgetvalue(res, r, 2)), .citizen_id = atoll(PQgetvalue(res, r, 7)),
            .event_id = eid, .notice = 1, .urgent = 0,
        };
        reqs[nreq] = &mr[nreq];
        req_run[nreq] = run;
        nreq++;
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->event_ids[i]) {
            rb_job_finish(b->runs[i], 0, "no such case event", -1, 1);
            b->event_ids[i] = 0;
        }
    int *refused = rb_calloc(nreq + 1, sizeof(int));
    int rc = nreq ? rb_message_queue_many(b->srv, reqs, nreq, refused, stored, b)
                  : RB_ENOTFOUND;
    b->msg_runs = rb_calloc(nreq + 1, sizeof(*b->msg_runs));
    for (size_t k = 0; k < nreq; k++) {
        if (refused[k]) /* a template that does not render: logged; retrying cannot help */
            rb_job_finish(req_run[k], 0, "the notice's template does not render", -1, 1);
        else if (rc != RB_OK)
            rb_job_finish(req_run[k], 0, "database unavailable", -1, 0);
        else
            b->msg_runs[b->nmsg++] = req_run[k];
        json_decref(params[k]);
    }
    free(refused);
    free(reqs);
    free(mr);
    free(params);
    free(names);
    free(req_run);
    if (rc != RB_OK)
        batch_free(b); /* stored() is not coming */
}

static void notice_batch(struct rb_job_run **runs, size_t n, void *arg)
{
    struct batch *b = rb_calloc(1, sizeof(*b));
    b->srv = arg;
    b->runs = rb_calloc(n, sizeof(*b->runs));
    b->event_ids = rb_calloc(n, sizeof(*b->event_ids));
    struct rb_sbuf ids = {0};
    rb_sbuf_puts(&ids, "{");
    for (size_t i = 0; i < n; i++) {
        const struct rb_job *job = rb_job_run_info(runs[i]);
        json_t *p = json_loads(job->payload ? job->payload : "{}", 0, NULL);
        json_t *ev = p ? json_object_get(p, "event_id") : NULL;
        long long event_id = json_is_integer(ev) ? (long long)json_integer_value(ev) : 0;
        json_decref(p);
        if (event_id <= 0) {
            rb_job_finish(runs[i], 0, "payload has no event_id", -1, 1);
            continue;
        }
        char id[24];
        snprintf(id, sizeof(id), "%lld", event_id);
        rb_sbuf_elem(&ids, id);
        b->runs[b->n] = runs[i];
        b->event_ids[b->n] = event_id;
        b->n++;
    }
    rb_sbuf_puts(&ids, "}");
    const char *params[1] = {ids.p};
    if (b->n == 0) {
        batch_free(b);
    } else if (rb_db_query_prepared(b->srv->db, load_sql, 1, params, loaded, b) != RB_OK) {
        for (size_t i = 0; i < b->n; i++)
            rb_job_finish(b->runs[i], 0, "database unavailable", -1, 0);
        batch_free(b);
    }
    free(ids.p);
}

int rb_notice_register(struct rb_server *srv)
{
    return rb_jobs_register_batch(srv->jobs, RB_NOTICE_JOB, notice_batch, NOTICE_BATCH, srv);
}
