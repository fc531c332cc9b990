/* core/cases/: the case domain below the channels: the state machine as one table (case_state),
 * batched reads by tracking number (case_read), one state-machine step on a stored case
 * (case_act), citizens' comments and ratings (case_comment, case_rating), citizens' sign-in
 * tokens (citizen_auth). Calls: base, config, db. */
/* The life of a case: states, actions, who may take them — as ONE table (case_state.c).
 *
 * Main road of a complaint (feedback alike):
 *
 *   submitted ─route─► routed ─acknowledge─► acknowledged ─start─► in_progress ─resolve*─►
 *                         └──────────────── start ───────────────────►  │   ▲
 *                                                           ask_citizen*│   │citizen_reply
 *                                                                       ▼   │
 *                                                               awaiting_citizen
 *   ─► resolved ─close | rate─► closed ─reopen─► reopened ─acknowledge | start─► ...
 *         └──────────── reopen ──────────────────►┘
 *
 * An information request takes the same road but ends "answered" (answer*) instead of
 * "resolved"; rejected is the only terminal state.
 *
 * Every step (c = citizen, s = staff, y = system; * = needs a reason):
 *
 *   from               action → to                       kinds        who
 *   submitted          route → routed                    all          s y
 *                      reject* → rejected                all          s y   (spam, duplicate)
 *   routed             acknowledge → acknowledged        all          s
 *                      start → in_progress               all          s
 *   acknowledged       start → in_progress               all          s
 *                      ask_citizen* → awaiting_citizen   all          s
 *                      resolve* → resolved               compl, fdbk  s
 *                      answer* → answered                information  s
 *   in_progress        ask_citizen* → awaiting_citizen   all          s
 *                      resolve* → resolved               compl, fdbk  s
 *                      answer* → answered                information  s
 *   awaiting_citizen   citizen_reply → in_progress       all          c
 *                      close* → closed                   all          s y   (no reply in time)
 *   resolved           close → closed                    compl, fdbk  c s y
 *                      rate → closed                     compl, fdbk  c
 *                      reopen → reopened                 complaint    c
 *   answered           close → closed, rate → closed     information  c s y / c
 *                      reopen → reopened                 information  c
 *   closed             rate → closed                     all          c
 *                      reopen → reopened                 compl, info  c
 *   transferred        acknowledge → acknowledged, start → in_progress       s
 *   reopened           acknowledge → acknowledged, start → in_progress       s
 *   routed, acknowledged, in_progress, transferred, reopened:
 *                      transfer* → transferred           all          s
 *                      reject* → rejected                all          s
 *   submitted, routed, acknowledged, in_progress, awaiting_citizen, transferred, reopened:
 *                      withdraw → closed                 all          c
 *   rejected           (terminal)
 *
 * Kinds: an information request ends "answered", never "resolved"; complaints and feedback
 * end "resolved" and cannot be "answered"; feedback cannot be reopened. Actors: "citizen" is
 * the person who filed the case, "staff" a department or bureau user (or a department's own
 * system acting for it through the webhook plugin), "system" Rabta itself (router, SLA timer,
 * auto-close). The reopen window (how long after resolution a citizen may reopen) is the
 * caller's business, as are permissions finer than the actor (which department, which role).
 * A rating closes a resolved or answered case; an unhappy citizen reopens instead.
 */
#ifndef RB_CASE_STATE_H
#define RB_CASE_STATE_H

/* Refusals besides RB_EINVAL (no such transition for this state and kind). */
#define RB_ECASE_ACTOR (-40)  /* the transition exists, but this actor may not take it */
#define RB_ECASE_REASON (-41) /* the transition needs a reason and none was given */

/* X(arg, NAME, "name", "… a case that <phrase>") — the phrase finishes refusal sentences. */
#define RB_CASE_STATE_LIST(X, a)                                                              \
    X(a, SUBMITTED, "submitted", "has not been routed to a department yet")                   \
    X(a, ROUTED, "routed", "is already with a department")                                    \
    X(a, ACKNOWLEDGED, "acknowledged", "has already been acknowledged")                       \
    X(a, IN_PROGRESS, "in_progress", "is in progress")                                        \
    X(a, AWAITING_CITIZEN, "awaiting_citizen", "is awaiting the citizen's reply")             \
    X(a, RESOLVED, "resolved", "has been resolved")                                           \
    X(a, ANSWERED, "answered", "has been answered")                                           \
    X(a, CLOSED, "closed", "is closed")                                                       \
    X(a, REJECTED, "rejected", "has been rejected")                                           \
    X(a, TRANSFERRED, "transferred", "is being transferred to another department")            \
    X(a, REOPENED, "reopened", "has been reopened")

