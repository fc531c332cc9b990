/* core/intake/: new cases from every channel: validate, route with Lua, store in batches, answer
 * after COMMIT (intake). Calls: base, config, db, lua, sla, messages. */
/* Intake: every channel's new cases come through here. It validates and normalises a
 * submission, routes it with the Lua rules, gives it a tracking number, and stores it — and
 * answers the caller only after COMMIT (DESIGN.md: "Durable before acknowledged").
 *
 * Submissions that arrive together are stored together: one transaction, one multi-row
 * insert from arrays, per batch. A batch is sent at the end of the current turn of the event
 * loop, or as soon as it is full; while the database works on batches, the next one grows.
 * A batch that fails on one bad row is split and retried row by row, so one submission's
 * problem never fails another's. */
#ifndef RB_INTAKE_H
#define RB_INTAKE_H

#include <stddef.h>
#include "base/tracking.h"
#include "config/config.h"

struct event_base;
struct rb_db;
struct rb_metrics;
struct rb_script;
struct rb_sla;
struct rb_intake;

#define RB_INTAKE_TEXT_MAX 5000   /* characters of a case's text */
#define RB_INTAKE_NAME_MAX 64
#define RB_INTAKE_ORIGIN_MAX 8192 /* bytes of a submission's origin (JSON) */
/* The callback's status when the database stopped answering after the case was sent to it:
 * it may or may not be stored (RB_CASE_OUTCOME_UNKNOWN of rabta/plugin.h). */
#define RB_INTAKE_OUTCOME_UNKNOWN 504

/* Something a channel wants stored with its case, in the case's transaction: one kind per
 * need, so a channel's needs are a kind here and a part of the statement (intake_store.c),
 * never fields of every submission. */
enum rb_case_extra_kind {
    /* How it arrived, as the channel wants it kept (e.g. the gateway's message id): value, a
     * JSON object of at most RB_INTAKE_ORIGIN_MAX bytes, kept in the "submitted" event as
     * data.origin. */
    RB_CASE_EXTRA_ORIGIN = 1,
    /* A reply carrying the tracking number: value names a template (lua/templates.lua),
     * rendered with {tracking} in the case's language; stored as a message to `to` on
     * `channel` with its 'message.send' job. The case then has no "registered" notice. */
    RB_CASE_EXTRA_REPLY = 2,
    /* Not stored (status 409) while a case of the phone's citizen awaits their answer to a
     * question sent on `channel` to that phone; the channel then decides (the SMS plugin
     * attaches the text to that case). Checked in the statement that stores the case. Needs
     * the submission's phone (without one there is nothing to wait for). */
    RB_CASE_EXTRA_HOLD = 3,
};

struct rb_case_extra {
    enum rb_case_extra_kind kind;
    const char *value;   /* ORIGIN: the JSON; REPLY: the template */
    const char *channel; /* REPLY, HOLD */
    const char *to;      /* REPLY: the address */
};

/* One submission. Every string is borrowed for the duration of rb_intake_submit only. */
struct rb_case_in {
    const char *kind;     /* "complaint", "feedback" or "information" */
    const char *service;  /* service id, or NULL */
    const char *district; /* district id, or NULL */
    const char *text;     /* UTF-8 */
    size_t text_len;
    const char *channel;  /* "app", "sms", "ivr", "web", "open311" */
    const char *language; /* "ur" or "en"; NULL: "ur" */
    const char *phone;    /* any accepted form (normalised here), or NULL */
    const char *email;    /* or NULL; a phone or an email is required unless anonymous */
    double lat, lon;      /* NAN when absent; both or neither */
    int anonymous;        /* hide the citizen from the department */
    int share_contact;    /* citizen agrees the department may see the phone */
    const char *official; /* name of an official the complaint is about, or NULL */
    int rating;           /* feedback: 1-5; 0 none */
    /* Idempotency (optional): a retried submission with the same scope+key returns the first
     * answer; the same key with a different request is refused. */
    const char *idem_scope; /* e.g. "citizen:42" or "apikey:7" */
    const char *idem_key;
    const char *idem_hash; /* hex digest of the request body */
    const void *photo;      /* or NULL; checked: JPEG or PNG by its first bytes */
    size_t photo_len;
    const char *photo_type; /* "image/jpeg" or "image/png" */
    long long citizen_id;   /* already known (signed in): no look-up by phone; 0: unknown */
    /* 1: phone and email are what the sender typed, not proven: never joined to a verified
     * citizen's account (see struct rb_case_submission). */
    int contact_unverified;
    /* What the channel wants stored with the case (borrowed; at most one of each kind). */
    const struct rb_case_extra *extras;
    size_t nextras;
};

#define RB_INTAKE_PHOTO_MAX (8u * 1024 * 1024) /* bytes; channels set their own lower limits */

/* What the caller learns after COMMIT. */
struct rb_case_receipt {
    long long id;
    char tracking_no[RB_TRACKING_LEN];
    char status[24];
    char department[RB_INTAKE_NAME_MAX];
    char category[RB_INTAKE_NAME_MAX];
    char sla_policy[RB_INTAKE_NAME_MAX];
    int priority;
    unsigned flags;      /* RB_ROUTE_F_* */
    int triage;          /* the rules failed; the case went to the triage department */
    int replayed;        /* an earlier answer for the same idempotency key */
};

/* status: 0 with r set on success; else an HTTP-like status (409 idempotency conflict, 503
 * database unavailable) and err. r and err are borrowed for the callback. */
typedef void (*rb_intake_fn)(const struct rb_case_receipt *r, int status, const char *err,
                             void *arg);

/* All borrowed; cfg and rules may be replaced with rb_intake_set_rules. m may be NULL. */
struct rb_intake *rb_intake_new(struct event_base *base, struct rb_db *db,
                                struct rb_metrics *m, const struct rb_config *cfg,
                                struct rb_script *rules, const struct rb_sla *sla);
/* sla may be NULL: no deadlines. */
/* How long non-urgent messages wait (quiet hours): the "registered" notice intake stores. */
/* Whether a new case of department gets a case.deliver job (its plugin wants it). */
/* Whether a channel has a sender (messages/sender.h): a reply or notice on a channel nobody
 * sends is not stored. NULL: every channel has one. */
void rb_intake_set_channel_ok(struct rb_intake *in, int (*fn)(void *arg, const char *channel),
                              void *arg);
void rb_intake_set_wants_delivery(struct rb_intake *in,
                                  int (*fn)(void *arg, const char *department), void *arg);
void rb_intake_set_quiet_wait(struct rb_intake *in, double (*fn)(void *arg), void *arg);
void rb_intake_set_rules(struct rb_intake *in, const struct rb_config *cfg,
                         struct rb_script *rules, const struct rb_sla *sla);
void rb_intake_free(struct rb_intake *in); /* pending submissions fail with "shutting down" */

/* Validates and queues one submission. RB_OK: fn is called exactly once, later. RB_EINVAL:
 * nothing stored, fn not called, and why holds one sentence for the citizen naming the field
 * ("field \"district\": no district \"lahor\""). RB_EAGAIN: too many waiting (answer 503). */
int rb_intake_submit(struct rb_intake *in, const struct rb_case_in *c, rb_intake_fn fn,
                     void *arg, char *why, size_t whylen);

/* Submissions waiting or being stored (shutdown waits for 0). */
size_t rb_intake_pending(const struct rb_intake *in);

#endif
