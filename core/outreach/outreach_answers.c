/* Answers to a survey (outreach.h): by SMS, one question at a time; from a call or an agent,
 * all at once. */
#include <stdint.h>
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
#include "outreach/outreach_tx.h"

#define SMS_ANSWER_MAX 1000 /* bytes of a comment kept */

/* Queues an SMS reply to t's citizen: template survey.question with text, or survey.thanks
 * (text NULL). Failures are logged: the answer itself is stored. */
static void msg_stored(long long id, const char *err, void *arg)
{
    (void)id;
    if (err)
        rb_warn("outreach", "a survey SMS of transaction %lld was not stored: %s",
                (long long)(intptr_t)arg, err);
}

void rb_otx_send(struct rb_server *srv, const struct rb_otx *t, const char *text)
{
    json_t *params = text ? json_pack("{s:s}", "question", text) : NULL;
    struct rb_message_req m = {
        .template = text ? "survey.question" : "survey.thanks",
        .language = strcmp(t->language, "en") == 0 ? "en" : "ur",
        .params = params, .channel = "sms", .to = t->phone, .urgent = 1,
    };
    char why[256];
    if (rb_message_queue(srv, &m, msg_stored, (void *)(intptr_t)t->id, why, sizeof(why)) !=
        RB_OK)
        rb_warn("outreach", "transaction %lld: a survey SMS was not queued: %s", t->id, why);
    json_decref(params);
}

/* ---- SMS ---------------------------------------------------------------------------------- */

struct sms {
    struct rb_server *srv; /* borrowed */
    char *text, *ref;      /* owned */
    rb_outreach_taken_fn fn;
    void *arg;
    struct rb_otx *t; /* owned */
};

static void sms_free(struct sms *s)
{
    free(s->text);
    free(s->ref);
    rb_otx_free(s->t);
    free(s);
}

static void sms_finished(int found, const char *err, void *arg)
{
    struct sms *s = arg;
    if (found && !err)
        rb_otx_send(s->srv, s->t, NULL);
    s->fn(1, err, s->arg);
    sms_free(s);
}

static void sms_advanced(PGresult *res, const char *err, void *arg)
{
    struct sms *s = arg;
    (void)res;
    s->fn(1, err, s->arg);
    sms_free(s);
}

/* The survey waiting for the citizen's answer: its question, the answers so far. */
static const char advance_sql[] =
    "UPDATE transactions SET answers = $2::jsonb, question = $3, sms_ref = $4"
    " WHERE id = $1::bigint AND state = 'sms'";

/* One answer through lua/surveys.lua answer(); then the next question, or the end. */
static void sms_answer(struct sms *s)
{
    struct rb_otx *t = s->t;
    json_t *req = rb_otx_survey_req(s->srv, t);
    json_object_set_new(req, "question", json_string(t->question));
    json_object_set_new(req, "input", json_string(s->text));
    json_object_set(req, "answers", t->answers);
    char err[512];
    json_t *r = rb_script_call(s->srv->rules, "surveys", "answer", req, err, sizeof(err));
    json_decref(req);
    if (!r) {
        rb_warn("outreach", "transaction %lld: lua/surveys.lua answer(): %s", t->id, err);
        s->fn(1, NULL, s->arg); /* taken: the citizen's text answered a survey */
        sms_free(s);
        return;
    }
    json_t *answers = json_object_get(r, "answers");
    if (json_is_object(answers))
        json_object_update(t->answers, answers);
    json_t *next = json_object_get(r, "next");
    const char *q = json_string_value(json_object_get(next, "question"));
    int rc;
    if (json_is_true(json_object_get(r, "done"))) {
        rc = rb_otx_finish(s->srv, t, "sms", "sms", 1, NULL, s->ref, sms_finished, s);
    } else {
        rb_otx_send(s->srv, t, json_string_value(json_object_get(next, "text")));
        char id[24];
        snprintf(id, sizeof(id), "%lld", t->id);
        char *a = json_dumps(t->answers, JSON_COMPACT);
        const char *p[4] = {id, a, q ? q : t->question, s->ref};
        rc = rb_db_query_prepared(s->srv->db, advance_sql, 4, p, sms_advanced, s);
        free(a);
    }
    json_decref(r);
    if (rc != RB_OK) {
        s->fn(0, "the database is busy", s->arg);
        sms_free(s);
    }
}

static void sms_found(PGresult *res, const char *err, void *arg)
{
    struct sms *s = arg;
    s->t = err ? NULL : rb_otx_from(res);
    if (err || !s->t) {
        s->fn(0, err, s->arg);
        sms_free(s);
    } else if (s->ref && strcmp(s->t->sms_ref, s->ref) == 0) {
        s->fn(1, NULL, s->arg); /* the gateway's retry of a text already taken */
        sms_free(s);
    } else if (strcmp(s->t->state, "sms") != 0) {
        s->fn(0, NULL, s->arg);
        sms_free(s);
    } else {
        sms_answer(s);
    }
}

