/* The outreach steps (outreach.h): one 'outreach.step' job {t: transaction, step: n} at a
 * time per transaction.
 *
 *   waiting --(opted out; surveyed lately: the citizen's window is another's)--> skipped
 *   waiting --(quiet hours)--> waiting, the same step after them
 *   waiting --(in the random sample)--> agent (GET /api/v1/staff/agent/next)
 *                                       --(agent_wait over, no agent holds it)--> waiting,
 *                                          out of the sample (the automated channels)
 *   waiting --(channel of this step: call)--> call --(the IVR's result job: answers)--> done
 *                                              --(the IVR's result job: none, or call_wait
 *                                                 over)--> waiting, step + 1
 *   waiting --(channel of this step: sms)--> sms --(the last answer)--> done
 *                                                --(sms_wait over)--> done (partial) or
 *                                                   waiting, step + 1 (nothing answered)
 *   no step left --> done (non_contact)
 *
 * A step's channel is channels[step / attempts] of the service's policy. */
#include "outreach/outreach.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "base/process.h"
#include "db/db.h"
#include "jobs/jobs.h"
#include "lua/script.h"
#include "messages/message.h"
#include "outreach/outreach_policy.h"
#include "outreach/outreach_tx.h"

#define STEP_KIND "outreach.step"

struct step {
    struct rb_server *srv;   /* borrowed */
    struct rb_job_run *run;  /* borrowed until finished */
    int want;                /* the step the job is for */
    struct rb_otx *t;        /* owned */
    const struct rb_outreach_policy *p; /* borrowed */
    enum rb_outreach_channel ch;
    char question[64]; /* the first question, for SMS */
    double wait;
};

static void step_free(struct step *s)
{
    rb_otx_free(s->t);
    free(s);
}

static void step_end(struct step *s, const char *err)
{
    if (err)
        rb_job_finish(s->run, 0, err, -1, 0);
    else
        rb_job_finish(s->run, 1, NULL, 0, 0);
    step_free(s);
}

static void stored(PGresult *res, const char *err, void *arg)
{
    (void)res;
    step_end(arg, err);
}

static void step_done(int found, const char *err, void *arg)
{
    (void)found;
    step_end(arg, err);
}

/* Runs sql with p for s, ending the job when it answers. */
static void step_query(struct step *s, const char *sql, int n, const char *const *p)
{
    if (rb_db_query_prepared(s->srv->db, sql, n, p, stored, s) != RB_OK)
        step_end(s, "the database is busy");
}

/* ---- the statements ----------------------------------------------------------------------- */

static const char skip_sql[] =
    "WITH t AS (UPDATE transactions SET state = 'skipped', skipped_why = $2, closed_at = now()"
    "  WHERE id = $1::bigint AND state = 'waiting' RETURNING id)"
    " SELECT count(*) FROM (SELECT rabta_feedback_count(id, 'skipped') FROM t) x";

/* $1 tx  $2 per_citizen_days  $3 why it is skipped. The citizen's survey window claimed for
 * this transaction before anyone contacts them: one row per phone (migration 0052), taken
 * when the window is over or the row is this transaction's own (a later step), so two steps
 * for two transactions of one citizen never both go ahead, in one process or in several (the
 * second waits for the first's commit). When another transaction holds it, this one is
 * skipped. Answers 1 when claimed. */
static const char claim_sql[] =
    "WITH c AS (INSERT INTO outreach_contacts AS o (phone, transaction_id)"
    "  SELECT phone, id FROM transactions WHERE id = $1::bigint AND phone IS NOT NULL"
    "  ON CONFLICT (phone) DO UPDATE SET transaction_id = excluded.transaction_id, at = now()"
    "  WHERE o.transaction_id = excluded.transaction_id"
    "   OR o.at < now() - make_interval(days => $2::int) RETURNING 1),"
    " s AS (UPDATE transactions SET state = 'skipped', skipped_why = $3, closed_at = now()"
    "  WHERE id = $1::bigint AND state = 'waiting' AND NOT EXISTS (SELECT 1 FROM c)"
    "  RETURNING id),"
    " n AS (SELECT rabta_feedback_count(id, 'skipped') FROM s)"
    " SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM n)";

