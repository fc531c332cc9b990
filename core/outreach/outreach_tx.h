/* Inside core/outreach/: one transaction as its outreach sees it, loaded by one of the
 * look-ups below, and the end of its survey (outreach_survey.c). Not for other folders. */
#ifndef RB_OUTREACH_TX_H
#define RB_OUTREACH_TX_H

#include <jansson.h>
#include <libpq-fe.h>

#include "outreach/outreach.h"

struct rb_server;

/* The columns every look-up answers, then "FROM transactions t JOIN offices o ...". */
#define RB_OTX_COLUMNS                                                                        \
    "SELECT t.id, t.state, t.step, t.service_id, t.phone, t.language, t.sampled,"            \
    "  t.answers::text, o.name_en, o.name_ur, t.office_id, coalesce(t.official_id, ''),"     \
    "  t.reference, o.district_id,"                                                           \
    "  EXISTS (SELECT 1 FROM citizens c WHERE c.phone = t.phone"                              \
    "          AND c.opted_out_at IS NOT NULL),"                                              \
    "  coalesce(t.question, ''), coalesce(t.sms_ref, ''), coalesce(t.agent_id, 0)"            \
    " FROM transactions t JOIN offices o ON o.id = t.office_id "

struct rb_otx {
    long long id, agent_id;
    char state[12];
    int step, sampled, opted_out;
    char *service, *phone, *language, *office, *official, *reference, *district; /* owned */
    char *office_name[2]; /* owned: en, ur */
    char *question, *sms_ref; /* owned */
    json_t *answers;          /* owned */
};

/* Row 0 of res (RB_OTX_COLUMNS) into a new struct; NULL when res has no row. */
struct rb_otx *rb_otx_from(PGresult *res);
void rb_otx_free(struct rb_otx *t);

/* The survey request for lua/surveys.lua: {survey, language, service, office}. New. */
json_t *rb_otx_survey_req(struct rb_server *srv, const struct rb_otx *t);

/* Ends t's survey: outcome (lua/surveys.lua), disposition (NULL: complete when done, else
 * partial with answers, else non_contact), the roll-up, and a case or an appreciation.
 * state: the state t must still be in. channel: who got the answers (NULL: none). ref: the
 * gateway's id of the SMS that ended it (NULL: none). fn gets
 * found 0 when t was no longer in that state. RB_OK or RB_EAGAIN (fn not called). */
int rb_otx_finish(struct rb_server *srv, const struct rb_otx *t, const char *state,
                  const char *channel, int done, const char *disposition, const char *ref,
                  rb_outreach_done_fn fn, void *arg);

/* Ends t's current attempt with disposition and moves it to its next step (state waiting,
 * step + 1, a job after delay seconds), or ends its survey when no step is left. state: the
 * state t must still be in. fn as rb_otx_finish. RB_OK or RB_EAGAIN. */
int rb_otx_next_step(struct rb_server *srv, const struct rb_otx *t, const char *state,
                     const char *disposition, rb_outreach_done_fn fn, void *arg);

/* Runs a job of kind RB_OUTREACH_CALL_RESULT (arg: the server): the IVR's payload
 * {message_id, state, outcome, answers, ...} recorded with rb_outreach_record. */
struct rb_job_run;
struct rb_job_info;
void rb_otx_call_result(struct rb_job_run *run, const struct rb_job_info *job, void *arg);

/* Queues an SMS to t's citizen: the survey question text, or the thanks when text is NULL.
 * Failures are logged. */
void rb_otx_send(struct rb_server *srv, const struct rb_otx *t, const char *text);

#endif