/* $1 phone  $2 the text's gateway id: the survey awaiting this phone's answer, or the one a
 * retried text already answered. */
static const char sms_find_sql[] =
    RB_OTX_COLUMNS "WHERE t.phone = $1 AND (t.state = 'sms' OR t.sms_ref = $2)"
    " ORDER BY t.state = 'sms' DESC, t.id DESC LIMIT 1";

int rb_outreach_sms_answer(struct rb_server *srv, const char *phone, const char *text,
                           size_t len, const char *ref, rb_outreach_taken_fn fn, void *arg)
{
    struct sms *s = rb_calloc(1, sizeof(*s));
    s->srv = srv;
    s->text = rb_strndup(text, len > SMS_ANSWER_MAX ? SMS_ANSWER_MAX : len);
    s->ref = ref ? rb_strdup(ref) : NULL;
    s->fn = fn;
    s->arg = arg;
    const char *p[2] = {phone, ref};
    if (rb_db_query_prepared(srv->db, sms_find_sql, 2, p, sms_found, s) != RB_OK) {
        sms_free(s);
        return RB_EAGAIN;
    }
    return RB_OK;
}

/* ---- a call's or an agent's answers ----------------------------------------------------- */

struct record {
    struct rb_server *srv; /* borrowed */
    int agent;             /* else a call */
    long long staff_id;
    json_t *given; /* owned */
    char disposition[16];
    rb_outreach_done_fn fn;
    void *arg;
    struct rb_otx *t; /* owned */
};

static void record_free(struct record *r)
{
    json_decref(r->given);
    rb_otx_free(r->t);
    free(r);
}

static void record_done(int found, const char *err, void *arg)
{
    struct record *r = arg;
    r->fn(found, err, r->arg);
    record_free(r);
}

/* The survey of req (rb_otx_survey_req) replayed with the inputs given (lua/surveys.lua
 * walk()): new, or NULL with why. */
static json_t *walk(struct rb_server *srv, json_t *req, const json_t *given, char *why,
                    size_t whylen)
{
    json_object_set_new(req, "given", given ? json_deep_copy(given) : json_object());
    json_t *w = rb_script_call(srv->rules, "surveys", "walk", req, why, whylen);
    if (w && !json_is_object(w)) {
        snprintf(why, whylen, "lua/surveys.lua walk() did not answer a table");
        json_decref(w);
        w = NULL;
    }
    return w;
}

json_t *rb_outreach_walk(struct rb_server *srv, const char *survey, const char *language,
                         const json_t *given, char *why, size_t whylen)
{
    json_t *req = json_pack("{s:s}", "language",
                            language && strcmp(language, "en") == 0 ? "en" : "ur");
    json_t *w;
    if (survey) {
        json_object_set_new(req, "survey", json_string(survey));
        w = walk(srv, req, given, why, whylen);
    } else {
        w = rb_script_call(srv->rules, "surveys", "all", req, why, whylen);
    }
    json_decref(req);
    return w;
}

/* Walks t's survey with the given answers, so only allowed answers are kept, in the survey's
 * order (t->answers becomes what they mean). Sets *done when it reached its end. RB_OK, or
 * RB_EINVAL with why. */
static int replay(struct record *r, int *done, char *why, size_t whylen)
{
    json_t *req = rb_otx_survey_req(r->srv, r->t);
    json_t *w = walk(r->srv, req, r->given, why, whylen);
    json_decref(req);
    if (!w)
        return RB_EINVAL;
    const char *bad = json_string_value(json_object_get(w, "invalid"));
    int rc = RB_OK;
    if (bad) {
        snprintf(why, whylen, "question %s: \"%.40s\" is not an allowed answer", bad,
                 json_string_value(json_object_get(r->given, bad))
                     ? json_string_value(json_object_get(r->given, bad))
                     : "?");
        rc = RB_EINVAL;
    } else {
        json_t *answers = json_object_get(w, "answers");
        *done = json_is_true(json_object_get(w, "done"));
        json_decref(r->t->answers);
        r->t->answers = json_is_object(answers) ? json_incref(answers) : json_object();
    }
    json_decref(w);
    return rc;
}

static void record_found(PGresult *res, const char *err, void *arg)
{
    struct record *r = arg;
    r->t = err ? NULL : rb_otx_from(res);
    const char *state = r->agent ? "agent" : "call";
    if (err || !r->t || strcmp(r->t->state, state) != 0 ||
        (r->agent && r->t->agent_id != r->staff_id)) {
        r->fn(0, err, r->arg);
        record_free(r);
        return;
    }
    int done = 0, rc;
    char why[512];
    if (replay(r, &done, why, sizeof(why)) != RB_OK) {
        r->fn(0, why, r->arg);
        record_free(r);
        return;
    }
    const char *disp = r->disposition[0] ? r->disposition : NULL;
    if (!r->agent && json_object_size(r->t->answers) == 0)
        /* an unanswered or impossible call: on to the next channel (SMS) */
        rc = rb_otx_next_step(r->srv, r->t, "call", disp ? disp : "non_contact", record_done, r);
    else
        rc = rb_otx_finish(r->srv, r->t, state, r->agent ? "agent" : "call", done, disp, NULL,
                           record_done, r);
    if (rc != RB_OK) {
        r->fn(0, "the database is busy", r->arg);
        record_free(r);
    }
}

