/* core/cases/case_state.c: the case state machine. The allowed steps are written down again here,
 * independently and in another notation, as the specification; every (kind, state, action,
 * actor, reason given or not) — all 3 x 11 x 13 x 3 x 2 of them — is checked against it,
 * together with the sentences, terminal states, reachability and the names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/common.h"
#include "cases/case_state.h"

/* "from action to kinds actors [*]": kinds from c(omplaint) f(eedback) i(nformation),
 * actors from c(itizen) s(taff) y (system), "*" = needs a reason. */
static const char *const spec[] = {
    "submitted route routed cfi sy",
    "submitted reject rejected cfi sy *",
    "submitted withdraw closed cfi c",

    "routed acknowledge acknowledged cfi s",
    "routed start in_progress cfi s",
    "routed transfer transferred cfi s *",
    "routed reject rejected cfi s *",
    "routed withdraw closed cfi c",

    "acknowledged start in_progress cfi s",
    "acknowledged ask_citizen awaiting_citizen cfi s *",
    "acknowledged resolve resolved cf s *",
    "acknowledged answer answered i s *",
    "acknowledged transfer transferred cfi s *",
    "acknowledged reject rejected cfi s *",
    "acknowledged withdraw closed cfi c",

    "in_progress ask_citizen awaiting_citizen cfi s *",
    "in_progress resolve resolved cf s *",
    "in_progress answer answered i s *",
    "in_progress transfer transferred cfi s *",
    "in_progress reject rejected cfi s *",
    "in_progress withdraw closed cfi c",

    "awaiting_citizen citizen_reply in_progress cfi c",
    "awaiting_citizen close closed cfi sy *",
    "awaiting_citizen withdraw closed cfi c",

    "resolved close closed cf csy",
    "resolved rate closed cf c",
    "resolved reopen reopened c c",

    "answered close closed i csy",
    "answered rate closed i c",
    "answered reopen reopened i c",

    "closed rate closed cfi c",
    "closed reopen reopened ci c",

    "transferred acknowledge acknowledged cfi s",
    "transferred start in_progress cfi s",
    "transferred transfer transferred cfi s *",
    "transferred reject rejected cfi s *",
    "transferred withdraw closed cfi c",

    "reopened acknowledge acknowledged cfi s",
    "reopened start in_progress cfi s",
    "reopened transfer transferred cfi s *",
    "reopened reject rejected cfi s *",
    "reopened withdraw closed cfi c",
};

struct step {
    enum rb_case_state from, to;
    enum rb_case_action action;
    unsigned kinds, actors;
    int reason;
};

static struct step steps[RB_ARRAY_LEN(spec)];

static unsigned letters(const char *s, const char *alphabet)
{
    unsigned m = 0;

    for (; *s; s++) {
        const char *p = strchr(alphabet, *s);
        if (!p)
            fail_msg("bad letter '%c' in spec", *s);
        m |= 1u << (p - alphabet);
    }
    return m;
}

/* Parses the spec with the module's own from_str functions (which they thereby test). */
static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < RB_ARRAY_LEN(spec); i++) {
        char from[32], action[32], to[32], kinds[8], actors[8], star[4] = "";
        int n = sscanf(spec[i], "%31s %31s %31s %7s %7s %3s", from, action, to, kinds, actors,
                       star);
        if (n < 5)
            fail_msg("spec line %zu unreadable", i);
        if (rb_case_state_from_str(from, &steps[i].from) != RB_OK ||
            rb_case_action_from_str(action, &steps[i].action) != RB_OK ||
            rb_case_state_from_str(to, &steps[i].to) != RB_OK)
            fail_msg("spec line %zu: unknown name", i);
        steps[i].kinds = letters(kinds, "cfi");  /* same order as enum rb_case_kind */
        steps[i].actors = letters(actors, "csy"); /* same order as enum rb_case_actor */
        steps[i].reason = strcmp(star, "*") == 0;
    }
    return 0;
}

static const struct step *spec_find(enum rb_case_state from, enum rb_case_action action)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(steps); i++)
        if (steps[i].from == from && steps[i].action == action)
            return &steps[i];
    return NULL;
}

