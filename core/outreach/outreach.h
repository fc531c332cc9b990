/* Outreach at run time (docs/feedback.md): the 'outreach.step' jobs that contact each
 * transaction's citizen in the order its service's policy says (a recorded call, then SMS;
 * or a call by an agent for the random sample), the answers that arrive by SMS, from the IVR
 * or from an agent, and what a finished survey leads to: its AAPOR disposition, the evidence
 * roll-up, an appreciation for the official, or a case at the office's supervisor (never at
 * the official concerned, the citizen's phone hidden from the office).
 *
 * Nothing is held in memory per transaction: its state is its row (transactions.state, step,
 * question, answers) and its next step is a job.
 *
 * Owns: the outreach state of transactions and outreach_attempts. Calls: lua (the survey
 * of lua/surveys.lua), messages (the call and SMS), jobs, db, config. */
#ifndef RB_OUTREACH_H
#define RB_OUTREACH_H

#include <stddef.h>

#include <jansson.h>

struct rb_server;

/* The job kind a feedback call's result comes back as: the call message's data names it as
 * reply_kind, and the IVR queues it with {message_id, call_id, state, outcome, attempts,
 * answers, ref} when the call is over (docs/ivr.md "The answers, handed back"). */
#define RB_OUTREACH_CALL_RESULT "survey.call_result"

/* A free question's answer on a call is a voice recording: "recording:<file name>" (the file
 * stays in the IVR's recordings_dir). */
#define RB_OUTREACH_RECORDING "recording:"

/* Registers the 'outreach.step', 'outreach.schedule' and RB_OUTREACH_CALL_RESULT job kinds.
 * RB_OK or RB_ERR. */
int rb_outreach_register(struct rb_server *srv);

/* fn gets taken 1 when the text answered an open SMS survey (its reply is queued), 0 when no
 * survey waits for this phone, or err. Called exactly once, never before this returns. */
typedef void (*rb_outreach_taken_fn)(int taken, const char *err, void *arg);
/* A text from phone (E.164), len bytes of UTF-8; ref: the gateway's id of the text (a retry
 * with the same ref is taken without answering twice; may be NULL). RB_OK or RB_EAGAIN. */
int rb_outreach_sms_answer(struct rb_server *srv, const char *phone, const char *text,
                           size_t len, const char *ref, rb_outreach_taken_fn fn, void *arg);

/* The answers of a whole survey from a call (channel "call": the IVR, by the call's message
 * id) or an agent (channel "agent", by transaction id, staff_id the agent): answers maps
 * question ids to the digits or text given (borrowed); disposition NULL to derive it
 * (complete, partial or non_contact from the answers) or one of refusal, non_contact,
 * unknown. fn gets err NULL and found 1 when recorded, found 0 when the transaction is not
 * awaiting this channel's answers. RB_OK (fn called later), RB_EINVAL, RB_EAGAIN. */
typedef void (*rb_outreach_done_fn)(int found, const char *err, void *arg);
int rb_outreach_record(struct rb_server *srv, const char *channel, long long id,
                       long long staff_id, const json_t *answers, const char *disposition,
                       rb_outreach_done_fn fn, void *arg);

/* The survey named (lua/surveys.lua walk()) replayed with the answers given at once
 * (question id -> digits, or a recording's reference for a free question; borrowed, may be
 * NULL): {answers, done, next: the question to ask now or absent, invalid: the id of a given
 * answer not allowed}. survey NULL: every survey's questions ({surveys: {name: {first,
 * questions}}}). language "ur" or "en". New, or NULL with why. */
json_t *rb_outreach_walk(struct rb_server *srv, const char *survey, const char *language,
                         const json_t *given, char *why, size_t whylen);

#endif
