/* Outbound calls (docs/ivr.md "Outbound calls"): the plugin is the sender of channel "call".
 * One struct att is one attempt: one send of a call message (core's job
 * "message.send.call"), whose data names the script. It waits for its trunk (at most max_calls at once, at most rate
 * new calls a second), is stored (ivr_attempts), originated through AMI with ActionID
 * "rabta-<attempt id>", and ends with Asterisk's outcome: OriginateResponse Failure (Reason 5
 * busy, 3 no answer, 8 congestion, ...), or the answered call's AGI session
 * (agi://rabta:4573/call,<attempt id>) running the script (a script of lua/ivr.lua, or for
 * data script "survey:<name>" a survey of lua/surveys.lua, asked one question at a time as
 * the host's survey_walk gives them), or a Hangup event. The outcome is
 * stored with the call's answers, and the send is reported with message_done: sent or failed
 * (the queuer's reply job queued first), or again after the policy's spacing.
 *
 * When AMI is lost, an Originate already sent is never sent again: its attempt waits for the
 * call's AGI session or its deadline (outcome "unknown", retried later); attempts not yet sent
 * wait for the connection to come back.
 *
 * A call is dialled once at a time across processes: core keeps the send's job with this
 * process until message_done (its lease renewed), and each dial stores ivr_calls.not_before
 * (the dial's longest life, then the spacing); a send that finds it ahead (its job taken again
 * after a stall) waits in T_LATER and looks again instead of dialling. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>

#include "ivr.h"
#include "ivr_agi.h"
#include "ivr_ami.h"

#define ANSWER_GRACE 30.0 /* seconds for the AGI session to arrive after Originate's answer */
#define LATER_POLL 5.0    /* seconds between looks at a call whose earlier dial may be up */

/* T_LATER: an earlier dial of the call may still be up, or its spacing has not passed
 * (ivr_calls.not_before, set by whichever process dialled): the send waits and looks again. */
enum att_state { T_STORING, T_LATER, T_WAITING, T_DIALING, T_ANSWERED, T_CALL, T_ENDING };

/* What a survey call (script "survey:<name>") is waiting for Asterisk to finish. */
enum sv_phase { SV_INTRO, SV_ASK, SV_RECORD_PROMPT, SV_RECORD, SV_THANKS };

struct att {
    struct rb_message_send *send; /* until message_done */
    long long message_id, call_id, attempt_id;
    int n, max_attempts, tries;
    int last_send;                /* core sends the message no more times after this one */
    json_t *lua;                  /* ref: the settings the attempt started with */
    const json_t *script, *policy; /* borrowed from lua */
    char script_name[64], phone[20], lang[3], trunk[64], reply_kind[64];
    char *ref;                    /* owned JSON text, or NULL */
    enum att_state state;
    struct rb_agi_conn *c;        /* owned while T_CALL */
    json_t *answers;              /* owned */
    const char *step;             /* borrowed from lua */
    char survey[64];              /* a survey of lua/surveys.lua asked by this call, or "" */
    json_t *question;             /* owned: the survey's question being asked */
    enum sv_phase phase;
    int done_script;              /* the script reached "end" */
    char uniqueid[64], amd[16];
    int reason, cause;
    struct event *timer;          /* owned */
    struct att *qnext;            /* the trunk's waiting queue */
    struct att *prev, *next;      /* every attempt */
};

struct trunk {
    char name[64];
    int active;
    double next_at; /* monotonic: the next call may start then */
    struct att *head, *tail;
    struct event *timer;
    struct trunk *next;
};

/* An answered call's trunk slot stays taken until Asterisk reports the channel's Hangup (the
 * dialplan hangs up after the AGI session), or HOLD_MAX seconds. */
#define HOLD_MAX 5.0
struct held {
    char uniqueid[64], trunk[64];
    long long attempt_id;
    struct event *timer;
    struct held *next;
};

struct rb_ivr_calls {
    struct held *held;
    struct att *all;
    struct trunk *trunks;
    size_t n_active;
};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct rb_ivr_calls *cs(void)
{
    return rb_ivr.calls;
}

struct rb_ivr_calls *rb_ivr_calls_new(void)
{
    return calloc(1, sizeof(struct rb_ivr_calls));
}

static void release_slot(const char *trunk);

static void held_free(struct held *h)
{
    struct held **pp = &cs()->held;
    while (*pp && *pp != h)
        pp = &(*pp)->next;
    if (*pp)
        *pp = h->next;
    event_free(h->timer);
    free(h);
}

static void on_held_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct held *h = arg;
    char trunk[64];
    snprintf(trunk, sizeof(trunk), "%s", h->trunk);
    held_free(h);
    release_slot(trunk);
}

/* Keeps the slot until the channel's Hangup; 0 when there is no channel to wait for. */
static int hold_slot(const char *uniqueid, const char *trunk, long long attempt_id)
{
    struct held *h = uniqueid[0] ? calloc(1, sizeof(*h)) : NULL;
    if (!h)
        return 0;
    snprintf(h->uniqueid, sizeof(h->uniqueid), "%s", uniqueid);
    snprintf(h->trunk, sizeof(h->trunk), "%s", trunk);
    h->attempt_id = attempt_id;
    h->timer = evtimer_new(rb_ivr.base, on_held_timeout, h);
    struct timeval tv = {(time_t)HOLD_MAX, 0};
    event_add(h->timer, &tv);
    h->next = cs()->held;
    cs()->held = h;
    return 1;
}

/* A Hangup event for a held slot: its cause is kept with the attempt (the outcome was stored
 * when the AGI session ended). 1 when it was one. */