static void names_round_trip(void **state)
{
    (void)state;
    static const char *const states[] = {"submitted", "routed", "acknowledged", "in_progress",
                                         "awaiting_citizen", "resolved", "answered", "closed",
                                         "rejected", "transferred", "reopened"};
    static const char *const actions[] = {"route", "acknowledge", "start", "ask_citizen",
                                          "citizen_reply", "resolve", "answer", "reject",
                                          "transfer", "close", "reopen", "rate", "withdraw"};

    assert_int_equal(RB_CASE_STATE_COUNT, RB_ARRAY_LEN(states));
    assert_int_equal(RB_CASE_ACTION_COUNT, RB_ARRAY_LEN(actions));
    for (int s = 0; s < RB_CASE_STATE_COUNT; s++) {
        enum rb_case_state back = RB_CASE_STATE_COUNT;
        assert_string_equal(rb_case_state_str((enum rb_case_state)s), states[s]);
        assert_int_equal(rb_case_state_from_str(states[s], &back), RB_OK);
        assert_int_equal(back, s);
    }
    for (int a = 0; a < RB_CASE_ACTION_COUNT; a++) {
        enum rb_case_action back = RB_CASE_ACTION_COUNT;
        assert_string_equal(rb_case_action_str((enum rb_case_action)a), actions[a]);
        assert_int_equal(rb_case_action_from_str(actions[a], &back), RB_OK);
        assert_int_equal(back, a);
    }
    assert_string_equal(rb_case_kind_str(RB_CASE_COMPLAINT), "complaint");
    assert_string_equal(rb_case_kind_str(RB_CASE_FEEDBACK), "feedback");
    assert_string_equal(rb_case_kind_str(RB_CASE_INFORMATION), "information");
    assert_string_equal(rb_case_actor_str(RB_CASE_BY_CITIZEN), "citizen");
    assert_string_equal(rb_case_actor_str(RB_CASE_BY_STAFF), "staff");
    assert_string_equal(rb_case_actor_str(RB_CASE_BY_SYSTEM), "system");
    {
        enum rb_case_kind k;
        enum rb_case_actor who;
        assert_int_equal(rb_case_kind_from_str("information", &k), RB_OK);
        assert_int_equal(k, RB_CASE_INFORMATION);
        assert_int_equal(rb_case_actor_from_str("system", &who), RB_OK);
        assert_int_equal(who, RB_CASE_BY_SYSTEM);
    }

    /* Unknown names are refused and leave the output alone. */
    static const char *const bad[] = {"", "Resolved", "in-progress", "in_progress ", "open",
                                      "resolved\n", NULL};
    for (size_t i = 0; i < RB_ARRAY_LEN(bad); i++) {
        enum rb_case_state s = RB_CASE_CLOSED;
        enum rb_case_action a = RB_CASE_DO_RATE;
        enum rb_case_kind k = RB_CASE_FEEDBACK;
        enum rb_case_actor who = RB_CASE_BY_STAFF;
        assert_int_equal(rb_case_state_from_str(bad[i], &s), RB_EINVAL);
        assert_int_equal(rb_case_action_from_str(bad[i], &a), RB_EINVAL);
        assert_int_equal(rb_case_kind_from_str(bad[i], &k), RB_EINVAL);
        assert_int_equal(rb_case_actor_from_str(bad[i], &who), RB_EINVAL);
        assert_int_equal(s, RB_CASE_CLOSED);
        assert_int_equal(a, RB_CASE_DO_RATE);
        assert_int_equal(k, RB_CASE_FEEDBACK);
        assert_int_equal(who, RB_CASE_BY_STAFF);
    }
    assert_null(rb_case_state_str(RB_CASE_STATE_COUNT));
    assert_null(rb_case_state_str((enum rb_case_state)-1));
    assert_null(rb_case_action_str(RB_CASE_ACTION_COUNT));
    assert_null(rb_case_actor_str(RB_CASE_ACTOR_COUNT));
    assert_null(rb_case_kind_str(RB_CASE_KIND_COUNT));
}

