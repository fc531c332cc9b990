/* One state-machine step on a stored case (see case_act.h). */
#include "cases/case_act.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "base/tracking.h"

/* $1 case  $2 from  $3 to  $4 event  $5 actor id  $6 note  $7 data  $8 new department
 * $9 text for the citizen  $10 actor type. Changes the case only if it is still in $2. */
static const char step_sql[] =
    "WITH u AS ("
    "  UPDATE cases SET status = $3::text,"
    "    acknowledged_at = CASE WHEN $3::text = 'acknowledged'"
    "      THEN coalesce(acknowledged_at, now()) ELSE acknowledged_at END,"
    "    resolved_at = CASE WHEN $3::text IN ('resolved', 'answered') THEN now()"
    "      ELSE resolved_at END,"
    "    closed_at = CASE WHEN $3::text IN ('closed', 'rejected') THEN now() ELSE closed_at END,"
    "    department_id = coalesce($8::text, department_id),"
    "    assigned_staff_id = CASE WHEN $8::text IS NULL THEN assigned_staff_id END"
    "  WHERE id = $1::bigint AND status = $2::text"
    "  RETURNING id, citizen_id, language),"
    " ev AS ("
    "  INSERT INTO case_events (case_id, actor_type, actor_id, event, from_status, to_status,"
    "    note, data)"
    "  SELECT id, $10::text, $5::text, $4::text, $2::text, $3::text, $6::text, $7::jsonb"
    "  FROM u),"
    " r AS ("
    "  SELECT u.id, u.citizen_id, CASE WHEN z.phone IS NOT NULL THEN 'sms' ELSE 'email' END"
    "    AS channel, coalesce(z.phone, z.email) AS to_address,"
    "    CASE WHEN u.language IN ('ur', 'en') THEN u.language ELSE z.language END AS language"
    "  FROM u JOIN citizens z ON z.id = u.citizen_id"
    "  WHERE $9::text IS NOT NULL AND coalesce(z.phone, z.email) IS NOT NULL),"
    " msg AS MATERIALIZED ("
    "  SELECT * FROM rabta_message_queue((SELECT array_agg(channel) FROM r),"
    "    (SELECT array_agg(to_address) FROM r), (SELECT array_agg($9::text) FROM r),"
    "    case_id => (SELECT array_agg(id) FROM r),"
    "    citizen_id => (SELECT array_agg(citizen_id) FROM r),"
    "    language => (SELECT array_agg(language) FROM r)))"
    " SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM msg)";

int rb_case_step_apply(struct rb_db *db, const struct rb_case_step *s, enum rb_case_state *to,
                       const char **why, rb_db_fn fn, void *arg)
{
    int rc = rb_case_transition(s->kind, s->from, s->action, RB_CASE_BY_STAFF, s->text != NULL,
                                to, why);
    if (rc != RB_OK)
        return rc;
    /* A question to the citizen and the answer to an information request are for the
     * citizen: they go out as an SMS with the step. */
    int to_citizen = s->action == RB_CASE_DO_ASK_CITIZEN || s->action == RB_CASE_DO_ANSWER;
    char id[24];
    snprintf(id, sizeof(id), "%lld", s->case_id);
    const char *p[10] = {id,
                         rb_case_state_str(s->from),
                         rb_case_state_str(*to),
                         s->event,
                         s->actor_id,
                         s->text,
                         s->data_json,
                         s->to_department,
                         to_citizen ? s->text : NULL,
                         s->actor_type};
    /* Any failure to send is "busy": the refusals above are the only other answers. */
    return rb_db_query(db, step_sql, 10, p, fn, arg) == RB_OK ? RB_OK : RB_EAGAIN;
}

/* ---- by tracking number, for a department's system ----------------------------------------- */

struct act {
    struct rb_db *db; /* borrowed */
    enum rb_case_action action;
    char *department, *actor_type, *actor_id, *text, *data; /* owned; may be NULL */
    char tracking[RB_TRACKING_LEN];
    rb_case_act_fn fn;
    void *arg;
    long long case_id;
    enum rb_case_state from, to;
};

static void act_free(struct act *a)
{
    free(a->department);
    free(a->actor_type);
    free(a->actor_id);
    free(a->text);
    free(a->data);
    free(a);
}

static void act_end(struct act *a, int status, const char *error)
{
    struct rb_case_act_outcome o = {
        .status = status,
        .case_id = a->case_id,
        .from_status = a->case_id ? rb_case_state_str(a->from) : "",
        .to_status = status == 200 ? rb_case_state_str(a->to) : "",
        .error = error,
    };
    a->fn(&o, a->arg);
    act_free(a);
}

static void act_written(PGresult *res, const char *err, void *arg)
{
    struct act *a = arg;
    if (err)
        act_end(a, 503, err);
    else if (strcmp(PQgetvalue(res, 0, 0), "1") != 0)
        act_end(a, 409, "the case changed at the same moment; look at it again");
    else
        act_end(a, 200, NULL);
}

static void act_loaded(PGresult *res, const char *err, void *arg)
{
    struct act *a = arg;
    if (err) {
        act_end(a, 503, err);
        return;
    }
    enum rb_case_kind kind;
    if (PQntuples(res) != 1 || rb_case_kind_from_str(PQgetvalue(res, 0, 1), &kind) != RB_OK ||
        rb_case_state_from_str(PQgetvalue(res, 0, 2), &a->from) != RB_OK ||
        (a->department && (PQgetisnull(res, 0, 3) ||
                           strcmp(PQgetvalue(res, 0, 3), a->department) != 0))) {
        act_end(a, 404, "no such case with this department");
        return;
    }
    a->case_id = atoll(PQgetvalue(res, 0, 0));
    const struct rb_case_step s = {
        .case_id = a->case_id, .kind = kind, .from = a->from, .action = a->action,
        .event = rb_case_action_str(a->action), .actor_type = a->actor_type,
        .actor_id = a->actor_id, .text = a->text, .data_json = a->data,
    };
    const char *why = NULL;
    int rc = rb_case_step_apply(a->db, &s, &a->to, &why, act_written, a);
    if (rc == RB_ECASE_REASON)
        act_end(a, 400, why);
    else if (rc == RB_EAGAIN)
        act_end(a, 503, "the database is overloaded");
    else if (rc != RB_OK)
        act_end(a, 409, why ? why : "not allowed");
}

int rb_case_act(struct rb_db *db, const char *tracking, const char *department,
                enum rb_case_action action, const char *actor_type, const char *actor_id,
                const char *text, const char *data_json, rb_case_act_fn fn, void *arg)
{
    struct act *a = rb_calloc(1, sizeof(*a));
    a->db = db;
    a->action = action;
    a->department = rb_strdup(department);
    a->actor_type = rb_strdup(actor_type);
    a->actor_id = rb_strdup(actor_id);
    a->text = rb_strdup(text);
    a->data = rb_strdup(data_json);
    snprintf(a->tracking, sizeof(a->tracking), "%s", tracking);
    a->fn = fn;
    a->arg = arg;
    const char *p[1] = {a->tracking};
    int rc = rb_db_query(db,
                         "SELECT id, kind, status, department_id FROM cases "
                         "WHERE tracking_no = $1::text",
                         1, p, act_loaded, a);
    if (rc != RB_OK)
        act_free(a);
    return rc;
}
