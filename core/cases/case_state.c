/* The case state machine: one table, read by one function (the diagram is in case_state.h).
 * Adding a step is adding a row; tests/unit/test_case_state.c holds an independent copy of
 * the allowed steps and checks every (state, action, kind, actor) against it. */
#include <string.h>

#include "base/common.h"
#include "cases/case_state.h"

#define K_COMPLAINT (1u << RB_CASE_COMPLAINT)
#define K_FEEDBACK (1u << RB_CASE_FEEDBACK)
#define K_INFORMATION (1u << RB_CASE_INFORMATION)
#define K_ALL (K_COMPLAINT | K_FEEDBACK | K_INFORMATION)
#define K_C K_COMPLAINT
#define K_I K_INFORMATION
#define K_CF (K_COMPLAINT | K_FEEDBACK)
#define K_CI (K_COMPLAINT | K_INFORMATION)

#define BY_CITIZEN (1u << RB_CASE_BY_CITIZEN)
#define BY_STAFF (1u << RB_CASE_BY_STAFF)
#define BY_SYSTEM (1u << RB_CASE_BY_SYSTEM)
#define BY_ANYONE (BY_CITIZEN | BY_STAFF | BY_SYSTEM)

struct rb_case_step {
    enum rb_case_state from;
    enum rb_case_action action;
    enum rb_case_state to;
    unsigned kinds;  /* K_* mask */
    unsigned actors; /* BY_* mask */
    int needs_reason;
};

#define S(x) RB_CASE_##x
#define A(x) RB_CASE_DO_##x