/* Every allowed step, one by one: with a reason it goes through to the right state; without
 * one, steps that need a reason are refused with RB_ECASE_REASON and a sentence. */
static void every_allowed_step_goes_through(void **state)
{
    (void)state;
    int tried = 0;

    for (size_t i = 0; i < RB_ARRAY_LEN(steps); i++) {
        for (int k = 0; k < RB_CASE_KIND_COUNT; k++) {
            if (!(steps[i].kinds & (1u << k)))
                continue;
            for (int a = 0; a < RB_CASE_ACTOR_COUNT; a++) {
                if (!(steps[i].actors & (1u << a)))
                    continue;
                enum rb_case_state to = RB_CASE_STATE_COUNT;
                const char *why = NULL;
                int rc = rb_case_transition((enum rb_case_kind)k, steps[i].from,
                                            steps[i].action, (enum rb_case_actor)a, 1, &to, &why);
                if (rc != RB_OK)
                    fail_msg("\"%s\" as %s on a %s refused: %s", spec[i],
                             rb_case_actor_str((enum rb_case_actor)a),
                             rb_case_kind_str((enum rb_case_kind)k), why ? why : "(null)");
                assert_int_equal(to, steps[i].to);

                to = RB_CASE_STATE_COUNT;
                why = NULL;
                rc = rb_case_transition((enum rb_case_kind)k, steps[i].from, steps[i].action,
                                        (enum rb_case_actor)a, 0, &to, &why);
                if (steps[i].reason) {
                    assert_int_equal(rc, RB_ECASE_REASON);
                    assert_int_equal(to, steps[i].from);
                    assert_non_null(why);
                    assert_non_null(strstr(why, "needs"));
                } else {
                    assert_int_equal(rc, RB_OK);
                    assert_int_equal(to, steps[i].to);
                }
                tried++;
            }
        }
    }
    assert_true(tried > 100);
}

/* The whole space against the spec: 3 kinds x 11 states x 13 actions x 3 actors x 2. */
static void exhaustive_table_matches_the_spec(void **state)
{
    (void)state;
    int combos = 0, allowed = 0;

    for (int k = 0; k < RB_CASE_KIND_COUNT; k++)
        for (int s = 0; s < RB_CASE_STATE_COUNT; s++)
            for (int a = 0; a < RB_CASE_ACTOR_COUNT; a++) {
                unsigned want_mask = 0;
                for (int act = 0; act < RB_CASE_ACTION_COUNT; act++) {
                    const struct step *st = spec_find((enum rb_case_state)s,
                                                      (enum rb_case_action)act);
                    for (int reason = 0; reason <= 1; reason++) {
                        int want;
                        enum rb_case_state to = RB_CASE_STATE_COUNT;
                        const char *why = NULL;
                        int rc;

                        if (!st || !(st->kinds & (1u << k)))
                            want = RB_EINVAL;
                        else if (!(st->actors & (1u << a)))
                            want = RB_ECASE_ACTOR;
                        else if (st->reason && !reason)
                            want = RB_ECASE_REASON;
                        else
                            want = RB_OK;
                        rc = rb_case_transition((enum rb_case_kind)k, (enum rb_case_state)s,
                                                (enum rb_case_action)act,
                                                (enum rb_case_actor)a, reason, &to, &why);
                        if (rc != want)
                            fail_msg("%s %s: %s by %s (reason %d): got %d, want %d (%s)",
                                     rb_case_kind_str((enum rb_case_kind)k),
                                     rb_case_state_str((enum rb_case_state)s),
                                     rb_case_action_str((enum rb_case_action)act),
                                     rb_case_actor_str((enum rb_case_actor)a), reason, rc,
                                     want, why ? why : "");
                        if (rc == RB_OK) {
                            assert_int_equal(to, st->to);
                            allowed++;
                        } else {
                            assert_int_equal(to, s); /* unchanged */
                            if (!why || strlen(why) < 10)
                                fail_msg("refusal without a sentence");
                        }
                        combos++;
                    }
                    if (st && (st->kinds & (1u << k)) && (st->actors & (1u << a)))
                        want_mask |= 1u << act;
                }
                assert_int_equal(rb_case_actions((enum rb_case_kind)k, (enum rb_case_state)s,
                                                 (enum rb_case_actor)a),
                                 want_mask);
            }
    assert_int_equal(combos, 3 * 11 * 13 * 3 * 2);
    assert_true(allowed > 0);
}

