/* Applying one state-machine step to a stored case: the ONE path shared by the staff API and
 * by departments' own systems (the host API's case_act, used by the webhook plugin's signed
 * callback).
 *
 * A step is checked with rb_case_transition (case_state.c) and then written by ONE statement
 * that changes the case only if its status is still the one checked (a concurrent change
 * makes it a no-op the caller answers with 409), writes the case event, and — for a question
 * to the citizen or an answer to an information request — queues the text as an SMS to the
 * citizen (a message row and its message.send job), all in one transaction. */
#ifndef RB_CASE_ACT_H
#define RB_CASE_ACT_H

#include "cases/case_state.h"
#include "db/db.h"

/* One step on a case already loaded by the caller. Strings are borrowed for the call. */
struct rb_case_step {
    long long case_id;
    enum rb_case_kind kind;
    enum rb_case_state from;
    enum rb_case_action action;
    const char *event;         /* the case event's name ("acknowledge", "ask", ...) */
    const char *actor_type;    /* "staff" or "department" (case_events.actor_type) */
    const char *actor_id;      /* a staff username, or the plugin's name */
    const char *text;          /* the note, reason, question or answer; NULL for none */
    const char *data_json;     /* the event's data (a JSON object), or NULL */
    const char *to_department; /* transfer: where the case goes; NULL otherwise */
};

/* Checks the step (as RB_CASE_BY_STAFF: a department's system acts for its staff) and sends
 * the statement. On RB_OK *to is the new state and fn gets one row: (cases changed: 0 or 1,
 * messages queued for the citizen). Refusals, nothing sent, fn not called, *why a sentence
 * (static): RB_EINVAL / RB_ECASE_ACTOR (not allowed from this state, for this kind),
 * RB_ECASE_REASON (the step needs text). RB_EAGAIN: the statement could not be sent (the
 * pool's queue is full or the pool is stopping); fn not called. */
int rb_case_step_apply(struct rb_db *db, const struct rb_case_step *s, enum rb_case_state *to,
                       const char **why, rb_db_fn fn, void *arg);

/* What rb_case_act reports. Borrowed for the callback. status: 200 applied; 400 the step
 * needs text; 404 no such case (or not the department's); 409 not allowed now, or the case
 * changed at the same moment (error says which); 503 the database failed. */
struct rb_case_act_outcome {
    int status;
    long long case_id;        /* 0 when the case was not found */
    const char *from_status;  /* "" when the case was not found */
    const char *to_status;    /* the new status when applied, else "" */
    const char *error;        /* NULL when applied */
};
typedef void (*rb_case_act_fn)(const struct rb_case_act_outcome *o, void *arg);

/* Loads the case by canonical tracking number, checks that it is with `department` (NULL:
 * any), and applies the step as rb_case_step_apply (event = the action's name). fn is called
 * exactly once, never before this returns. RB_OK, or RB_EAGAIN (fn not called). */
int rb_case_act(struct rb_db *db, const char *tracking, const char *department,
                enum rb_case_action action, const char *actor_type, const char *actor_id,
                const char *text, const char *data_json, rb_case_act_fn fn, void *arg);

#endif