/* $1 tx  $2 step  $3 seconds the agents have (0: for ever): the transaction set aside for
 * them, and a step job at the end of their time. */
static const char agent_sql[] =
    "WITH t AS (UPDATE transactions SET state = 'agent'"
    "  WHERE id = $1::bigint AND state = 'waiting' RETURNING id)"
    " INSERT INTO jobs (kind, payload, run_at) SELECT '" STEP_KIND "',"
    "  jsonb_build_object('t', id, 'step', $2::int), now() + make_interval(secs => $3::float8)"
    " FROM t WHERE $3::float8 > 0";

/* $1 tx  $2 step. The agents' time is over: unless an agent holds it now (a claim of the last
 * hour, agent/next), the transaction leaves the sample (its agent attempt, if any, ends as
 * non-contact) and its step runs at once on the automated channels; a held one is looked at
 * again in an hour. */
static const char agent_expired_sql[] =
    "WITH t AS (UPDATE transactions SET state = 'waiting', sampled = false, agent_id = NULL,"
    "  agent_at = NULL WHERE id = $1::bigint AND state = 'agent' AND step = $2::int"
    "  AND (agent_id IS NULL OR agent_at < now() - interval '1 hour') RETURNING id),"
    " a AS (UPDATE outreach_attempts SET ended_at = now(), disposition = 'non_contact'"
    "  WHERE transaction_id = $1::bigint AND channel = 'agent' AND ended_at IS NULL"
    "  AND EXISTS (SELECT 1 FROM t))"
    " INSERT INTO jobs (kind, payload, run_at) SELECT '" STEP_KIND "',"
    "  jsonb_build_object('t', $1::bigint, 'step', $2::int),"
    "  CASE WHEN EXISTS (SELECT 1 FROM t) THEN now() ELSE now() + interval '1 hour' END"
    " WHERE EXISTS (SELECT 1 FROM t) OR EXISTS (SELECT 1 FROM transactions"
    "  WHERE id = $1::bigint AND state = 'agent' AND step = $2::int)";

static const char again_sql[] =
    "INSERT INTO jobs (kind, payload, run_at) VALUES ('" STEP_KIND "',"
    " jsonb_build_object('t', $1::bigint, 'step', $2::int),"
    " now() + make_interval(secs => $3::float8))";

/* $1 tx  $2 channel  $3 step  $4 question  $5 message  $6 seconds until the step times out */
static const char contact_sql[] =
    "WITH t AS (UPDATE transactions SET state = $2, question = $4"
    "  WHERE id = $1::bigint AND state = 'waiting' AND step = $3::int RETURNING id),"
    " a AS (INSERT INTO outreach_attempts (transaction_id, channel, message_id)"
    "  SELECT id, $2, $5::bigint FROM t),"
    " j AS (INSERT INTO jobs (kind, payload, run_at) SELECT '" STEP_KIND "',"
    "  jsonb_build_object('t', id, 'step', $3::int), now() + make_interval(secs => $6::float8)"
    "  FROM t)"
    " SELECT count(*) FROM (SELECT rabta_feedback_count(id, 'contacted_' || $2) FROM t) x";

/* $1 tx  $2 state  $3 step  $4 the attempt's disposition */
static const char next_sql[] =
    "WITH t AS (UPDATE transactions SET state = 'waiting', step = step + 1, question = NULL"
    "  WHERE id = $1::bigint AND state = $2 AND step = $3::int RETURNING id, step),"
    " a AS (UPDATE outreach_attempts SET ended_at = now(), disposition = $4"
    "  WHERE transaction_id = $1::bigint AND ended_at IS NULL AND EXISTS (SELECT 1 FROM t)),"
    " j AS (INSERT INTO jobs (kind, payload) SELECT '" STEP_KIND "',"
    "  jsonb_build_object('t', id, 'step', step) FROM t)"
    " SELECT count(*) FROM t";

/* ---- moves -------------------------------------------------------------------------------- */

struct next {
    rb_outreach_done_fn fn;
    void *arg;
};

static void next_stored(PGresult *res, const char *err, void *arg)
{
    struct next n = *(struct next *)arg;
    free(arg);
    n.fn(!err && atoi(PQgetvalue(res, 0, 0)) == 1, err, n.arg);
}