static void expect_refusal(enum rb_case_kind k, enum rb_case_state s, enum rb_case_action act,
                           enum rb_case_actor a, int reason, int want_rc, const char *sentence)
{
    const char *why = NULL;
    int rc = rb_case_transition(k, s, act, a, reason, NULL, &why);

    assert_int_equal(rc, want_rc);
    assert_non_null(why);
    if (strcmp(why, sentence) != 0)
        fail_msg("said \"%s\", want \"%s\"", why, sentence);
}

static void refusals_are_sentences(void **state)
{
    (void)state;
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_AWAITING_CITIZEN, RB_CASE_DO_RESOLVE,
                   RB_CASE_BY_STAFF, 1, RB_EINVAL,
                   "cannot resolve a case that is awaiting the citizen's reply");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_SUBMITTED, RB_CASE_DO_START, RB_CASE_BY_STAFF, 0,
                   RB_EINVAL, "cannot start work on a case that has not been routed to a "
                              "department yet");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_IN_PROGRESS, RB_CASE_DO_RATE, RB_CASE_BY_CITIZEN,
                   0, RB_EINVAL, "cannot rate a case that is in progress");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_REJECTED, RB_CASE_DO_REOPEN, RB_CASE_BY_CITIZEN,
                   0, RB_EINVAL, "cannot reopen a case that has been rejected");
    expect_refusal(RB_CASE_INFORMATION, RB_CASE_IN_PROGRESS, RB_CASE_DO_RESOLVE,
                   RB_CASE_BY_STAFF, 1, RB_EINVAL,
                   "an information request is answered, not resolved");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_IN_PROGRESS, RB_CASE_DO_ANSWER, RB_CASE_BY_STAFF,
                   1, RB_EINVAL, "a complaint is resolved, not answered");
    expect_refusal(RB_CASE_FEEDBACK, RB_CASE_IN_PROGRESS, RB_CASE_DO_ANSWER, RB_CASE_BY_STAFF,
                   1, RB_EINVAL, "feedback is resolved, not answered");
    expect_refusal(RB_CASE_FEEDBACK, RB_CASE_CLOSED, RB_CASE_DO_REOPEN, RB_CASE_BY_CITIZEN, 0,
                   RB_EINVAL, "feedback cannot be reopened; the citizen can send new feedback");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_IN_PROGRESS, RB_CASE_DO_RESOLVE,
                   RB_CASE_BY_CITIZEN, 1, RB_ECASE_ACTOR, "the citizen cannot resolve this case");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_RESOLVED, RB_CASE_DO_REOPEN, RB_CASE_BY_STAFF, 0,
                   RB_ECASE_ACTOR, "department staff cannot reopen this case");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_RESOLVED, RB_CASE_DO_RATE, RB_CASE_BY_SYSTEM, 0,
                   RB_ECASE_ACTOR, "the system cannot rate this case");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_ROUTED, RB_CASE_DO_ACKNOWLEDGE, RB_CASE_BY_SYSTEM,
                   0, RB_ECASE_ACTOR, "the system cannot acknowledge this case");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_ROUTED, RB_CASE_DO_REJECT, RB_CASE_BY_STAFF, 0,
                   RB_ECASE_REASON, "rejecting a case needs a reason");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_IN_PROGRESS, RB_CASE_DO_TRANSFER,
                   RB_CASE_BY_STAFF, 0, RB_ECASE_REASON, "transferring a case needs a reason");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_IN_PROGRESS, RB_CASE_DO_RESOLVE, RB_CASE_BY_STAFF,
                   0, RB_ECASE_REASON, "resolving a case needs a note of what was done");
    expect_refusal(RB_CASE_INFORMATION, RB_CASE_IN_PROGRESS, RB_CASE_DO_ANSWER,
                   RB_CASE_BY_STAFF, 0, RB_ECASE_REASON,
                   "answering an information request needs the answer");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_IN_PROGRESS, RB_CASE_DO_ASK_CITIZEN,
                   RB_CASE_BY_STAFF, 0, RB_ECASE_REASON, "asking the citizen needs the question");
    expect_refusal(RB_CASE_COMPLAINT, RB_CASE_AWAITING_CITIZEN, RB_CASE_DO_CLOSE,
                   RB_CASE_BY_SYSTEM, 0, RB_ECASE_REASON, "closing this case needs a reason");

    /* Every state refusal reads "cannot <verb> a case that ..." and is distinct per state. */
    for (int act = 0; act < RB_CASE_ACTION_COUNT; act++) {
        const char *prev[RB_CASE_STATE_COUNT] = {0};
        for (int s = 0; s < RB_CASE_STATE_COUNT; s++) {
            const char *why = NULL;
            int rc = rb_case_transition(RB_CASE_COMPLAINT, (enum rb_case_state)s,
                                        (enum rb_case_action)act, RB_CASE_BY_CITIZEN, 1, NULL,
                                        &why);
            if (rc == RB_EINVAL && strncmp(why, "cannot ", 7) == 0) {
                assert_non_null(strstr(why, " a case that "));
                for (int p = 0; p < s; p++)
                    if (prev[p] && strcmp(prev[p], why) == 0)
                        fail_msg("two states share the sentence \"%s\"", why);
                prev[s] = why;
            }
        }
    }
}