static int unhold(const char *uniqueid, const char *cause)
{
    for (struct held *h = cs()->held; uniqueid && h; h = h->next) {
        if (strcmp(h->uniqueid, uniqueid) == 0) {
            char id[24];
            snprintf(id, sizeof(id), "%lld", h->attempt_id);
            const char *p[] = {id, cause ? cause : "0"};
            rb_ivr_api->db_query(rb_ivr.ctx, "UPDATE ivr_attempts SET cause = $2::int"
                                             " WHERE id = $1::bigint AND coalesce(cause, 0) = 0",
                                 2, p, NULL, NULL);
            on_held_timeout(-1, 0, h);
            return 1;
        }
    }
    return 0;
}

static void att_free(struct att *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else if (cs()->all == a)
        cs()->all = a->next;
    if (a->next)
        a->next->prev = a->prev;
    if (a->timer)
        event_free(a->timer);
    if (a->c)
        rb_agi_close(a->c);
    json_decref(a->lua);
    json_decref(a->answers);
    json_decref(a->question);
    free(a->ref);
    free(a);
}

/* Reports the send (message_done) and frees the attempt. */
static void att_done(struct att *a, enum rb_send_outcome outcome, double retry_after,
                     const char *why)
{
    rb_ivr_api->message_done(a->send, outcome, retry_after, why,
                             outcome == RB_SEND_SENT && a->uniqueid[0] ? a->uniqueid : NULL);
    att_free(a);
}

void rb_ivr_calls_free(struct rb_ivr_calls *c)
{
    if (!c)
        return;
    while (c->all)
        att_free(c->all); /* their send jobs are recovered by the jobs' lease */
    while (c->held) {
        struct held *h = c->held;
        c->held = h->next;
        event_free(h->timer);
        free(h);
    }
    while (c->trunks) {
        struct trunk *t = c->trunks;
        c->trunks = t->next;
        if (t->timer)
            event_free(t->timer);
        free(t);
    }
    free(c);
}

size_t rb_ivr_calls_active(void)
{
    return cs() ? cs()->n_active : 0;
}

static struct att *find_attempt(long long id)
{
    for (struct att *a = cs()->all; a; a = a->next)
        if (a->attempt_id == id && a->state >= T_DIALING && a->state < T_ENDING)
            return a;
    return NULL;
}

static void pump(struct trunk *t);
static void store_call(struct att *a);

static void on_trunk_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

