/* Answers and the end of a survey (outreach.h): SMS answers one question at a time, a call's
 * or an agent's answers all at once, and what a finished survey leads to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "base/process.h"
#include "base/tracking.h"
#include "config/config.h"
#include "db/db.h"
#include "lua/script.h"
#include "messages/message.h"
#include "outreach/outreach_policy.h"
#include "outreach/outreach_tx.h"

/* ---- one transaction ----------------------------------------------------------------------- */

static char *col(PGresult *res, int c)
{
    return rb_strdup(PQgetisnull(res, 0, c) ? "" : PQgetvalue(res, 0, c));
}

struct rb_otx *rb_otx_from(PGresult *res)
{
    if (!res || PQntuples(res) < 1)
        return NULL;
    struct rb_otx *t = rb_calloc(1, sizeof(*t));
    t->id = atoll(PQgetvalue(res, 0, 0));
    snprintf(t->state, sizeof(t->state), "%s", PQgetvalue(res, 0, 1));
    t->step = atoi(PQgetvalue(res, 0, 2));
    t->service = col(res, 3);
    t->phone = col(res, 4);
    t->language = col(res, 5);
    t->sampled = PQgetvalue(res, 0, 6)[0] == 't';
    t->answers = json_loads(PQgetvalue(res, 0, 7), 0, NULL);
    if (!json_is_object(t->answers)) {
        json_decref(t->answers);
        t->answers = json_object();
    }
    t->office_name[0] = col(res, 8);
    t->office_name[1] = col(res, 9);
    t->office = col(res, 10);
    t->official = col(res, 11);
    t->reference = col(res, 12);
    t->district = col(res, 13);
    t->opted_out = PQgetvalue(res, 0, 14)[0] == 't';
    t->question = col(res, 15);
    t->sms_ref = col(res, 16);
    t->agent_id = atoll(PQgetvalue(res, 0, 17));
    return t;
}

void rb_otx_free(struct rb_otx *t)
{
    if (!t)
        return;
    free(t->service);
    free(t->phone);
    free(t->language);
    free(t->office);
    free(t->official);
    free(t->reference);
    free(t->district);
    free(t->office_name[0]);
    free(t->office_name[1]);
    free(t->question);
    free(t->sms_ref);
    json_decref(t->answers);
    free(t);
}

json_t *rb_otx_survey_req(struct rb_server *srv, const struct rb_otx *t)
{
    const struct rb_outreach_policy *p = rb_outreach_policy(srv->outreach, t->service);
    const struct rb_service *s = rb_config_service(srv->cfg, t->service);
    int ur = strcmp(t->language, "en") != 0;
    const char *service = s ? (ur && s->name.ur ? s->name.ur : s->name.en) : t->service;
    const char *office = ur && t->office_name[1][0] ? t->office_name[1] : t->office_name[0];
    return json_pack("{s:s, s:s, s:s, s:s}", "survey", p ? p->survey : "default", "language",
                     ur ? "ur" : "en", "service", service, "office", office);
}

/* ---- the end of a survey ---------------------------------------------------------------- */

/* $1 tx  $2 disposition  $3 answers  $4 channel  $5 counters  $6 open a case  $7 tracking
 * $8 category  $9 priority  $10 the case's text  $11 the state the transaction must be in
 * $12 the gateway's id of the SMS that ended it (NULL: none).
 * One statement: the transaction done, its open attempt ended, the roll-up counted and, for a
 * negative answer, a case at the office's department assigned to the office's supervisor
 * (the official is named on it, which keeps it from them; the citizen's phone is not shared)
 * with its events and its delivery job. Answers (done, case id). */