/* At most one row per (from, action): the machine is deterministic. */
static const struct rb_case_step rb_case_steps[] = {
    /* from               action            to                   kinds  actors             reason */
    {S(SUBMITTED),        A(ROUTE),         S(ROUTED),           K_ALL, BY_STAFF | BY_SYSTEM, 0},
    {S(SUBMITTED),        A(REJECT),        S(REJECTED),         K_ALL, BY_STAFF | BY_SYSTEM, 1},
    {S(SUBMITTED),        A(WITHDRAW),      S(CLOSED),           K_ALL, BY_CITIZEN,           0},

    {S(ROUTED),           A(ACKNOWLEDGE),   S(ACKNOWLEDGED),     K_ALL, BY_STAFF,             0},
    {S(ROUTED),           A(START),         S(IN_PROGRESS),      K_ALL, BY_STAFF,             0},
    {S(ROUTED),           A(TRANSFER),      S(TRANSFERRED),      K_ALL, BY_STAFF,             1},
    {S(ROUTED),           A(REJECT),        S(REJECTED),         K_ALL, BY_STAFF,             1},
    {S(ROUTED),           A(WITHDRAW),      S(CLOSED),           K_ALL, BY_CITIZEN,           0},

    {S(ACKNOWLEDGED),     A(START),         S(IN_PROGRESS),      K_ALL, BY_STAFF,             0},
    {S(ACKNOWLEDGED),     A(ASK_CITIZEN),   S(AWAITING_CITIZEN), K_ALL, BY_STAFF,             1},
    {S(ACKNOWLEDGED),     A(RESOLVE),       S(RESOLVED),         K_CF,  BY_STAFF,             1},
    {S(ACKNOWLEDGED),     A(ANSWER),        S(ANSWERED),         K_I,   BY_STAFF,             1},
    {S(ACKNOWLEDGED),     A(TRANSFER),      S(TRANSFERRED),      K_ALL, BY_STAFF,             1},
    {S(ACKNOWLEDGED),     A(REJECT),        S(REJECTED),         K_ALL, BY_STAFF,             1},
    {S(ACKNOWLEDGED),     A(WITHDRAW),      S(CLOSED),           K_ALL, BY_CITIZEN,           0},

    {S(IN_PROGRESS),      A(ASK_CITIZEN),   S(AWAITING_CITIZEN), K_ALL, BY_STAFF,             1},
    {S(IN_PROGRESS),      A(RESOLVE),       S(RESOLVED),         K_CF,  BY_STAFF,             1},
    {S(IN_PROGRESS),      A(ANSWER),        S(ANSWERED),         K_I,   BY_STAFF,             1},
    {S(IN_PROGRESS),      A(TRANSFER),      S(TRANSFERRED),      K_ALL, BY_STAFF,             1},
    {S(IN_PROGRESS),      A(REJECT),        S(REJECTED),         K_ALL, BY_STAFF,             1},
    {S(IN_PROGRESS),      A(WITHDRAW),      S(CLOSED),           K_ALL, BY_CITIZEN,           0},

    {S(AWAITING_CITIZEN), A(CITIZEN_REPLY), S(IN_PROGRESS),      K_ALL, BY_CITIZEN,           0},
    {S(AWAITING_CITIZEN), A(CLOSE),         S(CLOSED),           K_ALL, BY_STAFF | BY_SYSTEM, 1},
    {S(AWAITING_CITIZEN), A(WITHDRAW),      S(CLOSED),           K_ALL, BY_CITIZEN,           0},

    {S(RESOLVED),         A(CLOSE),         S(CLOSED),           K_CF,  BY_ANYONE,            0},
    {S(RESOLVED),         A(RATE),          S(CLOSED),           K_CF,  BY_CITIZEN,           0},
    {S(RESOLVED),         A(REOPEN),        S(REOPENED),         K_C,   BY_CITIZEN,           0},

    {S(ANSWERED),         A(CLOSE),         S(CLOSED),           K_I,   BY_ANYONE,            0},
    {S(ANSWERED),         A(RATE),          S(CLOSED),           K_I,   BY_CITIZEN,           0},
    {S(ANSWERED),         A(REOPEN),        S(REOPENED),         K_I,   BY_CITIZEN,           0},

    {S(CLOSED),           A(RATE),          S(CLOSED),           K_ALL, BY_CITIZEN,           0},
    {S(CLOSED),           A(REOPEN),        S(REOPENED),         K_CI,  BY_CITIZEN,           0},

    /* rejected: terminal, no rows. */

    {S(TRANSFERRED),      A(ACKNOWLEDGE),   S(ACKNOWLEDGED),     K_ALL, BY_STAFF,             0},
    {S(TRANSFERRED),      A(START),         S(IN_PROGRESS),      K_ALL, BY_STAFF,             0},
    {S(TRANSFERRED),      A(TRANSFER),      S(TRANSFERRED),      K_ALL, BY_STAFF,             1},
    {S(TRANSFERRED),      A(REJECT),        S(REJECTED),         K_ALL, BY_STAFF,             1},
    {S(TRANSFERRED),      A(WITHDRAW),      S(CLOSED),           K_ALL, BY_CITIZEN,           0},

    {S(REOPENED),         A(ACKNOWLEDGE),   S(ACKNOWLEDGED),     K_ALL, BY_STAFF,             0},
    {S(REOPENED),         A(START),         S(IN_PROGRESS),      K_ALL, BY_STAFF,             0},
    {S(REOPENED),         A(TRANSFER),      S(TRANSFERRED),      K_ALL, BY_STAFF,             1},
    {S(REOPENED),         A(REJECT),        S(REJECTED),         K_ALL, BY_STAFF,             1},
    {S(REOPENED),         A(WITHDRAW),      S(CLOSED),           K_ALL, BY_CITIZEN,           0},
};

#undef S
#undef A

/* Names. */
#define RB_CASE_NAME_STATE_(a, N, s, d) s,
#define RB_CASE_NAME_ACTION_(a, N, s, v, r) s,
#define RB_CASE_NAME_ACTOR_(a, N, s, w) s,
#define RB_CASE_NAME_KIND_(a, N, s) s,
static const char *const rb_case_state_names[] = {RB_CASE_STATE_LIST(RB_CASE_NAME_STATE_, )};
static const char *const rb_case_action_names[] = {RB_CASE_ACTION_LIST(RB_CASE_NAME_ACTION_, )};
static const char *const rb_case_actor_names[] = {RB_CASE_ACTOR_LIST(RB_CASE_NAME_ACTOR_, )};
static const char *const rb_case_kind_names[] = {RB_CASE_KIND_LIST(RB_CASE_NAME_KIND_, )};

/* Refusal sentences, spelled out at compile time by crossing the lists above:
 *   [action][state] "cannot <verb> a case that <state phrase>"
 *   [action][actor] "<who> cannot <verb> this case"
 *   [action]        the missing-reason sentence */