static struct trunk *trunk_of(const char *name)
{
    for (struct trunk *t = cs()->trunks; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    struct trunk *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->timer = evtimer_new(rb_ivr.base, on_trunk_timer, t);
    t->next = cs()->trunks;
    cs()->trunks = t;
    return t;
}

/* ---- the end of an attempt ---------------------------------------------------------------- */

static int retryable(const char *outcome, const json_t *answers)
{
    if (strcmp(outcome, "completed") == 0)
        return 0;
    if (strcmp(outcome, "hung_up_early") == 0)
        return json_object_size(answers) == 0;
    return 1;
}

/* Why the call is over, or why it is tried again, as the message's last_error. */
static void outcome_text(const struct att *a, const char *outcome, const char *state,
                         char *buf, size_t len)
{
    char cause[48] = "";
    if (a->reason || a->cause)
        snprintf(cause, sizeof(cause), " (reason %d, cause %d)", a->reason, a->cause);
    if (strcmp(state, "queued") == 0)
        snprintf(buf, len, "attempt %d: %s%s", a->n, outcome, cause);
    else
        snprintf(buf, len, "%s after %d attempt%s%s", outcome, a->n, a->n == 1 ? "" : "s",
                 cause);
}

/* Reports a final call: sent when the script ran (done), failed when no attempt got through. */
static void report_final(struct att *a, const char *state, const char *outcome)
{
    char why[160];
    outcome_text(a, outcome, state, why, sizeof(why));
    if (strcmp(state, "done") == 0)
        att_done(a, RB_SEND_SENT, 0, NULL);
    else
        att_done(a, RB_SEND_FAILED, 0, why);
}

struct final {
    struct att *a;
    char state[8], outcome[16];
};

static void on_reply_queued(const struct rb_db_result *res, const char *err, void *arg)
{
    (void)res;
    struct final *f = arg;
    if (err) { /* tried again: the next send queues the reply (replied_at is still NULL) */
        char why[300];
        snprintf(why, sizeof(why), "the reply job could not be queued: %s", err);
        att_done(f->a, RB_SEND_RETRY, 30, why);
    } else {
        char id[24];
        snprintf(id, sizeof(id), "%lld", f->a->call_id);
        const char *p[] = {id};
        rb_ivr_api->db_query(rb_ivr.ctx, "UPDATE ivr_calls SET replied_at = now()"
                                         " WHERE id = $1::bigint", 1, p, NULL, NULL);
        report_final(f->a, f->state, f->outcome);
    }
    free(f);
}

/* The call is over (state "done" or "failed"): the queuer's reply job (once), then the
 * outcome of the send. */
static void call_final(struct att *a, const char *state, const char *outcome, int replied)
{
    if (!a->reply_kind[0] || replied) {
        report_final(a, state, outcome);
        return;
    }
    struct final *f = calloc(1, sizeof(*f));
    json_t *p = json_pack("{s:I, s:I, s:s, s:s, s:i, s:O}", "call_id", (json_int_t)a->call_id,
                          "message_id", (json_int_t)a->message_id, "outcome", outcome, "state",
                          state, "attempts", a->n, "answers", a->answers);
    char *text = NULL;
    if (f && p) {
        f->a = a;
        snprintf(f->state, sizeof(f->state), "%s", state);
        snprintf(f->outcome, sizeof(f->outcome), "%s", outcome);
        if (a->ref)
            json_object_set_new(p, "ref", json_loads(a->ref, JSON_DECODE_ANY, NULL));
        text = json_dumps(p, JSON_COMPACT);
    }
    json_decref(p);
    char dedup[64];
    snprintf(dedup, sizeof(dedup), "ivr.reply.%lld", a->call_id);
    if (!text) {
        free(f);
        att_done(a, RB_SEND_RETRY, 30, "out of memory");
    } else if (rb_ivr_api->job_enqueue(rb_ivr.ctx, a->reply_kind, text, 0, dedup,
                                       on_reply_queued, f) != RB_OK) {
        on_reply_queued(NULL, "the database is unavailable", f);
    }
    free(text);
}

/* Seconds before the next dial of a call after its attempt a->n: the policy's spacing,
 * doubled after each attempt. */
static double spacing_of(const struct att *a)
{
    return rb_ivr_num(a->policy, "spacing", 600) * pow(2, a->n - 1);
}

/* The longest a dial can be live, from its Originate to the deadline of its call, with a
 * margin: no other dial of the call starts before (ivr_calls.not_before). */
static double live_max(const struct att *a)
{
    return rb_ivr_num(a->policy, "ring_timeout", 45) + 2 * ANSWER_GRACE +
           rb_ivr_num(a->policy, "max_call_length", 300) + 30;
}

/* After an attempt's outcome is stored (end_sql) or a call is given up (give_up_sql): one
 * row (state, outcome, replied). */
static void on_ended(const struct rb_db_result *res, const char *err, void *arg)
{
    struct att *a = arg;
    const char *state = res && rb_ivr_api->db_ntuples(res) == 1 ? rb_ivr_api->db_value(res, 0, 0)
                                                                : NULL;
    if (err || !state) {
        att_done(a, RB_SEND_RETRY, 30, err ? err : "the call's row is gone");
        return;
    }
    const char *outcome = rb_ivr_api->db_value(res, 0, 1);
    if (strcmp(state, "queued") == 0) {
        double spacing = spacing_of(a);
        double quiet = rb_ivr_api->quiet_wait(rb_ivr.ctx);
        char why[160];
        outcome_text(a, outcome ? outcome : "?", state, why, sizeof(why));
        att_done(a, RB_SEND_RETRY, spacing > quiet ? spacing : quiet, why);
        return;
    }
    call_final(a, state, outcome ? outcome : "unknown", rb_ivr_api->db_value(res, 0, 2)[0] == 't');
}

static const char *const end_sql =
    "WITH a AS (UPDATE ivr_attempts SET ended_at = now(), outcome = $2, reason = $3::int,"
    "    cause = CASE WHEN $4::int = 0 THEN cause ELSE $4::int END, amd = $5, uniqueid = $6"
    "   WHERE id = $1::bigint RETURNING call_id)"
    " UPDATE ivr_calls SET answers = answers || $7::jsonb, state = $8, outcome = $2,"
    "   not_before = CASE WHEN $8 = 'queued' THEN now() + make_interval(secs => $9::float8)"
    "   END, updated_at = now() WHERE id = (SELECT call_id FROM a)"
    " RETURNING state, outcome, replied_at IS NOT NULL";

/* The attempt is over: release its trunk slot, store the outcome, finish the run. */
static void attempt_end(struct att *a, const char *outcome)
{
    if (a->state == T_ENDING)
        return;
    int counted = a->state >= T_DIALING;
    a->state = T_ENDING;
    if (a->timer)
        event_del(a->timer);
    if (a->c) {
        rb_agi_close(a->c);
        a->c = NULL;
    }
    if (counted && !(a->uniqueid[0] && a->cause == 0 && hold_slot(a->uniqueid, a->trunk, a->attempt_id)))
        release_slot(a->trunk);
    /* failed also when core would not send the message again (its sends were used up, e.g.
     * by quiet hours): the queuer still hears of it */
    const char *state = !retryable(outcome, a->answers)          ? "done"
                        : a->n >= a->max_attempts || a->last_send ? "failed"
                                                                  : "queued";
    rb_ivr_api->log(rb_ivr.ctx, RB_LOG_INFO, "call %lld attempt %d to %s: %s (reason %d, cause "
                                             "%d)%s", a->call_id, a->n, a->phone, outcome,
                    a->reason, a->cause, strcmp(state, "queued") ? "; done" : "; retried later");
    char id[24], reason[16], cause[16];
    snprintf(id, sizeof(id), "%lld", a->attempt_id);
    snprintf(reason, sizeof(reason), "%d", a->reason);
    snprintf(cause, sizeof(cause), "%d", a->cause);
    char *answers = json_dumps(a->answers, JSON_COMPACT), spacing[32];
    snprintf(spacing, sizeof(spacing), "%.3f", spacing_of(a));
    const char *p[] = {id, outcome, reason, cause, a->amd[0] ? a->amd : NULL,
                       a->uniqueid[0] ? a->uniqueid : NULL, answers ? answers : "{}", state,
                       spacing};
    if (rb_ivr_api->db_query(rb_ivr.ctx, end_sql, 9, p, on_ended, a) != RB_OK)
        on_ended(NULL, "the database is unavailable", a);
    free(answers);
}

static void release_slot(const char *trunk)
{
    cs()->n_active--;
    struct trunk *t = trunk_of(trunk);
    if (t) {
        t->active--;
        pump(t);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct att *a = arg;
    if (a->state == T_LATER) {
        store_call(a);
        return;
    }
    if (a->state == T_CALL) {
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_WARN, "call %lld: longer than max_call_length; "
                                                 "ending it", a->call_id);
        attempt_end(a, a->done_script ? "completed" : "hung_up_early");
    } else {
        attempt_end(a, "unknown"); /* no answer from Asterisk: maybe AMI was lost */
    }
}

static void arm(struct att *a, double seconds)
{
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - floor(seconds)) * 1e6)};
    event_add(a->timer, &tv);
}

/* ---- dialling -------------------------------------------------------------------------------- */