int rb_otx_next_step(struct rb_server *srv, const struct rb_otx *t, const char *state,
                     const char *disposition, rb_outreach_done_fn fn, void *arg)
{
    const struct rb_outreach_policy *p = rb_outreach_policy(srv->outreach, t->service);
    long long attempts = p && p->attempts > 0 ? p->attempts : 1;
    if (!p || (t->step + 1) / attempts >= p->n_channels)
        return rb_otx_finish(srv, t, state, NULL, 0, disposition, NULL, fn, arg);
    char id[24], step[16];
    snprintf(id, sizeof(id), "%lld", t->id);
    snprintf(step, sizeof(step), "%d", t->step);
    const char *q[4] = {id, state, step, disposition};
    struct next *n = rb_malloc(sizeof(*n));
    *n = (struct next){fn, arg};
    if (rb_db_query_prepared(srv->db, next_sql, 4, q, next_stored, n) != RB_OK) {
        free(n);
        return RB_EAGAIN;
    }
    return RB_OK;
}

static void contacted(long long message_id, const char *err, void *arg)
{
    struct step *s = arg;
    if (err || message_id <= 0) {
        step_end(s, err ? err : "the message was not stored");
        return;
    }
    char id[24], step[16], msg[24], wait[32];
    snprintf(id, sizeof(id), "%lld", s->t->id);
    snprintf(step, sizeof(step), "%d", s->t->step);
    snprintf(msg, sizeof(msg), "%lld", message_id);
    snprintf(wait, sizeof(wait), "%.3f", s->wait);
    const char *p[6] = {id, rb_outreach_channel_name(s->ch), step,
                        s->question[0] ? s->question : NULL, msg, wait};
    step_query(s, contact_sql, 6, p);
}

/* The call: a message on channel "call" for the IVR's sender. Its data names the survey as
 * the call's script ("survey:<name>": the IVR asks the survey's questions with their
 * prompts), the job kind its result comes back as, and the step it belongs to. */
static int contact_call(struct step *s, char *why, size_t whylen)
{
    json_t *params = json_pack("{s:s}", "survey", s->p->survey);
    char script[80];
    snprintf(script, sizeof(script), "survey:%s", s->p->survey);
    json_t *data = json_pack("{s:s, s:s, s:{s:I, s:i}}", "script", script, "reply_kind",
                             RB_OUTREACH_CALL_RESULT, "ref", "transaction",
                             (json_int_t)s->t->id, "step", s->t->step);
    char *data_json = json_dumps(data, JSON_COMPACT);
    struct rb_message_req m = {.template = "survey.call", .language = s->t->language,
                               .params = params, .channel = "call", .to = s->t->phone,
                               .notice = 1, .urgent = 1, .data_json = data_json};
    s->wait = s->p->call_wait;
    int rc = rb_message_queue(s->srv, &m, contacted, s, why, whylen);
    json_decref(params);
    json_decref(data);
    free(data_json);
    return rc;
}

/* The first question by SMS. */
static int contact_sms(struct step *s, char *why, size_t whylen)
{
    json_t *req = rb_otx_survey_req(s->srv, s->t);
    json_t *q = rb_script_call(s->srv->rules, "surveys", "start", req, why, whylen);
    json_decref(req);
    const char *id = json_string_value(json_object_get(q, "question"));
    const char *text = json_string_value(json_object_get(q, "text"));
    if (!id || !text) {
        json_decref(q);
        return RB_EINVAL;
    }
    snprintf(s->question, sizeof(s->question), "%s", id);
    json_t *params = json_pack("{s:s}", "question", text);
    json_decref(q);
    struct rb_message_req m = {.template = "survey.question", .language = s->t->language,
                               .params = params, .channel = "sms", .to = s->t->phone,
                               .notice = 1, .urgent = 1};
    s->wait = s->p->sms_wait;
    int rc = rb_message_queue(s->srv, &m, contacted, s, why, whylen);
    json_decref(params);
    return rc;
}

