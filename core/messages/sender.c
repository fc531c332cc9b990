/* Senders by channel and their send jobs (sender.h). */
#include "messages/sender.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "base/common.h"
#include "base/log.h"
#include "base/process.h"
#include "db/db.h"
#include "jobs/jobs.h"
#include "messages/message.h"
#include "sla/sla_policy.h"

#define SEND_KIND_PREFIX "message.send."
#define CHANNEL_MAX 32

struct sender {
    char channel[CHANNEL_MAX + 1];
    char *owner; /* owned: the plugin's name */
    rb_plugin_send_fn fn;
    void *arg;
    struct rb_server *srv; /* borrowed */
};

struct rb_senders {
    struct sender *v; /* owned */
    size_t n;
};

/* One send in flight: from the job's run to rb_sender_done. */
struct rb_message_send {
    const struct sender *sender; /* borrowed from the registry */
    struct rb_job_run *run;      /* borrowed until rb_job_finish */
    char id[24];
    int attempt, max_attempts;
    /* set by rb_sender_done, used when the row is written */
    enum rb_send_outcome outcome;
    double retry_after;
    char *error; /* owned */
    int settled; /* not sent by rule (an opted-out notice): the job itself succeeded */
};

struct rb_senders *rb_senders_new(void)
{
    return rb_calloc(1, sizeof(struct rb_senders));
}

void rb_senders_free(struct rb_senders *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].owner);
    free(s->v);
    free(s);
}

static const struct sender *find(const struct rb_senders *s, const char *channel)
{
    for (size_t i = 0; s && channel && i < s->n; i++)
        if (strcmp(s->v[i].channel, channel) == 0)
            return &s->v[i];
    return NULL;
}

static int valid_channel(const char *c)
{
    size_t n = c ? strlen(c) : 0;
    if (n == 0 || n > CHANNEL_MAX || c[0] < 'a' || c[0] > 'z')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= '0' && c[i] <= '9') || c[i] == '_'))
            return 0;
    return 1;
}

int rb_sender_has(const struct rb_server *srv, const char *channel)
{
    return srv && find(srv->senders, channel) != NULL;
}

void rb_sender_list(const struct rb_server *srv, char *out, size_t len)
{
    size_t at = 0;
    const struct rb_senders *s = srv ? srv->senders : NULL;
    out[0] = '\0';
    for (size_t i = 0; s && i < s->n && at < len; i++)
        at += (size_t)snprintf(out + at, len - at, "%s%s", i ? ", " : "", s->v[i].channel);
    if (!s || s->n == 0)
        snprintf(out, len, "none");
}

int rb_sender_check(const struct rb_server *srv, const char *channel, char *why, size_t whylen)
{
    if (rb_sender_has(srv, channel))
        return RB_OK;
    char list[256];
    rb_sender_list(srv, list, sizeof(list));
    snprintf(why, whylen,
             "no loaded plugin sends messages of channel \"%s\" (channels with a sender: %s); "
             "load a plugin that sends it or use another channel",
             channel ? channel : "", list);
    return RB_EINVAL;
}

static void send_job(struct rb_job_run *run, const struct rb_job_info *job, void *arg);

int rb_sender_register(struct rb_server *srv, const char *channel, const char *owner,
                       rb_plugin_send_fn fn, void *arg, char *why, size_t whylen)
{
    if (!srv || !srv->senders || !fn || !owner || !valid_channel(channel)) {
        snprintf(why, whylen, "a sender needs a channel name of a-z, 0-9 and _ (at most %d, "
                              "starting with a letter) and a send function", CHANNEL_MAX);
        return RB_EINVAL;
    }
    const struct sender *had = find(srv->senders, channel);
    if (had) {
        snprintf(why, whylen,
                 "plugin %s cannot send channel \"%s\": plugin %s sends it already, and a "
                 "channel has one sender; remove one of the two plugins from rabta.yaml",
                 owner, channel, had->owner);
        return RB_EEXIST;
    }
    struct rb_senders *s = srv->senders;
    s->v = rb_realloc(s->v, (s->n + 1) * sizeof(*s->v));
    struct sender *e = &s->v[s->n];
    memset(e, 0, sizeof(*e));
    snprintf(e->channel, sizeof(e->channel), "%s", channel);
    e->owner = rb_strdup(owner);
    e->fn = fn;
    e->arg = arg;
    e->srv = srv;
    if (srv->jobs) {
        /* The registry may grow (realloc) while plugins register: the job's arg is the
         * channel's index, and the entry is found again at each run. */
        char kind[sizeof(SEND_KIND_PREFIX) + CHANNEL_MAX];
        snprintf(kind, sizeof(kind), SEND_KIND_PREFIX "%s", channel);
        if (rb_jobs_register(srv->jobs, kind, send_job, (void *)(uintptr_t)s->n) != RB_OK) {
            free(e->owner);
            snprintf(why, whylen, "job kind %s is taken", kind);
            return RB_EINVAL;
        }
    }
    s->n++;
    return RB_OK;
}