#define RB_CASE_STATE_CELL_(verb, N, s, phrase) "cannot " verb " a case that " phrase,
#define RB_CASE_STATE_ROW_(a, N, s, verb, r) {RB_CASE_STATE_LIST(RB_CASE_STATE_CELL_, verb)},
static const char *const rb_case_state_refusals[RB_CASE_ACTION_COUNT][RB_CASE_STATE_COUNT] = {
    RB_CASE_ACTION_LIST(RB_CASE_STATE_ROW_, )};

#define RB_CASE_ACTOR_CELL_(verb, N, s, who) who " cannot " verb " this case",
#define RB_CASE_ACTOR_ROW_(a, N, s, verb, r) {RB_CASE_ACTOR_LIST(RB_CASE_ACTOR_CELL_, verb)},
static const char *const rb_case_actor_refusals[RB_CASE_ACTION_COUNT][RB_CASE_ACTOR_COUNT] = {
    RB_CASE_ACTION_LIST(RB_CASE_ACTOR_ROW_, )};

#define RB_CASE_REASON_CELL_(a, N, s, v, r) r,
static const char *const rb_case_reason_refusals[RB_CASE_ACTION_COUNT] = {
    RB_CASE_ACTION_LIST(RB_CASE_REASON_CELL_, )};

_Static_assert(RB_ARRAY_LEN(rb_case_state_names) == RB_CASE_STATE_COUNT, "state names");
_Static_assert(RB_ARRAY_LEN(rb_case_action_names) == RB_CASE_ACTION_COUNT, "action names");
_Static_assert(RB_CASE_ACTION_COUNT <= 32, "rb_case_actions returns a 32-bit mask");

static const char *rb_case_name(const char *const *names, size_t n, int v)
{
    return v >= 0 && (size_t)v < n ? names[v] : NULL;
}

static int rb_case_lookup(const char *const *names, size_t n, const char *s, int *out)
{
    if (!s)
        return RB_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            *out = (int)i;
            return RB_OK;
        }
    }
    return RB_EINVAL;
}

const char *rb_case_state_str(enum rb_case_state s)
{
    return rb_case_name(rb_case_state_names, RB_CASE_STATE_COUNT, (int)s);
}

const char *rb_case_action_str(enum rb_case_action a)
{
    return rb_case_name(rb_case_action_names, RB_CASE_ACTION_COUNT, (int)a);
}

const char *rb_case_actor_str(enum rb_case_actor a)
{
    return rb_case_name(rb_case_actor_names, RB_CASE_ACTOR_COUNT, (int)a);
}

const char *rb_case_kind_str(enum rb_case_kind k)
{
    return rb_case_name(rb_case_kind_names, RB_CASE_KIND_COUNT, (int)k);
}

#define RB_CASE_FROM_STR(fn, type, names, count)                                              \
    int fn(const char *s, type *out)                                                          \
    {                                                                                         \
        int v;                                                                                \
        if (rb_case_lookup(names, count, s, &v) != RB_OK)                                     \
            return RB_EINVAL;                                                                 \
        *out = (type)v;                                                                       \
        return RB_OK;                                                                         \
    }
RB_CASE_FROM_STR(rb_case_state_from_str, enum rb_case_state, rb_case_state_names,
                 RB_CASE_STATE_COUNT)
RB_CASE_FROM_STR(rb_case_action_from_str, enum rb_case_action, rb_case_action_names,
                 RB_CASE_ACTION_COUNT)
RB_CASE_FROM_STR(rb_case_actor_from_str, enum rb_case_actor, rb_case_actor_names,
                 RB_CASE_ACTOR_COUNT)
RB_CASE_FROM_STR(rb_case_kind_from_str, enum rb_case_kind, rb_case_kind_names,
                 RB_CASE_KIND_COUNT)

static const struct rb_case_step *rb_case_find(enum rb_case_state from,
                                               enum rb_case_action action)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(rb_case_steps); i++) {
        if (rb_case_steps[i].from == from && rb_case_steps[i].action == action)
            return &rb_case_steps[i];
    }
    return NULL;
}

/* Does the action apply to this kind from any state at all? */
static int rb_case_kind_can(enum rb_case_kind kind, enum rb_case_action action)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(rb_case_steps); i++) {
        if (rb_case_steps[i].action == action && (rb_case_steps[i].kinds & (1u << kind)))
            return 1;
    }
    return 0;
}

