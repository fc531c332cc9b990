/* Outgoing messages: templates, quiet hours and queueing (message.h). */
#include "message.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calendar.h"
#include "case_state.h"
#include "common.h"
#include "db.h"
#include "log.h"
#include "script.h"
#include "server.h"
#include "sla.h"
#include "text.h"
#include "tz.h"

/* ---- the templates the code uses ---------------------------------------------------------- */

/* Each with the placeholders it may use (the values the code passes). "status.*" is one per
 * case state (the STATUS reply's status words). */
static const struct {
    const char *name;
    const char *params[6];
} required[] = {
    {"sms.received", {"tracking"}},
    {"sms.status", {"tracking", "status"}},
    {"sms.not_found", {"tracking"}},
    {"sms.help", {NULL}},
    {"sms.stop", {NULL}},
    {"sms.start", {NULL}},
    {"sms.flood", {NULL}},
    {"sms.rated", {"tracking"}},
    {"sms.reopened", {"tracking"}},
    {"sms.replied", {"tracking"}},
    {"sms.reply_not_found", {"tracking"}},
    {"otp", {"code", "minutes"}},
    {"notice.routed", {"tracking", "department"}},
    {"notice.acknowledge", {"tracking", "department"}},
    {"notice.transfer", {"tracking", "department"}},
    {"notice.resolve", {"tracking", "department"}},
    {"notice.answer", {"tracking", "department"}},
    {"duty.new_case", {"kind", "tracking", "department", "service", "district", "priority"}},
    {"kind.complaint", {NULL}},
    {"kind.feedback", {NULL}},
    {"kind.information", {NULL}},
};

/* Sample values for the length check: as long as real ones get. */
static const struct {
    const char *name, *value;
} samples[] = {
    {"tracking", "RB-ABCD-EFGH-JKLM"},
    {"status", "متعلقہ محکمے کو بھیج دی گئی"},
    {"department", "Punjab Local Government and Community Development"},
    {"code", "123456"},
    {"minutes", "10"},
};

int rb_template_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > 63 || name[0] < 'a' || name[0] > 'z')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* Length of the placeholder name at p (just after '{'), up to its '}'; 0 if malformed. */
static size_t placeholder(const char *p, const char *end)
{
    size_t n = 0;
    while (p + n < end && n <= 32 &&
           ((p[n] >= 'a' && p[n] <= 'z') || p[n] == '_' || (n > 0 && p[n] >= '0' && p[n] <= '9')))
        n++;
    return n > 0 && n <= 32 && p + n < end && p[n] == '}' ? n : 0;
}

const char *rb_template_text_check(const char *text, size_t len)
{
    if (len == 0)
        return "is empty";
    if (rb_text_valid_utf8(text, len, NULL) != RB_OK || memchr(text, '\0', len))
        return "is not valid UTF-8";
    if (rb_text_chars(text, len) > RB_TEMPLATE_MAX_CHARS)
        return "is longer than 320 characters (an SMS of five Urdu parts)";
    const char *end = text + len;
    for (const char *p = text; p < end; p++) {
        if (*p == '}')
            return "has a } that closes no placeholder (write {name})";
        if (*p != '{')
            continue;
        size_t n = placeholder(p + 1, end);
        if (!n)
            return "has a malformed placeholder (write {name}: lowercase letters, digits, _)";
        p += n + 1;
    }
    return NULL;
}

char *rb_template_fill(const char *text, const json_t *params, char *why, size_t whylen)
{
    size_t len = strlen(text), cap = len + 64, o = 0;
    char *out = rb_malloc(cap);
    const char *end = text + len;
    for (const char *p = text; p < end;) {
        size_t n = *p == '{' ? placeholder(p + 1, end) : 0;
        if (!n) {
            if (o + 1 >= cap)
                out = rb_realloc(out, cap *= 2);
            out[o++] = *p++;
            continue;
        }
        char key[40], num[40];
        memcpy(key, p + 1, n);
        key[n] = '\0';
        const json_t *v = params ? json_object_get(params, key) : NULL;
        const char *val = NULL;
        if (json_is_string(v))
            val = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v)), val = num;
        else if (json_is_real(v))
            snprintf(num, sizeof(num), "%g", json_real_value(v)), val = num;
        if (!val) {
            snprintf(why, whylen, "no value for {%s}", key);
            free(out);
            return NULL;
        }
        size_t vl = strlen(val);
        while (o + vl + 1 >= cap)
            out = rb_realloc(out, cap *= 2);
        memcpy(out + o, val, vl);
        o += vl;
        p += n + 2;
    }
    out[o] = '\0';
    return out;
}

