/* Outgoing messages: queueing (message.h). */
#include "messages/message.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/common.h"
#include "base/log.h"
#include "base/process.h"
#include "base/text.h"
#include "cases/case_state.h"
#include "config/calendar.h"
#include "config/quiet.h"
#include "config/tz.h"
#include "db/db.h"
#include "lua/script.h"
#include "lua/templates.h"
#include "messages/sender.h"
#include "sla/sla_policy.h"

/* ---- quiet hours ----------------------------------------------------------------------- */

/* The zone of the quiet hours: messages.timezone, else the SLA calendar's, else Karachi.
 * Loaded once per name and kept. */
static struct rb_tz *quiet_tz;

static const struct rb_tz *zone_of(struct rb_server *srv)
{
    const char *name = srv->cfg->messages.timezone;
    if (!name && srv->sla && srv->sla->cal)
        return rb_cal_tz(srv->sla->cal);
    if (!name)
        name = "Asia/Karachi";
    if (quiet_tz && strcmp(rb_tz_name(quiet_tz), name) == 0)
        return quiet_tz;
    char *why = NULL;
    struct rb_tz *tz = rb_tz_load(name, &why);
    if (!tz) {
        rb_warn("message", "quiet hours: time zone %s: %s; using UTC", name, why ? why : "?");
        free(why);
        return quiet_tz;
    }
    rb_tz_free(quiet_tz);
    quiet_tz = tz;
    return quiet_tz;
}

double rb_message_quiet_wait(struct rb_server *srv)
{
    struct rb_quiet q;
    if (!srv || !srv->cfg || !srv->cfg->messages.quiet_hours ||
        rb_quiet_parse(srv->cfg->messages.quiet_hours, &q) != RB_OK || q.start == q.end)
        return 0;
    const struct rb_tz *tz = zone_of(srv);
    if (!tz)
        return 0;
    return (double)rb_quiet_wait(&q, tz, (int64_t)time(NULL));
}

void rb_message_cleanup(void)
{
    rb_tz_free(quiet_tz);
    quiet_tz = NULL;
}

/* ---- queueing ----------------------------------------------------------------------------- */

/* One statement for n messages (arrays of one element each), through the SQL function every
 * path that queues messages uses (migrations 0029, 0051):
 *   $1 channel  $2 to  $3 body  $4 case  $5 citizen  $6 template  $7 language  $8 notice
 *   $9 urgent  $10 event  $11 subject  $12 data  $13 delay of the messages that are not
 *   urgent (s)
 * Answers the ids of the messages stored; a duplicate of an event's message has no row. */
static const char queue_sql[] =
    "SELECT message_id FROM rabta_message_queue($1::text[], $2::text[], $3::text[],"
    "  $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::boolean[], $9::boolean[],"
    "  $10::bigint[], $11::text[], delay => $13::float8, data => $12::jsonb[])";

#define QUEUE_NPARAMS 13

struct queued {
    rb_message_fn fn;
    void *arg;
};

static void queue_done(PGresult *res, const char *err, void *arg)
{
    struct queued q = *(struct queued *)arg;
    free(arg);
    if (err) {
        q.fn(0, err, q.arg);
        return;
    }
    long long id = PQntuples(res) == 1 ? atoll(PQgetvalue(res, 0, 0)) : 0;
    q.fn(id, NULL, q.arg);
}

static int check_req(struct rb_server *srv, const struct rb_message_req *m, char *why,
                     size_t whylen)
{
    if (!m->template || !m->channel || !m->to || !m->to[0] ||
        (m->language && strcmp(m->language, "ur") != 0 && strcmp(m->language, "en") != 0)) {
        snprintf(why, whylen, "a message needs a template, a channel, an address and a "
                              "language of ur or en");
        return RB_EINVAL;
    }
    if (m->data_json) {
        json_t *d = strlen(m->data_json) <= RB_MESSAGE_DATA_MAX
                        ? json_loads(m->data_json, JSON_REJECT_DUPLICATES, NULL)
                        : NULL;
        int ok = json_is_object(d);
        json_decref(d);
        if (!ok) {
            snprintf(why, whylen, "a message's data must be a JSON object of at most %d bytes",
                     RB_MESSAGE_DATA_MAX);
            return RB_EINVAL;
        }
    }
    return rb_sender_check(srv, m->channel, why, whylen);
}