/* Sends the Originate. RB_EUNAVAIL when AMI is down (the attempt waits for it). */
static int originate(struct att *a)
{
    const json_t *trunk = rb_ivr_named(&(struct rb_ivr_lua){a->lua, NULL}, "trunks", a->trunk);
    const char *pat = rb_ivr_str(trunk, "channel", "PJSIP/{phone}");
    char channel[256], action[40], var[48], timeout[24];
    const char *at = strstr(pat, "{phone}");
    snprintf(channel, sizeof(channel), "%.*s%s%s", (int)(at ? at - pat : (long)strlen(pat)), pat,
             at ? a->phone : "", at ? at + 7 : "");
    snprintf(action, sizeof(action), "rabta-%lld", a->attempt_id);
    snprintf(var, sizeof(var), "RABTA_ATTEMPT=%lld", a->attempt_id);
    snprintf(timeout, sizeof(timeout), "%d", (int)(rb_ivr_num(a->policy, "ring_timeout", 45) * 1000));
    const char *ctxname = rb_ivr.conf.outbound_context ? rb_ivr.conf.outbound_context
                                                       : "rabta-outbound";
    const char *f[] = {"Action", "Originate", "ActionID", action, "Channel", channel,
                       "Context", ctxname, "Exten", "s", "Priority", "1", "Timeout", timeout,
                       "Variable", var, "Async", "true", "CallerID",
                       rb_ivr.conf.callerid ? rb_ivr.conf.callerid : ""};
    return rb_ami_action(rb_ivr.ami, f, rb_ivr.conf.callerid ? 10 : 9);
}

static void dial(struct att *a)
{
    if (originate(a) != RB_OK) {
        /* AMI went away between the queue and now: back to the head of the queue */
        struct trunk *t = trunk_of(a->trunk);
        a->state = T_WAITING;
        cs()->n_active--;
        t->active--;
        a->qnext = t->head;
        t->head = a;
        if (!t->tail)
            t->tail = a;
        return;
    }
    a->state = T_DIALING;
    arm(a, rb_ivr_num(a->policy, "ring_timeout", 45) + ANSWER_GRACE);
}

static void on_attempt_stored(const struct rb_db_result *res, const char *err, void *arg)
{
    struct att *a = arg;
    if (!err && rb_ivr_api->db_ntuples(res) == 0) { /* another dial is live: not this one */
        struct trunk *t = trunk_of(a->trunk);
        cs()->n_active--;
        t->active--;
        a->state = T_LATER;
        arm(a, 1.0);
        pump(t);
        return;
    }
    if (err || rb_ivr_api->db_ntuples(res) != 1) {
        a->state = T_WAITING; /* not counted: the slot goes back */
        struct trunk *t = trunk_of(a->trunk);
        cs()->n_active--;
        t->active--;
        att_done(a, RB_SEND_RETRY, 30, err ? err : "the call's row is gone");
        pump(t);
        return;
    }
    a->attempt_id = atoll(rb_ivr_api->db_value(res, 0, 0));
    a->n = atoi(rb_ivr_api->db_value(res, 0, 1));
    a->state = T_DIALING;
    dial(a);
}

/* A new dial, stored before it is placed; none while not_before is ahead (another dial may
 * be up): the row's lock makes two processes' attempts at once take turns, and the second
 * sees the first's not_before. */
static const char *const attempt_sql =
    "WITH c AS (UPDATE ivr_calls SET attempts = attempts + 1, updated_at = now(),"
    "   not_before = now() + make_interval(secs => $2::float8)"
    "   WHERE id = $1::bigint AND (not_before IS NULL OR not_before <= now())"
    "   RETURNING id, attempts)"
    " INSERT INTO ivr_attempts (call_id, n) SELECT id, attempts FROM c RETURNING id, n";

/* Starts what the trunk allows now: a free slot, the rate, AMI up. */
static void pump(struct trunk *t)
{
    while (t->head && rb_ami_up(rb_ivr.ami)) {
        const json_t *conf = rb_ivr_named(&rb_ivr.lua, "trunks", t->name);
        int max = (int)rb_ivr_num(conf, "max_calls", 1);
        double rate = rb_ivr_num(conf, "rate", 1), now = now_mono();
        if (t->active >= max)
            return;
        if (now < t->next_at) {
            double w = t->next_at - now;
            struct timeval tv = {(time_t)w, (suseconds_t)((w - floor(w)) * 1e6)};
            event_add(t->timer, &tv);
            return;
        }
        struct att *a = t->head;
        t->head = a->qnext;
        if (!t->head)
            t->tail = NULL;
        a->qnext = NULL;
        t->active++;
        cs()->n_active++;
        t->next_at = (t->next_at > now - 1.0 / rate ? t->next_at : now) + 1.0 / rate;
        if (a->attempt_id) { /* stored before AMI went away */
            a->state = T_DIALING;
            dial(a);
            continue;
        }
        char id[24], live[32];
        snprintf(id, sizeof(id), "%lld", a->call_id);
        snprintf(live, sizeof(live), "%.3f", live_max(a));
        const char *p[] = {id, live};
        a->state = T_STORING;
        if (rb_ivr_api->db_query(rb_ivr.ctx, attempt_sql, 2, p, on_attempt_stored, a) != RB_OK)
            on_attempt_stored(NULL, "the database is unavailable", a);
    }
}

void rb_ivr_calls_ami_state(int up)
{
    if (!cs())
        return;
    if (up) {
        for (struct trunk *t = cs()->trunks; t; t = t->next)
            pump(t);
        return;
    }
    int waiting = 0;
    for (struct att *a = cs()->all; a; a = a->next)
        waiting += a->state == T_DIALING;
    if (waiting)
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_WARN, "AMI lost with %d call%s dialled and not yet "
                                                 "answered: each waits for its call or its "
                                                 "deadline, and is not dialled again before",
                        waiting, waiting == 1 ? "" : "s");
}

/* ---- what Asterisk says about the calls ------------------------------------------------------ */

static const char *reason_outcome(int reason)
{
    switch (reason) {
    case 5: return "busy";        /* AST_CONTROL_BUSY */
    case 3: return "no_answer";   /* AST_CONTROL_RINGING: rang out */
    case 1: return "no_answer";   /* AST_CONTROL_HANGUP before the answer */
    case 8: return "congestion";  /* AST_CONTROL_CONGESTION */
    default: return "failed";     /* 0: the channel could not be created or dialled */
    }
}