static void rejected_is_the_only_terminal_state(void **state)
{
    (void)state;
    for (int s = 0; s < RB_CASE_STATE_COUNT; s++) {
        unsigned any = 0;
        for (int k = 0; k < RB_CASE_KIND_COUNT; k++)
            for (int a = 0; a < RB_CASE_ACTOR_COUNT; a++)
                any |= rb_case_actions((enum rb_case_kind)k, (enum rb_case_state)s,
                                       (enum rb_case_actor)a);
        assert_int_equal(rb_case_state_is_terminal((enum rb_case_state)s),
                         s == RB_CASE_REJECTED);
        assert_int_equal(any == 0, s == RB_CASE_REJECTED);
    }
    /* Nothing at all leaves rejected: not even a citizen reopening or the system closing. */
    for (int act = 0; act < RB_CASE_ACTION_COUNT; act++)
        for (int k = 0; k < RB_CASE_KIND_COUNT; k++)
            for (int a = 0; a < RB_CASE_ACTOR_COUNT; a++)
                assert_int_equal(rb_case_transition((enum rb_case_kind)k, RB_CASE_REJECTED,
                                                    (enum rb_case_action)act,
                                                    (enum rb_case_actor)a, 1, NULL, NULL),
                                 RB_EINVAL);
    /* Closed is final for staff and the system; only the citizen may rate or reopen. */
    assert_int_equal(rb_case_actions(RB_CASE_COMPLAINT, RB_CASE_CLOSED, RB_CASE_BY_STAFF), 0);
    assert_int_equal(rb_case_actions(RB_CASE_COMPLAINT, RB_CASE_CLOSED, RB_CASE_BY_SYSTEM), 0);
    assert_int_equal(rb_case_actions(RB_CASE_COMPLAINT, RB_CASE_CLOSED, RB_CASE_BY_CITIZEN),
                     (1u << RB_CASE_DO_RATE) | (1u << RB_CASE_DO_REOPEN));
    assert_int_equal(rb_case_state_is_terminal(RB_CASE_STATE_COUNT), 0);
}

/* Which states each kind can reach from submitted, following the module itself. */
static unsigned reachable(enum rb_case_kind k, enum rb_case_state from)
{
    unsigned seen = 1u << from, frontier = seen;

    while (frontier) {
        unsigned next = 0;
        for (int s = 0; s < RB_CASE_STATE_COUNT; s++) {
            if (!(frontier & (1u << s)))
                continue;
            for (int act = 0; act < RB_CASE_ACTION_COUNT; act++)
                for (int a = 0; a < RB_CASE_ACTOR_COUNT; a++) {
                    enum rb_case_state to;
                    if (rb_case_transition(k, (enum rb_case_state)s, (enum rb_case_action)act,
                                           (enum rb_case_actor)a, 1, &to, NULL) == RB_OK &&
                        !(seen & (1u << to)))
                        next |= 1u << to;
                }
        }
        seen |= next;
        frontier = next;
    }
    return seen;
}