char *rb_template_render(const struct rb_script *s, const char *name, const char *language,
                         const json_t *params, char *why, size_t whylen)
{
    const struct rb_template *t = rb_script_template(s, name);
    if (!t) {
        snprintf(why, whylen, "there is no template \"%s\" in lua/%s.lua", name,
                 RB_TEMPLATES_MODULE);
        return NULL;
    }
    const char *text = language && strcmp(language, "en") == 0 ? t->en : t->ur;
    char *out = rb_template_fill(text, params, why, whylen);
    if (out && rb_text_chars(out, strlen(out)) > RB_TEMPLATE_MAX_CHARS) {
        snprintf(why, whylen, "template \"%s\" renders longer than %d characters", name,
                 RB_TEMPLATE_MAX_CHARS);
        free(out);
        return NULL;
    }
    return out;
}

/* Adds an error for every placeholder of text that is not in allowed (NULL-terminated). */
static void check_params(const struct rb_template *t, const char *lang, const char *text,
                         const char *const *allowed, size_t nallowed, struct rb_errors *errs)
{
    const char *end = text + strlen(text);
    for (const char *p = text; p < end; p++) {
        size_t n = *p == '{' ? placeholder(p + 1, end) : 0;
        if (!n)
            continue;
        size_t k;
        for (k = 0; k < nallowed && allowed[k]; k++)
            if (strlen(allowed[k]) == n && strncmp(allowed[k], p + 1, n) == 0)
                break;
        if (k == nallowed || !allowed[k]) {
            char list[128] = "";
            for (k = 0; k < nallowed && allowed[k]; k++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s{%s}",
                         k ? ", " : "", allowed[k]);
            rb_errors_add(errs, "lua/%s.lua:%d: template \"%s\" (%s): unknown placeholder "
                                "{%.*s}; it may use %s",
                          RB_TEMPLATES_MODULE, t->line, t->name, lang, (int)n, p + 1,
                          list[0] ? list : "none");
        }
        p += n + 1;
    }
}

/* The sample params: every known sample, and "XXXXXXXXXXXXXXXX" for any other name. */
static json_t *sample_params(const char *text)
{
    json_t *o = json_object();
    for (size_t i = 0; i < RB_ARRAY_LEN(samples); i++)
        json_object_set_new(o, samples[i].name, json_string(samples[i].value));
    const char *end = text + strlen(text);
    for (const char *p = text; p < end; p++) {
        size_t n = *p == '{' ? placeholder(p + 1, end) : 0;
        if (!n)
            continue;
        char key[40];
        memcpy(key, p + 1, n);
        key[n] = '\0';
        if (!json_object_get(o, key))
            json_object_set_new(o, key, json_string("XXXXXXXXXXXXXXXX"));
        p += n + 1;
    }
    return o;
}

void rb_templates_check(const struct rb_script *s, struct rb_errors *errs)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(required); i++) {
        const struct rb_template *t = rb_script_template(s, required[i].name);
        if (!t) {
            rb_errors_add(errs, "lua/%s.lua: template \"%s\" is missing (the server writes it)",
                          RB_TEMPLATES_MODULE, required[i].name);
            continue;
        }
        check_params(t, "en", t->en, required[i].params, RB_ARRAY_LEN(required[i].params),
                     errs);
        check_params(t, "ur", t->ur, required[i].params, RB_ARRAY_LEN(required[i].params),
                     errs);
    }
    for (int st = 0; st < RB_CASE_STATE_COUNT; st++) {
        char name[64];
        snprintf(name, sizeof(name), "status.%s", rb_case_state_str((enum rb_case_state)st));
        const struct rb_template *t = rb_script_template(s, name);
        static const char *const none[1] = {NULL};
        if (!t)
            rb_errors_add(errs, "lua/%s.lua: template \"%s\" is missing (the words for a "
                                "case's status)",
                          RB_TEMPLATES_MODULE, name);
        else {
            check_params(t, "en", t->en, none, 1, errs);
            check_params(t, "ur", t->ur, none, 1, errs);
        }
    }
    size_t n;
    const struct rb_template *all = rb_script_templates(s, &n);
    for (size_t i = 0; i < n; i++) {
        const char *texts[2] = {all[i].en, all[i].ur}, *langs[2] = {"en", "ur"};
        for (int k = 0; k < 2; k++) {
            json_t *p = sample_params(texts[k]);
            char why[160];
            char *out = rb_template_fill(texts[k], p, why, sizeof(why));
            if (!out)
                rb_errors_add(errs, "lua/%s.lua:%d: template \"%s\" (%s) does not render: %s",
                              RB_TEMPLATES_MODULE, all[i].line, all[i].name, langs[k], why);
            else if (rb_text_chars(out, strlen(out)) > RB_TEMPLATE_MAX_CHARS)
                rb_errors_add(errs, "lua/%s.lua:%d: template \"%s\" (%s) renders to %zu "
                                    "characters with long values; at most %d fit in an SMS",
                              RB_TEMPLATES_MODULE, all[i].line, all[i].name, langs[k],
                              rb_text_chars(out, strlen(out)), RB_TEMPLATE_MAX_CHARS);
            free(out);
            json_decref(p);
        }
    }
}