static int reason_cause(int reason)
{
    return reason == 5 ? 17 : reason == 3 || reason == 1 ? 19 : reason == 8 ? 34 : 0;
}

static struct att *by_uniqueid(const char *u)
{
    for (struct att *a = cs()->all; u && *u && a; a = a->next)
        if (a->state >= T_DIALING && a->state < T_ENDING && strcmp(a->uniqueid, u) == 0)
            return a;
    return NULL;
}

void rb_ivr_calls_ami_msg(const struct rb_ami_msg *m)
{
    if (!cs())
        return;
    const char *ev = rb_ami_get(m, "Event"), *aid = rb_ami_get(m, "ActionID");
    long long id = aid && strncmp(aid, "rabta-", 6) == 0 ? atoll(aid + 6) : 0;
    if (!ev) { /* a Response: only an Error to our Originate matters */
        struct att *a = id ? find_attempt(id) : NULL;
        const char *resp = rb_ami_get(m, "Response");
        if (a && resp && strcasecmp(resp, "Error") == 0) {
            rb_ivr_api->log(rb_ivr.ctx, RB_LOG_WARN, "AMI refused the Originate of call %lld: %s",
                            a->call_id, rb_ami_get(m, "Message") ? rb_ami_get(m, "Message") : "?");
            attempt_end(a, "failed");
        }
        return;
    }
    if (strcasecmp(ev, "OriginateResponse") == 0) {
        struct att *a = id ? find_attempt(id) : NULL;
        if (!a)
            return;
        const char *resp = rb_ami_get(m, "Response"), *u = rb_ami_get(m, "Uniqueid");
        a->reason = rb_ami_get(m, "Reason") ? atoi(rb_ami_get(m, "Reason")) : 0;
        if (u && strcmp(u, "<null>") != 0)
            snprintf(a->uniqueid, sizeof(a->uniqueid), "%s", u);
        if (resp && strcasecmp(resp, "Success") == 0) {
            if (a->state == T_DIALING) {
                a->state = T_ANSWERED;
                arm(a, ANSWER_GRACE);
            }
            return;
        }
        a->cause = reason_cause(a->reason);
        attempt_end(a, reason_outcome(a->reason));
    } else if (strcasecmp(ev, "Hangup") == 0) {
        if (unhold(rb_ami_get(m, "Uniqueid"), rb_ami_get(m, "Cause")))
            return;
        struct att *a = by_uniqueid(rb_ami_get(m, "Uniqueid"));
        if (!a)
            return;
        a->cause = rb_ami_get(m, "Cause") ? atoi(rb_ami_get(m, "Cause")) : 0;
        if (a->state == T_ANSWERED)
            attempt_end(a, "hung_up_early"); /* answered, gone before the script started */
    }
}

/* ---- the script on an answered call ----------------------------------------------------------- */

static void on_step_reply(struct rb_agi_conn *c, const struct rb_agi_reply *r, void *arg);

static void run_step(struct att *a)
{
    char path[256];
    if (strcmp(a->step, "end") == 0) {
        a->done_script = 1;
        if (rb_agi_cmd(a->c, on_step_reply, a, "HANGUP") != RB_OK)
            attempt_end(a, "completed");
        return;
    }
    const json_t *st = json_object_get(json_object_get(a->script, "steps"), a->step);
    const char *ask = rb_ivr_str(st, "ask", NULL);
    const struct rb_ivr_lua l = {a->lua, rb_ivr_str(json_object_get(a->lua, "prompts"), "dir",
                                                    "rabta")};
    rb_ivr_prompt(&l, a->lang, ask ? ask : rb_ivr_str(st, "play", ""), path, sizeof(path));
    int rc = ask ? rb_agi_cmd(a->c, on_step_reply, a, "GET DATA %s %d 1", path,
                              (int)(rb_ivr.conf.key_timeout * 1000))
                 : rb_agi_cmd(a->c, on_step_reply, a, "STREAM FILE %s \"\"", path);
    if (rc != RB_OK)
        attempt_end(a, "hung_up_early");
}

static void on_step_reply(struct rb_agi_conn *c, const struct rb_agi_reply *r, void *arg)
{
    (void)c;
    struct att *a = arg;
    if (a->done_script) {
        attempt_end(a, "completed");
        return;
    }
    if (!r || r->code != 200 || (r->is_num && r->num < 0)) {
        attempt_end(a, "hung_up_early");
        return;
    }
    const json_t *st = json_object_get(json_object_get(a->script, "steps"), a->step);
    char key = r->result[0] && !r->result[1] ? r->result[0] : '\0';
    int ans;
    const char *next = rb_ivr_step_next(st, key, &ans);
    if (!next && ++a->tries > (int)rb_ivr_num(a->policy, "repeat_question", 2))
        next = rb_ivr_str(st, "no_answer", rb_ivr_str(st, "next", "end"));
    if (ans)
        json_object_set_new(a->answers, a->step, json_stringn(&key, 1));
    if (next) {
        a->step = next;
        a->tries = 0;
    }
    run_step(a);
}

/* ---- a survey of lua/surveys.lua on an answered call (script "survey:<name>") ------------- */

static void on_survey_reply(struct rb_agi_conn *c, const struct rb_agi_reply *r, void *arg);

/* Plays prompt and waits for a key (SV_ASK) or its end; prompt NULL: hangs up, the script is
 * over. */
static void survey_play(struct att *a, enum sv_phase ph, const char *prompt)
{
    if (!prompt) {
        a->done_script = 1;
        if (rb_agi_cmd(a->c, on_step_reply, a, "HANGUP") != RB_OK)
            attempt_end(a, "completed");
        return;
    }
    char path[256];
    const struct rb_ivr_lua l = {a->lua, rb_ivr_str(json_object_get(a->lua, "prompts"), "dir",
                                                    "rabta")};
    rb_ivr_prompt(&l, a->lang, prompt, path, sizeof(path));
    a->phase = ph;
    int rc = ph == SV_ASK ? rb_agi_cmd(a->c, on_survey_reply, a, "GET DATA %s %d 1", path,
                                       (int)(rb_ivr.conf.key_timeout * 1000))
                          : rb_agi_cmd(a->c, on_survey_reply, a, "STREAM FILE %s \"\"", path);
    if (rc != RB_OK)
        attempt_end(a, "hung_up_early");
}