static void kinds_end_where_they_should(void **state)
{
    (void)state;
    unsigned all = (1u << RB_CASE_STATE_COUNT) - 1;

    /* Complaints are never answered; information requests are never resolved; feedback is
     * never answered and never reopened. */
    assert_int_equal(reachable(RB_CASE_COMPLAINT, RB_CASE_SUBMITTED),
                     all & ~(1u << RB_CASE_ANSWERED));
    assert_int_equal(reachable(RB_CASE_INFORMATION, RB_CASE_SUBMITTED),
                     all & ~(1u << RB_CASE_RESOLVED));
    assert_int_equal(reachable(RB_CASE_FEEDBACK, RB_CASE_SUBMITTED),
                     all & ~((1u << RB_CASE_ANSWERED) | (1u << RB_CASE_REOPENED)));

    /* From every state a kind can be in, the case can still end (closed or rejected): no
     * state traps a case forever. */
    for (int k = 0; k < RB_CASE_KIND_COUNT; k++) {
        unsigned live = reachable((enum rb_case_kind)k, RB_CASE_SUBMITTED);
        for (int s = 0; s < RB_CASE_STATE_COUNT; s++) {
            if (!(live & (1u << s)))
                continue;
            unsigned r = reachable((enum rb_case_kind)k, (enum rb_case_state)s);
            if (!(r & ((1u << RB_CASE_CLOSED) | (1u << RB_CASE_REJECTED))))
                fail_msg("a %s in %s can never end", rb_case_kind_str((enum rb_case_kind)k),
                         rb_case_state_str((enum rb_case_state)s));
        }
    }

    /* The words, state by state. */
    for (int s = 0; s < RB_CASE_STATE_COUNT; s++) {
        enum rb_case_state to;
        assert_int_not_equal(rb_case_transition(RB_CASE_INFORMATION, (enum rb_case_state)s,
                                                RB_CASE_DO_RESOLVE, RB_CASE_BY_STAFF, 1, &to,
                                                NULL),
                             RB_OK);
        assert_int_not_equal(rb_case_transition(RB_CASE_COMPLAINT, (enum rb_case_state)s,
                                                RB_CASE_DO_ANSWER, RB_CASE_BY_STAFF, 1, &to,
                                                NULL),
                             RB_OK);
    }
}

/* Reopen is the citizen's, and only from resolved, answered or closed. */
static void reopen_only_by_the_citizen_after_the_end(void **state)
{
    (void)state;
    for (int s = 0; s < RB_CASE_STATE_COUNT; s++)
        for (int a = 0; a < RB_CASE_ACTOR_COUNT; a++) {
            enum rb_case_state to_c, to_i;
            int ok_c = rb_case_transition(RB_CASE_COMPLAINT, (enum rb_case_state)s,
                                          RB_CASE_DO_REOPEN, (enum rb_case_actor)a, 1, &to_c,
                                          NULL) == RB_OK;
            int ok_i = rb_case_transition(RB_CASE_INFORMATION, (enum rb_case_state)s,
                                          RB_CASE_DO_REOPEN, (enum rb_case_actor)a, 1, &to_i,
                                          NULL) == RB_OK;
            int citizen = a == RB_CASE_BY_CITIZEN;
            assert_int_equal(ok_c, citizen && (s == RB_CASE_RESOLVED || s == RB_CASE_CLOSED));
            assert_int_equal(ok_i, citizen && (s == RB_CASE_ANSWERED || s == RB_CASE_CLOSED));
            assert_int_equal(to_c, ok_c ? RB_CASE_REOPENED : s);
            assert_int_equal(to_i, ok_i ? RB_CASE_REOPENED : s);
        }
}