static const char finish_sql[] =
    "WITH cur AS ("
    "  SELECT t.*, o.department_id, o.district_id, o.supervisor FROM transactions t"
    "  JOIN offices o ON o.id = t.office_id WHERE t.id = $1::bigint AND t.state = $11),"
    " cit AS ("
    "  INSERT INTO citizens (phone, language) SELECT phone, language FROM cur"
    "  WHERE $6::boolean AND phone IS NOT NULL"
    "  ON CONFLICT (phone) DO UPDATE SET phone = excluded.phone RETURNING id),"
    " c AS ("
    "  INSERT INTO cases (tracking_no, kind, status, citizen_id, channel, service_id,"
    "    department_id, category, priority, district_id, text, language, share_contact,"
    "    names_official, assigned_staff_id)"
    "  SELECT $7, 'complaint', 'routed', (SELECT id FROM cit), 'outreach', cur.service_id,"
    "    cur.department_id, $8, $9::int, cur.district_id, $10, cur.language, false, f.name,"
    "    (SELECT s.id FROM staff s WHERE s.username = cur.supervisor AND s.disabled_at IS NULL"
    "     AND s.role IN ('supervisor', 'admin'))"
    "  FROM cur LEFT JOIN officials f ON f.id = cur.official_id WHERE $6::boolean"
    "  RETURNING id),"
    " ev AS ("
    "  INSERT INTO case_events (case_id, actor_type, actor_id, event, from_status, to_status,"
    "    data)"
    "  SELECT c.id, 'system', x.actor, x.event, x.f, x.t, jsonb_build_object('channel',"
    "    'outreach', 'transaction', $1::bigint, 'office', cur.office_id)"
    "  FROM c, cur, (VALUES ('outreach', 'submitted', NULL, 'submitted'),"
    "    ('routing', 'routed', 'submitted', 'routed')) x(actor, event, f, t)"
    "  RETURNING id, case_id, event),"
    " dj AS ("
    "  INSERT INTO jobs (kind, payload) SELECT 'case.deliver', jsonb_build_object('case_id',"
    "    ev.case_id, 'event_id', ev.id, 'event', 'routed') FROM ev WHERE ev.event = 'routed'),"
    " t AS ("
    "  UPDATE transactions x SET state = 'done', disposition = $2, answers = $3::jsonb,"
    "    question = NULL, answered_by = $4, closed_at = now(), case_id = (SELECT id FROM c),"
    "    sms_ref = coalesce($12, x.sms_ref)"
    "  FROM cur WHERE x.id = cur.id RETURNING x.id),"
    " a AS ("
    "  UPDATE outreach_attempts SET ended_at = now(), disposition = $2"
    "  WHERE transaction_id = $1::bigint AND ended_at IS NULL AND EXISTS (SELECT 1 FROM cur)),"
    " n AS (SELECT rabta_feedback_count($1::bigint, w) FROM cur, unnest($5::text[]) w)"
    " SELECT (SELECT count(*) FROM t), (SELECT id FROM c), (SELECT count(*) FROM n)";

struct finish {
    rb_outreach_done_fn fn;
    void *arg;
    long long tx;
};

static void finished(PGresult *res, const char *err, void *arg)
{
    struct finish f = *(struct finish *)arg;
    free(arg);
    int done = !err && PQntuples(res) == 1 && atoi(PQgetvalue(res, 0, 0)) == 1;
    if (done && !PQgetisnull(res, 0, 1))
        rb_info("outreach", "transaction %lld: case %s opened at the office's supervisor",
                f.tx, PQgetvalue(res, 0, 1));
    if (f.fn)
        f.fn(done, err, f.arg);
}

/* Adds the counters a yes/no measure of outcome o gives. */
static void count_measure(json_t *counters, const json_t *o, const char *key, const char *n,
                          const char *yes)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_boolean(v))
        return;
    json_array_append_new(counters, json_string(n));
    if (json_is_true(v))
        json_array_append_new(counters, json_string(yes));
}