static const char by_call_sql[] =
    RB_OTX_COLUMNS "WHERE t.id = (SELECT transaction_id FROM outreach_attempts"
    " WHERE message_id = $1::bigint AND channel = 'call' AND ended_at IS NULL)";
static const char by_id_sql[] = RB_OTX_COLUMNS "WHERE t.id = $1::bigint";

int rb_outreach_record(struct rb_server *srv, const char *channel, long long id,
                       long long staff_id, const json_t *answers, const char *disposition,
                       rb_outreach_done_fn fn, void *arg)
{
    static const char *const allowed[] = {"complete", "partial", "refusal", "non_contact",
                                          "unknown"};
    int known = !disposition;
    for (size_t i = 0; disposition && i < RB_ARRAY_LEN(allowed); i++)
        known |= strcmp(disposition, allowed[i]) == 0;
    int agent = channel && strcmp(channel, "agent") == 0;
    if (!known || (!agent && (!channel || strcmp(channel, "call") != 0)) ||
        (answers && !json_is_object(answers)))
        return RB_EINVAL;
    struct record *r = rb_calloc(1, sizeof(*r));
    r->srv = srv;
    r->agent = agent;
    r->staff_id = staff_id;
    r->given = answers ? json_deep_copy(answers) : json_object();
    snprintf(r->disposition, sizeof(r->disposition), "%s", disposition ? disposition : "");
    r->fn = fn;
    r->arg = arg;
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", id);
    const char *p[1] = {sid};
    if (rb_db_query_prepared(srv->db, agent ? by_id_sql : by_call_sql, 1, p, record_found, r) != RB_OK) {
        record_free(r);
        return RB_EAGAIN;
    }
    return RB_OK;
}

/* ---- a call's result, handed back by the IVR as a job ------------------------------------- */

/* The AAPOR disposition of a call that got no answers, from the IVR's outcome of its last
 * dial (docs/ivr.md): answered and nothing keyed is a refusal (a break-off), a number that
 * could not be dialled is of unknown eligibility, the rest (busy, no answer, congestion, an
 * answering machine, no word from Asterisk) is non-contact. */
static const char *unanswered_disposition(const char *outcome)
{
    if (strcmp(outcome, "completed") == 0 || strcmp(outcome, "hung_up_early") == 0)
        return "refusal";
    if (strcmp(outcome, "failed") == 0)
        return "unknown";
    return "non_contact";
}

#define CALL_RESULT_TRIES 3 /* runs of a result job that finds no survey before it gives up */

static void call_recorded(int found, const char *err, void *arg)
{
    struct rb_job_run *run = arg;
    const struct rb_job *job = rb_job_run_info(run);
    if (err) {
        rb_job_finish(run, 0, err, -1, 0);
        return;
    }
    if (!found && job->attempt < CALL_RESULT_TRIES) {
        /* the call step stores its attempt just after it queues the call: a report that came
         * first (a very short call) finds it a moment later */
        rb_job_finish(run, 0, "no survey awaits this call's answers (yet)", 5, 0);
        return;
    }
    if (!found)
        rb_info("outreach", "job %lld: no survey awaits this call's answers any more (its "
                            "call_wait ended first)", job->id);
    rb_job_finish(run, 1, NULL, 0, 0);
}

void rb_otx_call_result(struct rb_job_run *run, const struct rb_job *job, void *arg)
{
    struct rb_server *srv = arg;
    json_t *p = json_loads(job->payload ? job->payload : "{}", 0, NULL);
    json_t *msg = json_object_get(p, "message_id"), *answers = json_object_get(p, "answers");
    const char *outcome = json_string_value(json_object_get(p, "outcome"));
    if (!json_is_integer(msg) || !outcome || (answers && !json_is_object(answers))) {
        json_decref(p);
        rb_job_finish(run, 0, "payload needs message_id, outcome and answers {}", -1, 1);
        return;
    }
    const char *disposition =
        json_object_size(answers) > 0 ? NULL : unanswered_disposition(outcome);
    int rc = rb_outreach_record(srv, "call", (long long)json_integer_value(msg), 0, answers,
                                disposition, call_recorded, run);
    json_decref(p);
    if (rc != RB_OK)
        rb_job_finish(run, 0, rc == RB_EINVAL ? "bad answers" : "the database is busy", -1,
                      rc == RB_EINVAL);
}