/* The survey's next question after the answers so far (host API survey_walk), asked; or the
 * thanks when the survey is over (or cannot go on: logged). */
static void survey_ask(struct att *a)
{
    char why[300] = "out of memory";
    char *given = json_dumps(a->answers, JSON_COMPACT);
    char *text = given ? rb_ivr_api->survey_walk(rb_ivr.ctx, a->survey, a->lang, given, why,
                                                 sizeof(why))
                       : NULL;
    json_t *w = text ? json_loads(text, 0, NULL) : NULL;
    free(given);
    free(text);
    if (!w)
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_ERROR, "call %lld: survey \"%s\": %s", a->call_id,
                        a->survey, why);
    json_decref(a->question);
    a->question = json_incref(json_object_get(w, "next"));
    json_decref(w);
    a->tries = 0;
    const char *prompt = rb_ivr_str(a->question, "prompt", NULL);
    if (!prompt)
        survey_play(a, SV_THANKS, rb_ivr_str(a->script, "thanks", NULL));
    else
        survey_play(a, json_is_true(json_object_get(a->question, "free")) ? SV_RECORD_PROMPT
                                                                           : SV_ASK, prompt);
}

/* recordings_dir/NAME.wav as Asterisk left it: 1 when it holds a recording. */
static int recording_usable(const char *name)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s.wav", rb_ivr.conf.recordings_dir, name);
    return stat(path, &st) == 0 && st.st_size > 44 &&
           (long long)st.st_size <= rb_ivr.conf.max_recording;
}

/* The recording of a free question: rabta-<uniqueid>-<question>, as the hotline names its. */
static void recording_name(const struct att *a, char *buf, size_t len)
{
    const char *q = rb_ivr_str(a->question, "question", "q");
    snprintf(buf, len, "rabta-%s-%.40s", a->uniqueid[0] ? a->uniqueid : "0",
             strspn(q, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(q) ? q : "q");
}

static void survey_record(struct att *a)
{
    char name[128];
    recording_name(a, name, sizeof(name));
    a->phase = SV_RECORD;
    if (rb_agi_cmd(a->c, on_survey_reply, a, "RECORD FILE %s/%s wav \"#\" %d 0 BEEP s=%d",
                   rb_ivr.conf.asterisk_recordings_dir ? rb_ivr.conf.asterisk_recordings_dir
                                                       : rb_ivr.conf.recordings_dir,
                   name, (int)(rb_ivr.conf.record_max * 1000),
                   (int)rb_ivr.conf.record_silence) != RB_OK)
        attempt_end(a, "hung_up_early");
}

/* The end of a recording (gone: the caller hung up during it): kept as the answer
 * "recording:<file>" (the file stays in recordings_dir) when Asterisk wrote one. */
static void survey_recorded(struct att *a, int gone)
{
    char name[128], ref[160];
    recording_name(a, name, sizeof(name));
    int usable = recording_usable(name);
    if (usable) {
        snprintf(ref, sizeof(ref), "recording:%s.wav", name);
        json_object_set_new(a->answers, rb_ivr_str(a->question, "question", "q"),
                            json_string(ref));
    } else {
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_WARN, "call %lld: no usable recording %s.wav in %s",
                        a->call_id, name, rb_ivr.conf.recordings_dir);
    }
    if (gone)
        attempt_end(a, "hung_up_early");
    else if (usable)
        survey_ask(a);
    else /* nothing said: the survey stops here */
        survey_play(a, SV_THANKS, rb_ivr_str(a->script, "thanks", NULL));
}

/* A key for the question asked: kept when the survey allows it, else the question again (up
 * to the policy's repeat_question), then the survey stops there. */
static void survey_key(struct att *a, const struct rb_agi_reply *r)
{
    char key[2] = {r->result[0] && !r->result[1] ? r->result[0] : '\0', '\0'};
    const json_t *digits = json_object_get(a->question, "answers"), *d;
    size_t i;
    int allowed = 0;
    json_array_foreach(digits, i, d) allowed |= key[0] && json_is_string(d) &&
                                               strcmp(json_string_value(d), key) == 0;
    if (allowed) {
        json_object_set_new(a->answers, rb_ivr_str(a->question, "question", "q"),
                            json_string(key));
        survey_ask(a);
    } else if (++a->tries > (int)rb_ivr_num(a->policy, "repeat_question", 2)) {
        survey_play(a, SV_THANKS, rb_ivr_str(a->script, "thanks", NULL));
    } else {
        survey_play(a, SV_ASK, rb_ivr_str(a->question, "prompt", ""));
    }
}

static void on_survey_reply(struct rb_agi_conn *c, const struct rb_agi_reply *r, void *arg)
{
    (void)c;
    struct att *a = arg;
    int gone = !r || r->code != 200 || (r->is_num && r->num < 0);
    if (a->phase == SV_RECORD) {
        survey_recorded(a, gone);
        return;
    }
    if (gone) {
        attempt_end(a, "hung_up_early");
        return;
    }
    switch (a->phase) {
    case SV_INTRO: survey_ask(a); break;
    case SV_ASK: survey_key(a, r); break;
    case SV_RECORD_PROMPT: survey_record(a); break;
    default: survey_play(a, SV_THANKS, NULL); break; /* the thanks played: hang up */
    }
}