/* ---- one send job ------------------------------------------------------------------------ */

/* The message, and whether it is a notice to a citizen who opted out (by their phone as the
 * address, or as the message's citizen). */
static const char load_sql[] =
    "SELECT m.channel, m.to_address, m.body, m.subject, m.language, m.status, m.notice,"
    "  m.urgent, m.notice AND (EXISTS (SELECT 1 FROM citizens c WHERE c.phone = m.to_address"
    "    AND c.opted_out_at IS NOT NULL) OR EXISTS (SELECT 1 FROM citizens c"
    "    WHERE c.id = m.citizen_id AND c.opted_out_at IS NOT NULL)),"
    "  coalesce(m.case_id, 0), m.data::text"
    " FROM messages m WHERE m.id = $1::bigint";

/* $2 the new status (or NULL: stays queued), $3 last_error, $4 gateway_ref, $5 1 when the
 * sender tried it (attempts + 1). */
static const char done_sql[] =
    "UPDATE messages SET status = coalesce($2::text, status),"
    "  sent_at = CASE WHEN $2::text = 'sent' THEN now() ELSE sent_at END,"
    "  last_error = left($3::text, 500), gateway_ref = coalesce($4::text, gateway_ref),"
    "  attempts = attempts + $5::int"
    " WHERE id = $1::bigint AND status = 'queued'";

static void send_free(struct rb_message_send *s)
{
    free(s->error);
    free(s);
}

static void written(PGresult *res, const char *err, void *arg)
{
    (void)res;
    struct rb_message_send *s = arg;
    if (err) /* the message may be out, but its row does not say so: run again */
        rb_job_finish(s->run, 0, err, -1, 0);
    else if (s->outcome == RB_SEND_SENT || s->settled)
        rb_job_finish(s->run, 1, NULL, 0, 0);
    else if (s->outcome == RB_SEND_RETRY)
        rb_job_finish(s->run, 0, s->error, s->retry_after, 0);
    else
        rb_job_finish(s->run, 0, s->error, -1, 1);
    send_free(s);
}

/* Writes the outcome into the message, then ends the job. */
static void record(struct rb_message_send *s, const char *status, const char *gateway_ref,
                   int tried)
{
    const char *params[5] = {s->id, status, s->error, gateway_ref, tried ? "1" : "0"};
    struct rb_server *srv = s->sender->srv;
    if (!srv->db || rb_db_query_prepared(srv->db, done_sql, 5, params, written, s) != RB_OK) {
        rb_job_finish(s->run, 0, "database unavailable", -1, 0);
        send_free(s);
    }
}

void rb_sender_done(struct rb_message_send *s, enum rb_send_outcome outcome,
                    double retry_after, const char *error, const char *gateway_ref)
{
    if (!s)
        return;
    s->outcome = outcome;
    s->retry_after = retry_after;
    s->error = error ? rb_strdup(error)
               : outcome == RB_SEND_SENT ? NULL
                                         : rb_sprintf("the %s sender gave no reason",
                                                      s->sender->channel);
    const char *status = NULL;
    if (outcome == RB_SEND_SENT) {
        status = "sent";
    } else if (outcome == RB_SEND_RETRY && s->attempt < s->max_attempts) {
        status = NULL; /* stays queued */
    } else {
        s->outcome = RB_SEND_FAILED;
        status = "failed";
    }
    if (s->outcome != RB_SEND_SENT)
        rb_warn("message", "message %s (%s): %s%s", s->id, s->sender->channel, s->error,
                status ? "" : "; tried again later");
    record(s, status, outcome == RB_SEND_SENT ? gateway_ref : NULL, 1);
}