static const char *rb_case_kind_refusal(enum rb_case_kind kind, enum rb_case_action action)
{
    if (action == RB_CASE_DO_RESOLVE && kind == RB_CASE_INFORMATION)
        return "an information request is answered, not resolved";
    if (action == RB_CASE_DO_ANSWER && kind == RB_CASE_COMPLAINT)
        return "a complaint is resolved, not answered";
    if (action == RB_CASE_DO_ANSWER && kind == RB_CASE_FEEDBACK)
        return "feedback is resolved, not answered";
    if (action == RB_CASE_DO_REOPEN && kind == RB_CASE_FEEDBACK)
        return "feedback cannot be reopened; the citizen can send new feedback";
    return "this action does not apply to this kind of case";
}

static int rb_case_refuse(int rc, const char *sentence, enum rb_case_state from,
                          enum rb_case_state *to, const char **why)
{
    if (to)
        *to = from;
    if (why)
        *why = sentence;
    return rc;
}

int rb_case_transition(enum rb_case_kind kind, enum rb_case_state from,
                       enum rb_case_action action, enum rb_case_actor actor, int has_reason,
                       enum rb_case_state *to, const char **why)
{
    const struct rb_case_step *step;

    if ((unsigned)kind >= RB_CASE_KIND_COUNT)
        return rb_case_refuse(RB_EINVAL, "unknown kind of case", from, to, why);
    if ((unsigned)from >= RB_CASE_STATE_COUNT)
        return rb_case_refuse(RB_EINVAL, "unknown case state", from, to, why);
    if ((unsigned)action >= RB_CASE_ACTION_COUNT)
        return rb_case_refuse(RB_EINVAL, "unknown action", from, to, why);
    if ((unsigned)actor >= RB_CASE_ACTOR_COUNT)
        return rb_case_refuse(RB_EINVAL, "unknown actor", from, to, why);

    if (!rb_case_kind_can(kind, action))
        return rb_case_refuse(RB_EINVAL, rb_case_kind_refusal(kind, action), from, to, why);
    step = rb_case_find(from, action);
    if (!step || !(step->kinds & (1u << kind)))
        return rb_case_refuse(RB_EINVAL, rb_case_state_refusals[action][from], from, to, why);
    if (!(step->actors & (1u << actor)))
        return rb_case_refuse(RB_ECASE_ACTOR, rb_case_actor_refusals[action][actor], from, to,
                              why);
    if (step->needs_reason && !has_reason)
        return rb_case_refuse(RB_ECASE_REASON, rb_case_reason_refusals[action], from, to, why);
    if (to)
        *to = step->to;
    return RB_OK;
}

unsigned rb_case_actions(enum rb_case_kind kind, enum rb_case_state from,
                         enum rb_case_actor actor)
{
    unsigned mask = 0;

    if ((unsigned)kind >= RB_CASE_KIND_COUNT || (unsigned)from >= RB_CASE_STATE_COUNT ||
        (unsigned)actor >= RB_CASE_ACTOR_COUNT)
        return 0;
    for (size_t i = 0; i < RB_ARRAY_LEN(rb_case_steps); i++) {
        const struct rb_case_step *st = &rb_case_steps[i];

        if (st->from == from && (st->kinds & (1u << kind)) && (st->actors & (1u << actor)))
            mask |= 1u << st->action;
    }
    return mask;
}

int rb_case_state_is_terminal(enum rb_case_state s)
{
    if ((unsigned)s >= RB_CASE_STATE_COUNT)
        return 0;
    for (size_t i = 0; i < RB_ARRAY_LEN(rb_case_steps); i++) {
        if (rb_case_steps[i].from == s)
            return 0;
    }
    return 1;
}

int rb_case_state_is_open(enum rb_case_state s)
{
    switch (s) {
    case RB_CASE_SUBMITTED:
    case RB_CASE_ROUTED:
    case RB_CASE_ACKNOWLEDGED:
    case RB_CASE_IN_PROGRESS:
    case RB_CASE_AWAITING_CITIZEN:
    case RB_CASE_TRANSFERRED:
    case RB_CASE_REOPENED:
        return 1;
    case RB_CASE_RESOLVED:
    case RB_CASE_ANSWERED:
    case RB_CASE_CLOSED:
    case RB_CASE_REJECTED:
    case RB_CASE_STATE_COUNT:
        break;
    }
    return 0;
}