/* The message's body and (when it has a subject template) subject; RB_OK or RB_EINVAL with
 * why. *body and *subject are new strings (subject may stay NULL); caller frees. */
static int render(struct rb_server *srv, const struct rb_message_req *m, const char *lang,
                  char **body, char **subject, char *why, size_t whylen)
{
    *body = *subject = NULL;
    if (check_req(srv, m, why, whylen) != RB_OK)
        return RB_EINVAL;
    const struct rb_templates *t = rb_script_templates(srv->rules);
    *body = rb_template_render(t, m->template, lang, m->params, why, whylen);
    if (*body && m->subject_template) {
        *subject = rb_template_render(t, m->subject_template, lang, m->params, why, whylen);
        if (!*subject) {
            free(*body);
            *body = NULL;
        }
    }
    return *body ? RB_OK : RB_EINVAL;
}

/* rb_message_queue_many; why (may be NULL) gets the reason of the last refusal. */
static int queue_many(struct rb_server *srv, const struct rb_message_req *const *m, size_t n,
                      int *refused, char *last_why, size_t whylen, rb_db_fn fn, void *arg)
{
    struct rb_sbuf a[QUEUE_NPARAMS - 1];
    memset(a, 0, sizeof(a));
    for (size_t k = 0; k < QUEUE_NPARAMS - 1; k++)
        rb_sbuf_puts(&a[k], "{");
    size_t stored = 0;
    for (size_t i = 0; i < n; i++) {
        char why[400];
        const char *lang = m[i]->language ? m[i]->language : "ur";
        char *body, *subject;
        refused[i] = render(srv, m[i], lang, &body, &subject, why, sizeof(why)) != RB_OK;
        if (!body) {
            if (last_why) /* the caller reports it */
                snprintf(last_why, whylen, "%s", why);
            else
                rb_warn("message", "not queued (%s, %s): %s",
                        m[i]->template ? m[i]->template : "?", lang, why);
            continue;
        }
        char cs[24], cit[24], ev[24];
        snprintf(cs, sizeof(cs), "%lld", m[i]->case_id);
        snprintf(cit, sizeof(cit), "%lld", m[i]->citizen_id);
        snprintf(ev, sizeof(ev), "%lld", m[i]->event_id);
        const char *v[QUEUE_NPARAMS - 1] = {
            m[i]->channel, m[i]->to, body, m[i]->case_id > 0 ? cs : NULL,
            m[i]->citizen_id > 0 ? cit : NULL, m[i]->template, lang,
            m[i]->notice ? "t" : "f", m[i]->urgent ? "t" : "f",
            m[i]->event_id > 0 ? ev : NULL, subject, m[i]->data_json,
        };
        for (size_t k = 0; k < QUEUE_NPARAMS - 1; k++)
            rb_sbuf_elem(&a[k], v[k]);
        free(body);
        free(subject);
        stored++;
    }
    int rc = RB_OK;
    if (stored > 0) {
        char delay[32];
        snprintf(delay, sizeof(delay), "%.0f", rb_message_quiet_wait(srv));
        const char *params[QUEUE_NPARAMS];
        for (size_t k = 0; k < QUEUE_NPARAMS - 1; k++) {
            rb_sbuf_puts(&a[k], "}");
            params[k] = a[k].p;
        }
        params[QUEUE_NPARAMS - 1] = delay;
        rc = rb_db_query_prepared(srv->db, queue_sql, QUEUE_NPARAMS, params, fn, arg);
    }
    for (size_t k = 0; k < QUEUE_NPARAMS - 1; k++)
        free(a[k].p);
    return stored > 0 ? rc : RB_ENOTFOUND;
}

int rb_message_queue_many(struct rb_server *srv, const struct rb_message_req *const *m,
                          size_t n, int *refused, rb_db_fn fn, void *arg)
{
    return queue_many(srv, m, n, refused, NULL, 0, fn, arg);
}

int rb_message_queue(struct rb_server *srv, const struct rb_message_req *m, rb_message_fn fn,
                     void *arg, char *why, size_t whylen)
{
    struct queued *q = rb_malloc(sizeof(*q));
    q->fn = fn;
    q->arg = arg;
    int refused = 0;
    int rc = queue_many(srv, &m, 1, &refused, why, whylen, queue_done, q);
    if (rc != RB_OK) {
        free(q);
        if (refused)
            return RB_EINVAL; /* why says which part: the request or its template */
        snprintf(why, whylen, "the database is unavailable");
    }
    return rc;
}