/* ---- quiet hours -------------------------------------------------------------------------- */

static int hhmm(const char *p, int *secs)
{
    if (!(p[0] >= '0' && p[0] <= '2' && p[1] >= '0' && p[1] <= '9' && p[2] == ':' &&
          p[3] >= '0' && p[3] <= '5' && p[4] >= '0' && p[4] <= '9'))
        return RB_EINVAL;
    int h = (p[0] - '0') * 10 + (p[1] - '0'), m = (p[3] - '0') * 10 + (p[4] - '0');
    if (h > 23)
        return RB_EINVAL;
    *secs = h * 3600 + m * 60;
    return RB_OK;
}

int rb_quiet_parse(const char *spec, struct rb_quiet *q)
{
    if (!spec || strlen(spec) != 11 || spec[5] != '-')
        return RB_EINVAL;
    struct rb_quiet r;
    if (hhmm(spec, &r.start) != RB_OK || hhmm(spec + 6, &r.end) != RB_OK)
        return RB_EINVAL;
    *q = r;
    return RB_OK;
}

int64_t rb_quiet_wait(const struct rb_quiet *q, const struct rb_tz *tz, int64_t t)
{
    if (!q || q->start == q->end)
        return 0;
    int64_t local = t + rb_tz_offset(tz, t);
    int64_t day = rb_tz_day_of(local), sod = local - day * 86400;
    int64_t end_local;
    if (q->start < q->end) {
        if (sod < q->start || sod >= q->end)
            return 0;
        end_local = day * 86400 + q->end;
    } else if (sod >= q->start) {
        end_local = (day + 1) * 86400 + q->end;
    } else if (sod < q->end) {
        end_local = day * 86400 + q->end;
    } else {
        return 0;
    }
    int64_t end = rb_tz_to_utc(tz, end_local);
    return end > t ? end - t : 0;
}

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

/* One statement for n messages (arrays of one element each): the messages (once per event,
 * template and address when there is an event) and their jobs.
 *   $1 case  $2 citizen  $3 channel  $4 to  $5 body  $6 template  $7 language  $8 notice
 *   $9 urgent  $10 event  $11 delay of the messages that are not urgent (s)
 * Answers the ids of the messages stored; a duplicate of an event's message has no row. */
static const char queue_sql[] =
    "WITH input AS ("
    "  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],"
    "    $6::text[], $7::text[], $8::boolean[], $9::boolean[], $10::bigint[])"
    "  AS i(case_id, citizen_id, channel, to_address, body, template, language, notice, urgent,"
    "    event_id)),"
    " msg AS ("
    "  INSERT INTO messages (case_id, citizen_id, channel, to_address, body, template,"
    "    language, notice, urgent, event_id)"
    "  SELECT i.case_id, coalesce(i.citizen_id, (SELECT id FROM citizens WHERE"
    "    phone = i.to_address AND i.channel = 'sms')), i.channel, i.to_address, i.body,"
    "    i.template, i.language, i.notice, i.urgent, i.event_id FROM input i"
    "  ON CONFLICT (event_id, template, to_address) WHERE event_id IS NOT NULL DO NOTHING"
    "  RETURNING id, urgent),"
    " job AS ("
    "  INSERT INTO jobs (kind, payload, run_at)"
    "  SELECT 'message.send', jsonb_build_object('message_id', id),"
    "    now() + make_interval(secs => CASE WHEN urgent THEN 0 ELSE $11::float8 END) FROM msg)"
    " SELECT id FROM msg";

#define QUEUE_NPARAMS 11

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

static int check_req(const struct rb_message_req *m, char *why, size_t whylen)
{
    if (!m->template || !m->channel || !m->to || !m->to[0] ||
        (m->language && strcmp(m->language, "ur") != 0 && strcmp(m->language, "en") != 0)) {
        snprintf(why, whylen, "a message needs a template, a channel, an address and a "
                              "language of ur or en");
        return RB_EINVAL;
    }
    return RB_OK;
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
        char why[256];
        const char *lang = m[i]->language ? m[i]->language : "ur";
        char *body = check_req(m[i], why, sizeof(why)) == RB_OK
                         ? rb_template_render(srv->rules, m[i]->template, lang, m[i]->params,
                                              why, sizeof(why))
                         : NULL;
        refused[i] = body == NULL;
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
            m[i]->case_id > 0 ? cs : NULL, m[i]->citizen_id > 0 ? cit : NULL, m[i]->channel,
            m[i]->to, body, m[i]->template, lang, m[i]->notice ? "t" : "f",
            m[i]->urgent ? "t" : "f", m[i]->event_id > 0 ? ev : NULL,
        };
        for (size_t k = 0; k < QUEUE_NPARAMS - 1; k++)
            rb_sbuf_elem(&a[k], v[k]);
        free(body);
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
