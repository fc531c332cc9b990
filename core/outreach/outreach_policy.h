/* core/outreach/: proactive feedback (docs/feedback.md). The outreach policies of
 * config/outreach.yaml (outreach_policy), the public-service transactions offices submit
 * (transactions), the outreach steps run as jobs and the surveys they ask, by call, SMS or an
 * agent (outreach), and what answers lead to: cases at the office's supervisor and counts in
 * the evidence roll-up. Calls: base, config, net, db, jobs, lua, messages. */
/* Outreach policies: per service, when and how a citizen is asked about a public service
 * they received. Loaded from the file rabta.yaml names under `outreach:`; only services whose
 * file says `feedback: true` are surveyed. Every error names file:line:col and the key.
 *
 *   timezone: Asia/Karachi        # of the quiet hours
 *   defaults:
 *     delay: 2h                   # after the transaction was completed
 *     channels: [call, sms]       # in order; the next one when the last was not answered
 *     call_wait: 2h               # at most this long for the IVR to report the call
 *     sms_wait: 24h               # how long SMS answers are awaited
 *     attempts: 2                 # tries of each channel
 *     agent_sample: 0.05          # share set aside for calls by agents
 *     agent_wait: 3d              # then the automated channels take over (0: never)
 *     quiet_hours: "21:00-08:00"  # no call or SMS then
 *     per_citizen_days: 30        # a citizen is surveyed at most once in this many days
 *     survey: default             # lua/surveys.lua
 *   services:
 *     fir_registration: {delay: 6h}
 */
#ifndef RB_OUTREACH_POLICY_H
#define RB_OUTREACH_POLICY_H

#include "config/config.h"
#include "config/quiet.h"
#include "config/yaml_doc.h"

struct rb_tz;

#define RB_OUTREACH_MAX_CHANNELS 4

enum rb_outreach_channel { RB_OUTREACH_CALL = 1, RB_OUTREACH_SMS = 2 };

struct rb_outreach_policy {
    const char *service; /* borrowed from the config; NULL for the defaults */
    double delay, call_wait, sms_wait;
    enum rb_outreach_channel channels[RB_OUTREACH_MAX_CHANNELS];
    int n_channels;
    long long attempts;
    double agent_sample;
    double agent_wait; /* seconds a sampled transaction waits for an agent; 0: for ever */
    struct rb_quiet quiet;
    long long per_citizen_days;
    char survey[64];
};

struct rb_outreach {
    struct rb_outreach_policy defaults;
    struct rb_outreach_policy *policies; /* owned; one per service with feedback */
    size_t n;
    struct rb_tz *tz; /* owned */
};

/* Loads path (NULL: no file; every feedback service gets the built-in defaults). Returns NULL
 * with every error added. cfg: the services (ids, feedback) are checked against it. */
struct rb_outreach *rb_outreach_load(const char *path, const struct rb_config *cfg,
                                     struct rb_errors *errs);
void rb_outreach_free(struct rb_outreach *o);

/* The policy of service, or NULL when the service is not surveyed. Borrowed. */
const struct rb_outreach_policy *rb_outreach_policy(const struct rb_outreach *o,
                                                    const char *service);
/* Seconds from now until the policy's quiet hours end; 0 outside them. */
double rb_outreach_quiet_wait(const struct rb_outreach *o, const struct rb_outreach_policy *p);
/* "call" or "sms". */
const char *rb_outreach_channel_name(enum rb_outreach_channel c);

/* The policies as the three array literals rabta_transactions_add takes (migration 0044):
 * services, delays (s) and agent sample shares. New strings; caller frees. */
void rb_outreach_sql_arrays(const struct rb_outreach *o, char **services, char **delays,
                            char **samples);

/* Adds an error for every policy whose survey lua/surveys.lua (of rules) does not have. */
struct rb_script;
void rb_outreach_check_surveys(const struct rb_outreach *o, struct rb_script *rules,
                               struct rb_errors *errs);

/* completed_at as offices give it: "YYYY-MM-DD HH:MM[:SS]" (or with T), optionally followed
 * by Z or +HH:MM / -HH:MM; without a zone, Pakistan time (+05:00). Writes the form
 * PostgreSQL reads into out. 0, or -1 when s is not such a time. */
int rb_outreach_parse_time(const char *s, char out[40]);
/* A text field of a transaction or the registry: NULL when fine, else why (reads after the
 * field's name): "is empty" (when required), "is too long" (over max characters), "starts
 * like a spreadsheet formula ...", "has a control character". */
const char *rb_outreach_check_text(const char *v, size_t max, int required);

#endif