/* The case's text: what the citizen answered, for the supervisor. New string. */
static char *case_text(const struct rb_otx *t, const json_t *o)
{
    static const char *const keys[] = {"dissatisfied", "bribe", "delayed"};
    static const char *const says[] = {"not satisfied with the service",
                                       "asked for a bribe or extra money",
                                       "the service was delayed"};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        rb_fatal("out of memory");
    fprintf(f, "Feedback on %s at office %s (the office's reference %s):", t->service,
            t->office, t->reference);
    for (size_t i = 0; i < RB_ARRAY_LEN(keys); i++)
        if (json_is_true(json_object_get(o, keys[i])))
            fprintf(f, " %s;", says[i]);
    const char *comment = json_string_value(json_object_get(o, "comment"));
    if (comment && strncmp(comment, RB_OUTREACH_RECORDING, strlen(RB_OUTREACH_RECORDING)) == 0)
        fprintf(f, " the citizen left a voice comment on the call (recording %.200s)",
                comment + strlen(RB_OUTREACH_RECORDING));
    else if (comment)
        fprintf(f, " the citizen's words: \"%.4000s\"", comment);
    fclose(f);
    return text;
}

/* lua/surveys.lua outcome() of t's answers. New, or NULL (logged). */
static json_t *outcome_of(struct rb_server *srv, const struct rb_otx *t, int done)
{
    json_t *req = rb_otx_survey_req(srv, t);
    json_object_set(req, "answers", t->answers);
    json_object_set_new(req, "done", json_boolean(done));
    json_object_set_new(req, "tx", json_pack("{s:s, s:s, s:s, s:s}", "office", t->office,
                                             "official", t->official, "service", t->service,
                                             "district", t->district));
    char err[512];
    json_t *o = rb_script_call(srv->rules, "surveys", "outcome", req, err, sizeof(err));
    json_decref(req);
    if (!o || !json_is_object(o)) {
        rb_warn("outreach", "transaction %lld: the outcome of its survey: %s", t->id,
                o ? "not a table" : err);
        json_decref(o);
        return NULL;
    }
    return o;
}

int rb_otx_finish(struct rb_server *srv, const struct rb_otx *t, const char *state,
                  const char *channel, int done, const char *disposition, const char *ref,
                  rb_outreach_done_fn fn, void *arg)
{
    int any = json_object_size(t->answers) > 0;
    if (!disposition)
        disposition = done ? "complete" : any ? "partial" : "non_contact";
    json_t *o = any ? outcome_of(srv, t, done) : NULL;
    json_t *counters = json_pack("[s]", disposition);
    int open = json_is_true(json_object_get(o, "open_case"));
    if (o) {
        count_measure(counters, o, "dissatisfied", "satisfied_n", "dissatisfied");
        count_measure(counters, o, "bribe", "bribe_n", "bribe");
        count_measure(counters, o, "delayed", "delayed_n", "delayed");
        if (open)
            json_array_append_new(counters, json_string("cases"));
        else if (json_is_true(json_object_get(o, "appreciation")))
            json_array_append_new(counters, json_string("appreciation"));
    }
    struct rb_sbuf cs = {0};
    rb_sbuf_puts(&cs, "{");
    for (size_t i = 0; i < json_array_size(counters); i++)
        rb_sbuf_elem(&cs, json_string_value(json_array_get(counters, i)));
    rb_sbuf_puts(&cs, "}");
    char id[24], tracking[RB_TRACKING_LEN] = "", prio[8];
    snprintf(id, sizeof(id), "%lld", t->id);
    const char *cat = json_string_value(json_object_get(o, "category"));
    json_int_t pr = json_integer_value(json_object_get(o, "priority"));
    snprintf(prio, sizeof(prio), "%d", pr >= 1 && pr <= 5 ? (int)pr : 3);
    char *text = open ? case_text(t, o) : NULL;
    if (open && rb_tracking_new(tracking) != RB_OK)
        rb_fatal("no random bytes for a tracking number");
    char *answers = json_dumps(t->answers, JSON_COMPACT);
    const char *p[12] = {id,   disposition, answers, channel, cs.p, open ? "t" : "f",
                         open ? tracking : NULL, cat ? cat : "feedback", prio, text, state, ref};
    struct finish *f = rb_malloc(sizeof(*f));
    *f = (struct finish){fn, arg, t->id};
    int rc = rb_db_query_prepared(srv->db, finish_sql, 12, p, finished, f);
    if (rc != RB_OK)
        free(f);
    free(answers);
    free(text);
    free(cs.p);
    json_decref(counters);
    json_decref(o);
    return rc == RB_OK ? RB_OK : RB_EAGAIN;
}