/* X(arg, NAME, "name", "cannot <verb> …", "sentence when the reason is missing") */
#define RB_CASE_ACTION_LIST(X, a)                                                             \
    X(a, ROUTE, "route", "route", "")                                                         \
    X(a, ACKNOWLEDGE, "acknowledge", "acknowledge", "")                                       \
    X(a, START, "start", "start work on", "")                                                 \
    X(a, ASK_CITIZEN, "ask_citizen", "ask the citizen about",                                 \
      "asking the citizen needs the question")                                                \
    X(a, CITIZEN_REPLY, "citizen_reply", "reply to", "")                                      \
    X(a, RESOLVE, "resolve", "resolve", "resolving a case needs a note of what was done")     \
    X(a, ANSWER, "answer", "answer", "answering an information request needs the answer")     \
    X(a, REJECT, "reject", "reject", "rejecting a case needs a reason")                       \
    X(a, TRANSFER, "transfer", "transfer", "transferring a case needs a reason")              \
    X(a, CLOSE, "close", "close", "closing this case needs a reason")                         \
    X(a, REOPEN, "reopen", "reopen", "")                                                      \
    X(a, RATE, "rate", "rate", "")                                                            \
    X(a, WITHDRAW, "withdraw", "withdraw", "")

/* X(arg, NAME, "name", "<who> cannot …") */
#define RB_CASE_ACTOR_LIST(X, a)                                                              \
    X(a, CITIZEN, "citizen", "the citizen")                                                   \
    X(a, STAFF, "staff", "department staff")                                                  \
    X(a, SYSTEM, "system", "the system")

#define RB_CASE_KIND_LIST(X, a)                                                               \
    X(a, COMPLAINT, "complaint")                                                              \
    X(a, FEEDBACK, "feedback")                                                                \
    X(a, INFORMATION, "information")

#define RB_CASE_ENUM_STATE_(a, N, s, d) RB_CASE_##N,
#define RB_CASE_ENUM_ACTION_(a, N, s, v, r) RB_CASE_DO_##N,
#define RB_CASE_ENUM_ACTOR_(a, N, s, w) RB_CASE_BY_##N,
#define RB_CASE_ENUM_KIND_(a, N, s) RB_CASE_##N,

/* RB_CASE_SUBMITTED, RB_CASE_ROUTED, ... RB_CASE_REOPENED */
enum rb_case_state { RB_CASE_STATE_LIST(RB_CASE_ENUM_STATE_, ) RB_CASE_STATE_COUNT };
/* RB_CASE_DO_ROUTE, RB_CASE_DO_ACKNOWLEDGE, ... RB_CASE_DO_WITHDRAW */
enum rb_case_action { RB_CASE_ACTION_LIST(RB_CASE_ENUM_ACTION_, ) RB_CASE_ACTION_COUNT };
/* RB_CASE_BY_CITIZEN, RB_CASE_BY_STAFF, RB_CASE_BY_SYSTEM */
enum rb_case_actor { RB_CASE_ACTOR_LIST(RB_CASE_ENUM_ACTOR_, ) RB_CASE_ACTOR_COUNT };
/* RB_CASE_COMPLAINT, RB_CASE_FEEDBACK, RB_CASE_INFORMATION */
enum rb_case_kind { RB_CASE_KIND_LIST(RB_CASE_ENUM_KIND_, ) RB_CASE_KIND_COUNT };

/* Names as stored in the database and used in the API ("in_progress"); NULL when out of
 * range. Static strings. */
const char *rb_case_state_str(enum rb_case_state s);
const char *rb_case_action_str(enum rb_case_action a);
const char *rb_case_actor_str(enum rb_case_actor a);
const char *rb_case_kind_str(enum rb_case_kind k);

/* Exact, case-sensitive names back to values. RB_OK, or RB_EINVAL (out untouched). */
int rb_case_state_from_str(const char *s, enum rb_case_state *out);
int rb_case_action_from_str(const char *s, enum rb_case_action *out);
int rb_case_actor_from_str(const char *s, enum rb_case_actor *out);
int rb_case_kind_from_str(const char *s, enum rb_case_kind *out);

/* May `actor` take `action` on a case of `kind` in state `from`? On RB_OK *to is the new
 * state. Otherwise *to = from and *why (if not NULL) is a static sentence for the person who
 * tried ("cannot resolve a case that is awaiting the citizen's reply"):
 *   RB_EINVAL        arguments out of range, the action never applies to this kind
 *                    ("an information request is answered, not resolved"), or not from
 *                    this state;
 *   RB_ECASE_ACTOR   the step exists but this actor may not take it;
 *   RB_ECASE_REASON  the step needs a reason and has_reason is 0.
 * to may be NULL. */
int rb_case_transition(enum rb_case_kind kind, enum rb_case_state from,
                       enum rb_case_action action, enum rb_case_actor actor, int has_reason,
                       enum rb_case_state *to, const char **why);

/* Bit (1u << action) set for each action `actor` may take now (reasons aside): what buttons
 * a screen shows. 0 for arguments out of range. */
unsigned rb_case_actions(enum rb_case_kind kind, enum rb_case_state from,
                         enum rb_case_actor actor);

/* 1 if no one can take any action from s (rejected), else 0. */
int rb_case_state_is_terminal(enum rb_case_state s);

/* 1 if the department still owes the citizen something in state s (submitted through
 * awaiting_citizen, transferred, reopened), 0 once resolved, answered, closed or rejected. */
int rb_case_state_is_open(enum rb_case_state s);

#endif