/* The citizen is contacted now: set aside for the agents, or the channel of this step. */
static void contact(struct step *s)
{
    const struct rb_otx *t = s->t;
    char id[24], step[16], why[256];
    snprintf(id, sizeof(id), "%lld", t->id);
    snprintf(step, sizeof(step), "%d", t->step);
    long long attempts = s->p->attempts > 0 ? s->p->attempts : 1;
    if (t->sampled) {
        char secs[32];
        snprintf(secs, sizeof(secs), "%.3f", s->p->agent_wait);
        const char *q[3] = {id, step, secs};
        step_query(s, agent_sql, 3, q);
        return;
    }
    s->ch = s->p->channels[t->step / attempts];
    int rc = s->ch == RB_OUTREACH_CALL ? contact_call(s, why, sizeof(why))
                                       : contact_sms(s, why, sizeof(why));
    if (rc != RB_OK) {
        rb_warn("outreach", "transaction %lld: %s", t->id, why);
        step_end(s, why);
    }
}

static void claimed(PGresult *res, const char *err, void *arg)
{
    struct step *s = arg;
    if (err)
        step_end(s, err);
    else if (atoi(PQgetvalue(res, 0, 0)) != 1)
        step_end(s, NULL); /* skipped: the citizen was surveyed lately */
    else
        contact(s);
}

static void waiting(struct step *s)
{
    const struct rb_otx *t = s->t;
    const struct rb_outreach_policy *p = s->p;
    char id[24], step[16], why[256];
    snprintf(id, sizeof(id), "%lld", t->id);
    snprintf(step, sizeof(step), "%d", t->step);
    double quiet = rb_outreach_quiet_wait(s->srv->outreach, p);
    long long attempts = p->attempts > 0 ? p->attempts : 1;
    if (t->opted_out) {
        const char *q[2] = {id, "the citizen opted out (STOP)"};
        step_query(s, skip_sql, 2, q);
    } else if (quiet > 0) {
        char secs[32];
        snprintf(secs, sizeof(secs), "%.0f", quiet);
        const char *q[3] = {id, step, secs};
        step_query(s, again_sql, 3, q);
    } else if (!t->sampled && t->step / attempts >= p->n_channels) {
        if (rb_otx_finish(s->srv, t, "waiting", NULL, 0, NULL, NULL, step_done, s) != RB_OK)
            step_end(s, "the database is busy");
    } else {
        char days[24];
        snprintf(days, sizeof(days), "%lld", p->per_citizen_days);
        snprintf(why, sizeof(why), "surveyed in the last %lld days", p->per_citizen_days);
        const char *q[3] = {id, days, why};
        if (rb_db_query_prepared(s->srv->db, claim_sql, 3, q, claimed, s) != RB_OK)
            step_end(s, "the database is busy");
    }
}

/* A call or SMS whose wait is over: the next channel, or the end of the survey. */
static void timed_out(struct step *s)
{
    struct rb_otx *t = s->t;
    int answered = json_object_size(t->answers) > 0;
    int rc;
    if (!answered && strcmp(t->state, "sms") == 0 && t->opted_out)
        rc = rb_otx_finish(s->srv, t, "sms", NULL, 0, "refusal", NULL, step_done, s);
    else if (!answered)
        rc = rb_otx_next_step(s->srv, t, t->state, "non_contact", step_done, s);
    else
        rc = rb_otx_finish(s->srv, t, t->state, t->state, 0, t->opted_out ? "refusal" : NULL,
                           NULL, step_done, s);
    if (rc != RB_OK)
        step_end(s, "the database is busy");
}

static void step_loaded(PGresult *res, const char *err, void *arg)
{
    struct step *s = arg;
    s->t = err ? NULL : rb_otx_from(res);
    if (err || !s->t || s->t->step != s->want) {
        step_end(s, err); /* gone, or a step already taken */
        return;
    }
    s->p = rb_outreach_policy(s->srv->outreach, s->t->service);
    const char *state = s->t->state;
    if (!s->p && strcmp(state, "waiting") == 0) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", s->t->id);
        const char *q[2] = {id, "the service asks for no feedback any more"};
        step_query(s, skip_sql, 2, q);
    } else if (strcmp(state, "waiting") == 0) {
        waiting(s);
    } else if (strcmp(state, "call") == 0 || strcmp(state, "sms") == 0) {
        timed_out(s);
    } else if (strcmp(state, "agent") == 0) {
        char id[24], step[16];
        snprintf(id, sizeof(id), "%lld", s->t->id);
        snprintf(step, sizeof(step), "%d", s->t->step);
        const char *q[2] = {id, step};
        step_query(s, agent_expired_sql, 2, q);
    } else {
        step_end(s, NULL); /* done or skipped */
    }
}