static int is_true(const PGresult *res, int col)
{
    return PQgetvalue(res, 0, col)[0] == 't';
}

static void loaded(PGresult *res, const char *err, void *arg)
{
    struct rb_message_send *s = arg;
    const struct sender *snd = s->sender;
    if (err || PQntuples(res) != 1) {
        rb_job_finish(s->run, 0, err ? err : "no such message", -1, err == NULL);
        send_free(s);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 5), "queued") != 0) {
        rb_job_finish(s->run, 1, NULL, 0, 0); /* sent before: a rerun */
        send_free(s);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), snd->channel) != 0) {
        s->outcome = RB_SEND_FAILED;
        s->error = rb_sprintf("the message is for channel %s, not %s", PQgetvalue(res, 0, 0),
                              snd->channel);
        record(s, "failed", NULL, 0);
        return;
    }
    if (is_true(res, 8)) {
        rb_info("message", "message %s not sent: the citizen opted out (STOP)", s->id);
        s->outcome = RB_SEND_FAILED;
        s->settled = 1;
        s->error = rb_strdup("citizen opted out (STOP)");
        record(s, "failed", NULL, 0);
        return;
    }
    /* Quiet hours: what is not urgent waits for their end (the job's run_at, no sleep). */
    double quiet = is_true(res, 7) ? 0 : rb_message_quiet_wait(snd->srv);
    if (quiet > 0) { /* not an attempt: nothing was tried */
        rb_job_postpone(s->run, quiet, "quiet hours");
        send_free(s);
        return;
    }
    struct rb_message_info m = {
        .size = sizeof(m),
        .id = atoll(s->id),
        .channel = snd->channel,
        .to = PQgetvalue(res, 0, 1),
        .body = PQgetvalue(res, 0, 2),
        .subject = PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3),
        .language = PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4),
        .notice = is_true(res, 6),
        .urgent = is_true(res, 7),
        .attempt = s->attempt,
        .max_attempts = s->max_attempts,
        .case_id = atoll(PQgetvalue(res, 0, 9)),
        .data_json = PQgetisnull(res, 0, 10) ? NULL : PQgetvalue(res, 0, 10),
    };
    /* A send lasts until message_done, which may be longer than the jobs' lease (a call on
     * the phone): while this process lives, no other one takes the message and sends it. */
    rb_job_hold(s->run);
    snd->fn(s, &m, snd->arg); /* res stays valid during the call: the plugin copies */
}

static void send_job(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    size_t idx = (size_t)(uintptr_t)arg;
    struct rb_senders *reg = rb_server.senders;
    json_error_t e;
    json_t *p = json_loads(job->payload ? job->payload : "{}", 0, &e);
    json_t *id = p ? json_object_get(p, "message_id") : NULL;
    if (!reg || idx >= reg->n || !json_is_integer(id) || json_integer_value(id) <= 0) {
        json_decref(p);
        rb_job_finish(run, 0, "payload has no message_id", -1, 1);
        return;
    }
    struct rb_message_send *s = rb_calloc(1, sizeof(*s));
    s->sender = &reg->v[idx];
    s->run = run;
    s->attempt = job->attempt;
    s->max_attempts = job->max_attempts;
    snprintf(s->id, sizeof(s->id), "%lld", (long long)json_integer_value(id));
    json_decref(p);
    const char *params[1] = {s->id};
    if (rb_db_query_prepared(s->sender->srv->db, load_sql, 1, params, loaded, s) != RB_OK) {
        rb_job_finish(run, 0, "database unavailable", -1, 0);
        send_free(s);
    }
}

/* ---- configuration ------------------------------------------------------------------------ */

void rb_sender_check_config(const struct rb_server *srv, const struct rb_sla *sla,
                            struct rb_errors *errs)
{
    for (size_t i = 0; sla && i < sla->n_levels; i++) {
        const struct rb_sla_level *lv = &sla->levels[i];
        for (size_t j = 0; j < lv->n; j++) {
            const struct rb_sla_action *a = &lv->actions[j];
            char why[400];
            if (a->type != RB_SLA_NOTIFY || !a->via || strcmp(a->via, "inbox") == 0 ||
                rb_sender_check(srv, a->via, why, sizeof(why)) == RB_OK)
                continue;
            rb_errors_at(errs, a->via_node, "key \"via\": %s", why);
        }
    }
}