/* Reject and transfer need a reason wherever they are allowed. */
static void reject_and_transfer_need_a_reason_everywhere(void **state)
{
    (void)state;
    int seen_reject = 0, seen_transfer = 0;

    for (int k = 0; k < RB_CASE_KIND_COUNT; k++)
        for (int s = 0; s < RB_CASE_STATE_COUNT; s++)
            for (int a = 0; a < RB_CASE_ACTOR_COUNT; a++) {
                enum rb_case_state to;
                if (rb_case_transition((enum rb_case_kind)k, (enum rb_case_state)s,
                                       RB_CASE_DO_REJECT, (enum rb_case_actor)a, 1, &to,
                                       NULL) == RB_OK) {
                    seen_reject++;
                    assert_int_equal(to, RB_CASE_REJECTED);
                    assert_int_equal(rb_case_transition((enum rb_case_kind)k,
                                                        (enum rb_case_state)s,
                                                        RB_CASE_DO_REJECT,
                                                        (enum rb_case_actor)a, 0, &to, NULL),
                                     RB_ECASE_REASON);
                }
                if (rb_case_transition((enum rb_case_kind)k, (enum rb_case_state)s,
                                       RB_CASE_DO_TRANSFER, (enum rb_case_actor)a, 1, &to,
                                       NULL) == RB_OK) {
                    seen_transfer++;
                    assert_int_equal(to, RB_CASE_TRANSFERRED);
                    assert_int_equal(rb_case_transition((enum rb_case_kind)k,
                                                        (enum rb_case_state)s,
                                                        RB_CASE_DO_TRANSFER,
                                                        (enum rb_case_actor)a, 0, &to, NULL),
                                     RB_ECASE_REASON);
                }
            }
    assert_true(seen_reject >= 3 * 6);
    assert_true(seen_transfer >= 3 * 5);
}

static void out_of_range_arguments_are_refused(void **state)
{
    (void)state;
    enum rb_case_state to = RB_CASE_ROUTED;
    const char *why = NULL;

    assert_int_equal(rb_case_transition(RB_CASE_KIND_COUNT, RB_CASE_SUBMITTED,
                                        RB_CASE_DO_ROUTE, RB_CASE_BY_SYSTEM, 1, &to, &why),
                     RB_EINVAL);
    assert_string_equal(why, "unknown kind of case");
    assert_int_equal(to, RB_CASE_SUBMITTED);
    assert_int_equal(rb_case_transition(RB_CASE_COMPLAINT, RB_CASE_STATE_COUNT,
                                        RB_CASE_DO_ROUTE, RB_CASE_BY_SYSTEM, 1, &to, &why),
                     RB_EINVAL);
    assert_string_equal(why, "unknown case state");
    assert_int_equal(rb_case_transition(RB_CASE_COMPLAINT, (enum rb_case_state)-1,
                                        RB_CASE_DO_ROUTE, RB_CASE_BY_SYSTEM, 1, NULL, &why),
                     RB_EINVAL);
    assert_int_equal(rb_case_transition(RB_CASE_COMPLAINT, RB_CASE_SUBMITTED,
                                        RB_CASE_ACTION_COUNT, RB_CASE_BY_SYSTEM, 1, &to, &why),
                     RB_EINVAL);
    assert_string_equal(why, "unknown action");
    assert_int_equal(rb_case_transition(RB_CASE_COMPLAINT, RB_CASE_SUBMITTED,
                                        RB_CASE_DO_ROUTE, RB_CASE_ACTOR_COUNT, 1, &to, &why),
                     RB_EINVAL);
    assert_string_equal(why, "unknown actor");
    /* to and why may both be NULL. */
    assert_int_equal(rb_case_transition(RB_CASE_COMPLAINT, RB_CASE_SUBMITTED,
                                        RB_CASE_DO_ROUTE, RB_CASE_BY_SYSTEM, 0, NULL, NULL),
                     RB_OK);
    assert_int_equal(rb_case_actions(RB_CASE_KIND_COUNT, RB_CASE_ROUTED, RB_CASE_BY_STAFF), 0);
    assert_int_equal(rb_case_actions(RB_CASE_COMPLAINT, RB_CASE_STATE_COUNT, RB_CASE_BY_STAFF),
                     0);
    assert_int_equal(rb_case_actions(RB_CASE_COMPLAINT, RB_CASE_ROUTED, RB_CASE_ACTOR_COUNT), 0);
}