static void on_amd(struct rb_agi_conn *c, const struct rb_agi_reply *r, void *arg)
{
    (void)c;
    struct att *a = arg;
    if (!r || r->code != 200 || (r->is_num && r->num < 0)) {
        attempt_end(a, "hung_up_early");
        return;
    }
    if (a->done_script) { /* the HANGUP after a machine */
        attempt_end(a, "machine");
        return;
    }
    if (r->is_num && r->num == 1)
        snprintf(a->amd, sizeof(a->amd), "%.15s", r->data);
    if (strcmp(a->amd, "MACHINE") == 0) {
        a->done_script = 1; /* nothing to say to a machine: hang up, try again later */
        if (rb_agi_cmd(a->c, on_amd, a, "HANGUP") != RB_OK)
            attempt_end(a, "machine");
        return;
    }
    if (!a->survey[0]) {
        a->step = rb_ivr_str(a->script, "start", "end");
        run_step(a);
    } else if (rb_ivr_str(a->script, "intro", NULL)) {
        survey_play(a, SV_INTRO, rb_ivr_str(a->script, "intro", NULL));
    } else {
        survey_ask(a);
    }
}

static void on_call_gone(struct rb_agi_conn *c, void *arg)
{
    (void)c;
    struct att *a = arg;
    attempt_end(a, a->done_script ? "completed" : "hung_up_early");
}

void rb_ivr_call_session(struct rb_agi_conn *c)
{
    const char *arg = rb_agi_env(c, "agi_arg_1");
    struct att *a = arg && cs() ? find_attempt(atoll(arg)) : NULL;
    if (!a || a->c) {
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_WARN, "FastAGI call for attempt \"%s\", which is not "
                                                 "waiting for its call; hanging up",
                        arg ? arg : "");
        rb_agi_close(c);
        return;
    }
    a->c = c;
    a->state = T_CALL;
    const char *u = rb_agi_env(c, "agi_uniqueid");
    if (u && !a->uniqueid[0])
        snprintf(a->uniqueid, sizeof(a->uniqueid), "%s", u);
    arm(a, rb_ivr_num(a->policy, "max_call_length", 300));
    rb_agi_set_gone(c, on_call_gone, a);
    if (rb_agi_cmd(c, on_amd, a, "GET VARIABLE AMDSTATUS") != RB_OK)
        attempt_end(a, "hung_up_early");
}

/* ---- placing a call: the sender of channel "call" ----------------------------------------- */

static void on_call_stored(const struct rb_db_result *res, const char *err, void *arg)
{
    struct att *a = arg;
    if (err || rb_ivr_api->db_ntuples(res) != 1) {
        att_done(a, RB_SEND_RETRY, 30, err ? err : "the call was not stored");
        return;
    }
    a->call_id = atoll(rb_ivr_api->db_value(res, 0, 0));
    a->n = atoi(rb_ivr_api->db_value(res, 0, 1));
    json_t *ans = json_loads(rb_ivr_api->db_value(res, 0, 3), 0, NULL);
    if (json_is_object(ans))
        json_object_update(a->answers, ans);
    json_decref(ans);
    const char *state = rb_ivr_api->db_value(res, 0, 2);
    if (strcmp(state, "queued") != 0) { /* over before (its report was lost): report again */
        const char *outcome = rb_ivr_api->db_value(res, 0, 4);
        call_final(a, state, outcome ? outcome : "unknown",
                   rb_ivr_api->db_value(res, 0, 5)[0] == 't');
        return;
    }
    double wait = atof(rb_ivr_api->db_value(res, 0, 6));
    if (wait > 0) { /* a dial may be up (this send's job was taken again), or spacing */
        if (a->state != T_LATER)
            rb_ivr_api->log(rb_ivr.ctx, RB_LOG_INFO, "call %lld: an earlier dial may still be "
                            "up, or its spacing runs for %.0f s more; waiting, not dialling",
                            a->call_id, wait);
        a->state = T_LATER;
        arm(a, wait < LATER_POLL ? wait : LATER_POLL);
        return;
    }
    if (a->n >= a->max_attempts) { /* the last attempt never ended (rabtad stopped) */
        char id[24];
        snprintf(id, sizeof(id), "%lld", a->call_id);
        const char *p[] = {id};
        if (rb_ivr_api->db_query(rb_ivr.ctx,
                                 "UPDATE ivr_calls SET state = 'failed', outcome ="
                                 " coalesce(outcome, 'unknown'), updated_at = now()"
                                 " WHERE id = $1::bigint"
                                 " RETURNING state, outcome, replied_at IS NOT NULL",
                                 1, p, on_ended, a) != RB_OK)
            on_ended(NULL, "the database is unavailable", a);
        return;
    }
    struct trunk *t = trunk_of(a->trunk);
    if (!t) {
        att_done(a, RB_SEND_RETRY, 30, "out of memory");
        return;
    }
    a->state = T_WAITING;
    if (t->tail)
        t->tail->qnext = a;
    else
        t->head = a;
    t->tail = a;
    pump(t);
}

static const char *const call_sql =
    "INSERT INTO ivr_calls (message_id, script, phone, language, trunk, reply_kind, ref)"
    " VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::jsonb)"
    " ON CONFLICT (message_id) DO UPDATE SET updated_at = now()"
    " RETURNING id, attempts, state, answers::text, outcome, replied_at IS NOT NULL,"
    "   greatest(coalesce(extract(epoch FROM not_before - now()), 0), 0)";

/* Stores the call (or finds it stored), then on_call_stored. */
static void store_call(struct att *a)
{
    char mid[24];
    snprintf(mid, sizeof(mid), "%lld", a->message_id);
    const char *p[] = {mid, a->script_name, a->phone, a->lang, a->trunk,
                       a->reply_kind[0] ? a->reply_kind : NULL, a->ref};
    if (a->state != T_LATER)
        a->state = T_STORING;
    if (rb_ivr_api->db_query(rb_ivr.ctx, call_sql, 7, p, on_call_stored, a) != RB_OK)
        on_call_stored(NULL, "the database is unavailable", a);
}