static const char load_sql[] = RB_OTX_COLUMNS "WHERE t.id = $1::bigint";

static void step_run(struct rb_job_run *run, const struct rb_job *job, void *arg)
{
    json_t *p = json_loads(job->payload ? job->payload : "{}", 0, NULL);
    json_t *t = json_object_get(p, "t"), *n = json_object_get(p, "step");
    if (!json_is_integer(t) || !json_is_integer(n)) {
        json_decref(p);
        rb_job_finish(run, 0, "payload needs t and step", -1, 1);
        return;
    }
    struct step *s = rb_calloc(1, sizeof(*s));
    s->srv = arg;
    s->run = run;
    s->want = (int)json_integer_value(n);
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(t));
    json_decref(p);
    const char *q[1] = {id};
    if (rb_db_query_prepared(s->srv->db, load_sql, 1, q, step_loaded, s) != RB_OK)
        step_end(s, "the database is busy");
}

/* ---- the schedule: due transactions become step jobs -------------------------------------- */

/* transactions turned into step jobs by one run, and seconds between runs when nothing is due
 * sooner (as text: they are parts of the statement) */
#define SCHEDULE_BATCH "2000"
#define SCHEDULE_IDLE "5"

/* $1 the schedule job's id. Up to SCHEDULE_BATCH due transactions get their step job; the
 * schedule job itself is put back in the queue (so the runner's end of this run, which deletes
 * only a running job, leaves it) for the next due one, at once when the batch was full, else
 * at most SCHEDULE_IDLE seconds on: a transaction added while this ran may not be seen. */
static const char schedule_sql[] =
    "WITH due AS (SELECT id FROM transactions WHERE next_at <= now()"
    "  ORDER BY next_at LIMIT " SCHEDULE_BATCH " FOR UPDATE SKIP LOCKED),"
    " u AS (UPDATE transactions t SET next_at = NULL FROM due WHERE t.id = due.id"
    "  RETURNING t.id, t.step),"
    " j AS (INSERT INTO jobs (kind, payload) SELECT '" STEP_KIND "',"
    "  jsonb_build_object('t', id, 'step', step) FROM u),"
    " n AS (SELECT count(*) AS n FROM u)"
    " UPDATE jobs SET state = 'queued', attempts = 0, locked_by = NULL, locked_at = NULL,"
    "  run_at = CASE WHEN (SELECT n FROM n) >= " SCHEDULE_BATCH " THEN now() ELSE"
    "   least(now() + make_interval(secs => " SCHEDULE_IDLE "),"
    "    greatest(now(), (SELECT min(next_at) FROM transactions WHERE next_at IS NOT NULL"
    "     AND id NOT IN (SELECT id FROM u)))) END"
    " WHERE id = $1::bigint RETURNING (SELECT n FROM n)";

static void scheduled(PGresult *res, const char *err, void *arg)
{
    struct rb_job_run *run = arg;
    if (err)
        rb_job_finish(run, 0, err, 1, 0);
    else
        rb_job_finish(run, 1, NULL, 0, 0);
    (void)res;
}

static void schedule_run(struct rb_job_run *run, const struct rb_job *job, void *arg)
{
    struct rb_server *srv = arg;
    char id[24];
    snprintf(id, sizeof(id), "%lld", job->id);
    const char *p[1] = {id};
    if (rb_db_query(srv->db, schedule_sql, 1, p, scheduled, run) != RB_OK)
        rb_job_finish(run, 0, "the database is busy", 1, 0);
}

int rb_outreach_register(struct rb_server *srv)
{
    return rb_jobs_register(srv->jobs, STEP_KIND, step_run, srv) == RB_OK &&
                   rb_jobs_register(srv->jobs, "outreach.schedule", schedule_run, srv) ==
                       RB_OK &&
                   rb_jobs_register(srv->jobs, RB_OUTREACH_CALL_RESULT, rb_otx_call_result,
                                    srv) == RB_OK
               ? RB_OK
               : RB_ERR;
}