static void open_states_are_the_unfinished_ones(void **state)
{
    (void)state;
    for (int s = 0; s < RB_CASE_STATE_COUNT; s++) {
        int finished = s == RB_CASE_RESOLVED || s == RB_CASE_ANSWERED ||
                       s == RB_CASE_CLOSED || s == RB_CASE_REJECTED;
        assert_int_equal(rb_case_state_is_open((enum rb_case_state)s), !finished);
    }
    assert_int_equal(rb_case_state_is_open(RB_CASE_STATE_COUNT), 0);
}

/* A whole life: complaint filed, routed, acknowledged, citizen asked, replies, resolved,
 * reopened, resolved again, rated. */
static void a_complaint_lives_a_whole_life(void **state)
{
    (void)state;
    static const struct {
        enum rb_case_action act;
        enum rb_case_actor who;
        enum rb_case_state want;
    } life[] = {
        {RB_CASE_DO_ROUTE, RB_CASE_BY_SYSTEM, RB_CASE_ROUTED},
        {RB_CASE_DO_ACKNOWLEDGE, RB_CASE_BY_STAFF, RB_CASE_ACKNOWLEDGED},
        {RB_CASE_DO_START, RB_CASE_BY_STAFF, RB_CASE_IN_PROGRESS},
        {RB_CASE_DO_ASK_CITIZEN, RB_CASE_BY_STAFF, RB_CASE_AWAITING_CITIZEN},
        {RB_CASE_DO_CITIZEN_REPLY, RB_CASE_BY_CITIZEN, RB_CASE_IN_PROGRESS},
        {RB_CASE_DO_TRANSFER, RB_CASE_BY_STAFF, RB_CASE_TRANSFERRED},
        {RB_CASE_DO_START, RB_CASE_BY_STAFF, RB_CASE_IN_PROGRESS},
        {RB_CASE_DO_RESOLVE, RB_CASE_BY_STAFF, RB_CASE_RESOLVED},
        {RB_CASE_DO_REOPEN, RB_CASE_BY_CITIZEN, RB_CASE_REOPENED},
        {RB_CASE_DO_ACKNOWLEDGE, RB_CASE_BY_STAFF, RB_CASE_ACKNOWLEDGED},
        {RB_CASE_DO_RESOLVE, RB_CASE_BY_STAFF, RB_CASE_RESOLVED},
        {RB_CASE_DO_RATE, RB_CASE_BY_CITIZEN, RB_CASE_CLOSED},
    };
    enum rb_case_state s = RB_CASE_SUBMITTED;

    for (size_t i = 0; i < RB_ARRAY_LEN(life); i++) {
        enum rb_case_state to;
        const char *why = NULL;
        if (rb_case_transition(RB_CASE_COMPLAINT, s, life[i].act, life[i].who, 1, &to, &why) !=
            RB_OK)
            fail_msg("step %zu (%s) refused: %s", i, rb_case_action_str(life[i].act), why);
        assert_int_equal(to, life[i].want);
        s = to;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_round_trip),
        cmocka_unit_test(every_allowed_step_goes_through),
        cmocka_unit_test(exhaustive_table_matches_the_spec),
        cmocka_unit_test(refusals_are_sentences),
        cmocka_unit_test(rejected_is_the_only_terminal_state),
        cmocka_unit_test(kinds_end_where_they_should),
        cmocka_unit_test(reopen_only_by_the_citizen_after_the_end),
        cmocka_unit_test(reject_and_transfer_need_a_reason_everywhere),
        cmocka_unit_test(out_of_range_arguments_are_refused),
        cmocka_unit_test(open_states_are_the_unfinished_ones),
        cmocka_unit_test(a_complaint_lives_a_whole_life),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