/* The names of the scripts of lua/ivr.lua, "a, b, c", into buf. */
static void script_names(char *buf, size_t len)
{
    const char *name;
    const json_t *v;
    size_t at = 0;
    buf[0] = '\0';
    json_object_foreach(json_object_get(rb_ivr.lua.data, "scripts"), name, v)
        if (at < len)
            at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? ", " : "", name);
}

/* A survey call: lua/ivr.lua's survey_calls and a survey of lua/surveys.lua named survey
 * (its name kept in a). NULL, or why it cannot be asked. */
static const char *survey_check(struct att *a, const char *survey, const char *lang, char *why,
                                size_t whylen)
{
    if (!RB_HOST_HAS(rb_ivr_api, survey_walk))
        return "this rabtad cannot ask surveys by phone (no survey_walk in its host API)";
    if (!a->script)
        return "a survey call needs survey_calls = {policy, trunk, intro, thanks} in "
               "lua/ivr.lua";
    if (!*survey || strlen(survey) >= sizeof(a->survey))
        return "data \"script\": \"survey:NAME\" names a survey of lua/surveys.lua";
    char *w = rb_ivr_api->survey_walk(rb_ivr.ctx, survey, lang, NULL, why, whylen);
    if (!w)
        return why;
    free(w);
    snprintf(a->survey, sizeof(a->survey), "%s", survey);
    return NULL;
}

/* Reads the call message into a: its address, language and data {"script", "trunk",
 * "reply_kind", "ref"}. NULL, or the reason it is refused for good, into why. */
static const char *read_message(struct att *a, const struct rb_message_info *m, char *why,
                                size_t whylen)
{
    const char *data =
        m->size >= offsetof(struct rb_message_info, data_json) + sizeof(m->data_json)
            ? m->data_json
            : NULL;
    json_t *p = data ? json_loads(data, 0, NULL) : NULL;
    const char *script = rb_ivr_str(p, "script", NULL), *rk = rb_ivr_str(p, "reply_kind", "");
    const char *lang = m->language ? m->language : "ur", *bad = NULL;
    int survey = script && strncmp(script, "survey:", 7) == 0;
    a->script = survey   ? json_object_get(rb_ivr.lua.data, "survey_calls")
                : script ? rb_ivr_script(&rb_ivr.lua, script)
                         : NULL;
    if (!script) {
        bad = "a call message needs data {\"script\": NAME} naming a script of lua/ivr.lua";
    } else if (!survey && !a->script) {
        char names[200];
        script_names(names, sizeof(names));
        snprintf(why, whylen, "no call script \"%.64s\" in lua/ivr.lua (its scripts: %s)",
                 script, names);
        bad = why;
    } else if (rb_ivr_api->phone_normalize(m->to, a->phone, sizeof(a->phone), &bad) != RB_OK) {
        snprintf(why, whylen, "the address \"%.32s\" is not a phone number: %s", m->to,
                 bad ? bad : "?");
        bad = why;
    } else if (strcmp(lang, "ur") != 0 && strcmp(lang, "en") != 0) {
        bad = "the message's language must be \"ur\" or \"en\"";
    } else if (strlen(rk) >= sizeof(a->reply_kind) ||
               strspn(rk, "abcdefghijklmnopqrstuvwxyz0123456789_.") != strlen(rk)) {
        bad = "data \"reply_kind\": a job kind of [a-z0-9_.] (at most 63)";
    } else if (survey) {
        bad = survey_check(a, script + 7, lang, why, whylen);
    }
    if (!bad) {
        snprintf(a->script_name, sizeof(a->script_name), "%s", script);
        snprintf(a->lang, sizeof(a->lang), "%s", lang);
        snprintf(a->reply_kind, sizeof(a->reply_kind), "%s", rk);
        snprintf(a->trunk, sizeof(a->trunk), "%s",
                 rb_ivr_str(p, "trunk", rb_ivr_str(a->script, "trunk", "default")));
        a->policy = rb_ivr_named(&rb_ivr.lua, "policies",
                                 rb_ivr_str(a->script, "policy", "default"));
        if (!rb_ivr_named(&rb_ivr.lua, "trunks", a->trunk))
            bad = "data \"trunk\": no such trunk in lua/ivr.lua";
        if (json_object_get(p, "ref"))
            a->ref = json_dumps(json_object_get(p, "ref"), JSON_COMPACT | JSON_ENCODE_ANY);
    }
    json_decref(p);
    return bad;
}

/* One send of a call message: one attempt of its call (the send is reported when the attempt
 * ends). Core has waited out the quiet hours already. */
static void on_send(struct rb_message_send *send, const struct rb_message_info *m, void *arg)
{
    (void)arg;
    if (!rb_ivr.ami) {
        rb_ivr_api->message_done(send, RB_SEND_RETRY, 300, "no AMI configured (ami_host)", NULL);
        return;
    }
    struct att *a = calloc(1, sizeof(*a));
    if (!a) {
        rb_ivr_api->message_done(send, RB_SEND_RETRY, 30, "out of memory", NULL);
        return;
    }
    a->send = send;
    a->message_id = m->id;
    a->last_send = m->attempt >= m->max_attempts;
    a->lua = json_incref(rb_ivr.lua.data);
    a->answers = json_object();
    a->timer = evtimer_new(rb_ivr.base, on_deadline, a);
    a->next = cs()->all;
    if (cs()->all)
        cs()->all->prev = a;
    cs()->all = a;
    char why[300];
    const char *bad = read_message(a, m, why, sizeof(why));
    if (bad) {
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_ERROR, "call message %lld refused: %s", m->id, bad);
        att_done(a, RB_SEND_FAILED, 0, bad);
        return;
    }
    a->max_attempts = (int)rb_ivr_num(a->policy, "max_attempts", 3);
    store_call(a);
}

int rb_ivr_call_register(struct rb_plugin_ctx *ctx)
{
    return rb_ivr_api->message_sender(ctx, "call", on_send, NULL);
}
