/* Intake: validate, route, number and store new cases in batches. See intake.h. */
#include "intake/intake.h"

#include <event2/event.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/phone.h"
#include "base/text.h"
#include "db/db.h"
#include "intake/intake_store.h"
#include "lua/script.h"
#include "lua/templates.h"
#include "messages/message.h"
#include "sla/sla_engine.h"

#define BATCH_MAX 256       /* submissions per transaction */
#define INFLIGHT_MAX 2      /* transactions at once */
#define PENDING_MAX 20000   /* submissions waiting: beyond, RB_EAGAIN (503) */

/* A submission waiting to be stored, or being stored. */
struct sub {
    struct sub *next;
    struct rb_intake_row r; /* owned */
    rb_intake_fn fn;
    void *arg;
};

struct batch {
    struct rb_intake *in;
    struct sub *head; /* owned */
    int n;
};

struct rb_intake {
    struct event_base *base;      /* borrowed */
    struct rb_db *db;             /* borrowed */
    struct rb_metrics *m;         /* borrowed; may be NULL */
    const struct rb_config *cfg;  /* borrowed; replaced at reload */
    struct rb_script *rules;      /* borrowed; replaced at reload */
    const struct rb_sla *sla;     /* borrowed; replaced at reload; NULL: no deadlines */
    struct sub *head, **tail;     /* waiting, in arrival order */
    size_t waiting, storing;
    int inflight;
    struct event *flush_ev;
    double (*quiet_wait)(void *arg); /* seconds until quiet hours end; may be NULL */
    void *quiet_arg;
    int (*wants_delivery)(void *arg, const char *department); /* NULL: every department */
    void *wants_arg;
    int (*channel_ok)(void *arg, const char *channel); /* NULL: every channel is sent */
    void *channel_arg;
    char *store[RB_INTAKE_COMBINATIONS]; /* owned; the statement of each combination of parts
                                          * (intake_store.h), built when first used */
};

/* An earlier answer for an idempotency key: the case it created and the request's digest. */
/* The first answer is rebuilt from the case's first "routed" event (append-only), not from the
 * case as it is now: a replay answers exactly what the first request was told. */
static const char idem_sql[] =
    "SELECT k.request_hash, c.id, c.tracking_no, e.data->>'to_status',"
    "  e.data->>'department', e.data->>'category', e.data->>'sla_policy',"
    "  (e.data->>'priority')::int, (e.data->>'triage')::boolean "
    "FROM idempotency_keys k JOIN cases c ON c.id = k.case_id "
    "CROSS JOIN LATERAL (SELECT data || jsonb_build_object('to_status', to_status) AS data"
    "  FROM case_events WHERE case_id = c.id AND event = 'routed' ORDER BY id LIMIT 1) e "
    "WHERE k.scope = $1 AND k.key = $2";

/* ---- validation ------------------------------------------------------------------------- */

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && whylen)
        vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return RB_EINVAL;
}

static int one_of(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* A short single-line field (ids, keys): present, valid UTF-8, no control characters. */
static int short_field(const char *name, const char *v, size_t max, char *why, size_t whylen)
{
    const char *what;
    if (rb_text_check(v, strlen(v), max, RB_TEXT_REQUIRED, &what) != RB_OK)
        return fail(why, whylen, "field \"%s\": %s", name, what);
    return RB_OK;
}

/* A channel's origin: a JSON object of at most RB_INTAKE_ORIGIN_MAX bytes. */
static int origin_check(const char *origin, char *why, size_t whylen)
{
    size_t len = strlen(origin);
    if (len > RB_INTAKE_ORIGIN_MAX)
        return fail(why, whylen, "origin: %zu bytes is over the limit of %d", len,
                    RB_INTAKE_ORIGIN_MAX);
    json_error_t e;
    json_t *o = json_loadb(origin, len, JSON_REJECT_DUPLICATES, &e);
    int parsed = o != NULL, ok = json_is_object(o);
    json_decref(o);
    if (!ok)
        return fail(why, whylen, "origin: not a JSON object%s%s", parsed ? "" : ": ",
                    parsed ? "" : e.text);
    return RB_OK;
}

static void sub_free(struct sub *s)
{
    rb_intake_row_free(&s->r);
    free(s);
}

static char *json_route(const struct rb_route_out *r, const char *error)
{
    /* Values are slugs from the rules (checked by rb_script_route); error is free text. */
    struct rb_sbuf b = {0};
    char head[512];
    snprintf(head, sizeof(head),
             "{\"department\":\"%s\",\"category\":\"%s\",\"priority\":%d,\"sla_policy\":\"%s\","
             "\"triage\":%s,\"flags\":[",
             r->department, r->category, r->priority, r->sla_policy,
             r->triage ? "true" : "false");
    rb_sbuf_puts(&b, head);
    int first = 1;
    for (unsigned bit = 1; bit; bit <<= 1)
        if (r->flags & bit) {
            const char *name = rb_route_flag_name(bit);
            if (!name)
                continue;
            rb_sbuf_puts(&b, first ? "\"" : ",\"");
            rb_sbuf_puts(&b, name);
            rb_sbuf_puts(&b, "\"");
            first = 0;
        }
    rb_sbuf_puts(&b, "]");
    if (error) {
        rb_sbuf_puts(&b, ",\"rule_error\":\"");
        for (const char *p = error; *p; p++) {
            char esc[8];
            unsigned char c = (unsigned char)*p;
            if (c == '"' || c == '\\') {
                esc[0] = '\\';
                esc[1] = (char)c;
                rb_sbuf_putn(&b, esc, 2);
            } else if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                rb_sbuf_puts(&b, esc);
            } else {
                rb_sbuf_putn(&b, p, 1);
            }
        }
        rb_sbuf_puts(&b, "\"");
    }
    rb_sbuf_puts(&b, "}");
    return b.p;
}

static const char *const kinds[] = {"complaint", "feedback", "information", NULL};
static const char *const channels[] = {"app", "sms", "ivr", "web", "open311", NULL};
static const char *const languages[] = {"ur", "en", NULL};

/* The fields every submission has: RB_OK, or RB_EINVAL with why set. phone receives the phone
 * in E.164 ("" when none). */
static int check_fields(const struct rb_config *cfg, const struct rb_case_in *c,
                        char phone[RB_PHONE_MAX], char *why, size_t whylen)
{
    const char *what;
    if (!c->kind || !one_of(c->kind, kinds))
        return fail(why, whylen, "field \"kind\": expected complaint, feedback or information");
    if (!c->channel || !one_of(c->channel, channels))
        return fail(why, whylen, "field \"channel\": expected app, sms, ivr, web or open311");
    if (c->language && !one_of(c->language, languages))
        return fail(why, whylen, "field \"language\": expected ur or en");
    if (c->service && (short_field("service", c->service, 64, why, whylen) != RB_OK ||
                       (!rb_config_service(cfg, c->service) &&
                        fail(why, whylen, "field \"service\": no service \"%.64s\"",
                             c->service))))
        return RB_EINVAL;
    if (c->district && (short_field("district", c->district, 64, why, whylen) != RB_OK ||
                        (!rb_config_district(cfg, c->district) &&
                         fail(why, whylen, "field \"district\": no district \"%.64s\"",
                              c->district))))
        return RB_EINVAL;
    if (!c->text)
        return fail(why, whylen, "field \"text\" is required");
    if (memchr(c->text, '\0', c->text_len))
        return fail(why, whylen, "field \"text\": contains a NUL character");
    if (c->phone && rb_phone_normalize(c->phone, phone, &what) != RB_OK)
        return fail(why, whylen, "field \"phone\": %s", what);
    if (c->email) {
        const char *at = strchr(c->email, '@');
        if (short_field("email", c->email, 254, why, whylen) != RB_OK)
            return RB_EINVAL;
        if (!at || at == c->email || !at[1] || strchr(at + 1, '@') || strpbrk(c->email, " \t"))
            return fail(why, whylen, "field \"email\": not an email address");
    }
    if (!c->phone && !c->email && !c->anonymous)
        return fail(why, whylen, "a phone number or an email is needed to keep you informed (or "
                                 "submit anonymously)");
    if (isnan(c->lat) != isnan(c->lon))
        return fail(why, whylen, "fields \"lat\" and \"long\": give both or neither");
    if (!isnan(c->lat) && (!(c->lat >= -90 && c->lat <= 90) || !(c->lon >= -180 && c->lon <= 180)))
        return fail(why, whylen, "fields \"lat\" and \"long\": out of range");
    if (c->rating && (c->rating < 1 || c->rating > 5))
        return fail(why, whylen, "field \"rating\": expected a whole number from 1 to 5");
    if (c->official && short_field("official", c->official, 200, why, whylen) != RB_OK)
        return RB_EINVAL;
    if (c->idem_key && (!c->idem_scope || !c->idem_hash))
        return fail(why, whylen, "an Idempotency-Key needs a scope and a request digest");
    if (c->idem_key && short_field("Idempotency-Key", c->idem_key, 200, why, whylen) != RB_OK)
        return RB_EINVAL;
    return RB_OK;
}

/* The attachment's type by its first bytes into *type (a photo, or an IVR recording): RB_OK,
 * or RB_EINVAL with why set. */
static int check_photo(const struct rb_case_in *c, const char **type, char *why, size_t whylen)
{
    static const unsigned char jpeg[] = {0xff, 0xd8, 0xff};
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const unsigned char *b = c->photo;
    if (c->photo_len > RB_INTAKE_PHOTO_MAX)
        return fail(why, whylen, "field \"photo\": %zu bytes is over the limit of %u bytes",
                    c->photo_len, RB_INTAKE_PHOTO_MAX);
    *type = NULL;
    if (c->photo_len > sizeof(png) && memcmp(b, png, sizeof(png)) == 0)
        *type = "image/png";
    else if (c->photo_len > sizeof(jpeg) && memcmp(b, jpeg, sizeof(jpeg)) == 0)
        *type = "image/jpeg";
    else if (c->photo_len > 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WAVE", 4) == 0)
        *type = "audio/wav"; /* a recording from the phone (IVR) */
    if (!*type || (c->photo_type && strcmp(c->photo_type, *type) != 0))
        return fail(why, whylen, "field \"photo\": expected a JPEG or PNG image or a WAV "
                                 "recording (its content does not match%s%s)",
                    c->photo_type ? " " : "",
                    c->photo_type ? c->photo_type : "");
    return RB_OK;
}

/* The photo as a bytea literal ("\\x..."): returns a new string; caller frees. */
static char *photo_hex(const unsigned char *b, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *hex = rb_malloc(2 + 2 * len + 1);
    hex[0] = '\\';
    hex[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        hex[2 + 2 * i] = digits[b[i] >> 4];
        hex[3 + 2 * i] = digits[b[i] & 15];
    }
    hex[2 + 2 * len] = '\0';
    return hex;
}

/* The channel's extras: known kinds, at most one of each, each with what it needs. RB_OK, or
 * RB_EINVAL with why set. */
static int check_extras(const struct rb_case_in *c, char *why, size_t whylen)
{
    unsigned seen = 0;
    for (size_t i = 0; i < c->nextras; i++) {
        const struct rb_case_extra *x = &c->extras[i];
        switch (x->kind) {
        case RB_CASE_EXTRA_ORIGIN:
            if (!x->value)
                return fail(why, whylen, "origin: no value");
            if (origin_check(x->value, why, whylen) != RB_OK)
                return RB_EINVAL;
            break;
        case RB_CASE_EXTRA_REPLY:
            if (!x->value || !x->channel || !x->to)
                return fail(why, whylen, "reply: needs a template, a channel and an address");
            if (short_field("reply template", x->value, 64, why, whylen) != RB_OK ||
                short_field("reply channel", x->channel, 32, why, whylen) != RB_OK ||
                short_field("reply address", x->to, 254, why, whylen) != RB_OK)
                return RB_EINVAL;
            break;
        case RB_CASE_EXTRA_HOLD:
            if (!x->channel || short_field("hold channel", x->channel, 32, why, whylen) != RB_OK)
                return fail(why, whylen, "hold: needs the channel of the question");
            break;
        default:
            return fail(why, whylen, "extra %zu: unknown kind %d", i, (int)x->kind);
        }
        if (seen & 1u << x->kind)
            return fail(why, whylen, "extra %zu: a second of its kind", i);
        seen |= 1u << x->kind;
    }
    return RB_OK;
}

/* Copies the (checked) extras into r, whose phone is set. The reply's body is rendered once
 * the case has its tracking number (rb_intake_submit). */
static void take_extras(struct rb_intake_row *r, const struct rb_case_in *c)
{
    for (size_t i = 0; i < c->nextras; i++) {
        const struct rb_case_extra *x = &c->extras[i];
        if (x->kind == RB_CASE_EXTRA_ORIGIN) {
            r->origin = rb_strdup(x->value);
        } else if (x->kind == RB_CASE_EXTRA_REPLY) {
            r->reply_template = rb_strdup(x->value);
            r->reply_channel = rb_strdup(x->channel);
            r->reply_to = rb_strdup(x->to);
        } else if (x->kind == RB_CASE_EXTRA_HOLD && r->phone) { /* the test is by phone */
            r->hold_channel = rb_strdup(x->channel);
        }
    }
}

/* Checks c and builds a queued submission from it, or returns NULL with why set. */
static struct sub *validate(struct rb_intake *in, const struct rb_case_in *c, char *why,
                            size_t whylen)
{
    char phone[RB_PHONE_MAX] = "";
    const char *photo_type = NULL, *what;
    if (check_fields(in->cfg, c, phone, why, whylen) != RB_OK ||
        (c->photo && check_photo(c, &photo_type, why, whylen) != RB_OK) ||
        check_extras(c, why, whylen) != RB_OK)
        return NULL;
    /* Last, as it copies: tidied (line ends, bidi overrides, stray spaces), then checked. */
    char *text = rb_strndup(c->text, c->text_len);
    size_t text_len = c->text_len;
    if (rb_text_sanitize(text, &text_len, RB_INTAKE_TEXT_MAX,
                         RB_TEXT_BODY | RB_TEXT_TABS | RB_TEXT_REQUIRED, &what) != RB_OK) {
        free(text);
        fail(why, whylen, "field \"text\": %s", what);
        return NULL;
    }

    struct sub *s = rb_calloc(1, sizeof(*s));
    struct rb_intake_row *r = &s->r;
    if (photo_type) {
        r->photo_hex = photo_hex(c->photo, c->photo_len);
        r->photo_type = photo_type;
    }
    r->kind = rb_strdup(c->kind);
    r->service = rb_strdup(c->service);
    r->district = rb_strdup(c->district);
    r->text = text;
    r->channel = rb_strdup(c->channel);
    r->language = rb_strdup(c->language ? c->language : "ur");
    r->phone = phone[0] ? rb_strdup(phone) : NULL;
    r->email = rb_strdup(c->email);
    r->official = rb_strdup(c->official);
    r->lat = c->lat;
    r->lon = c->lon;
    r->anonymous = c->anonymous;
    r->share_contact = c->share_contact;
    r->rating = c->rating;
    r->citizen_id = c->citizen_id > 0 ? c->citizen_id : 0;
    r->contact_unverified = c->contact_unverified;
    if (c->idem_key) {
        r->idem_scope = rb_strdup(c->idem_scope);
        r->idem_key = rb_strdup(c->idem_key);
        r->idem_hash = rb_strdup(c->idem_hash);
    }
    take_extras(r, c);
    return s;
}

/* /metrics help texts of intake's counters */
#define CASES_HELP "Cases stored."
#define BATCHES_HELP "Intake transactions."
#define ROUTING_FAILURES_HELP "Cases sent to triage because the routing rules failed."

/* ---- routing and queueing --------------------------------------------------------------- */

static void route(struct rb_intake *in, struct rb_intake_row *s)
{
    struct rb_route_in ri = {
        .service = s->service, .kind = s->kind, .text = s->text, .district = s->district,
        .channel = s->channel, .language = s->language, .lat = s->lat, .lon = s->lon,
        .official = s->official,
    };
    char err[256] = "";
    int rc = in->rules ? rb_script_route(in->rules, &ri, &s->route, err, sizeof(err)) : RB_ERR;
    if (!in->rules) {
        memset(&s->route, 0, sizeof(s->route));
        s->route.triage = 1;
        snprintf(err, sizeof(err), "no routing rules are loaded");
    }
    if (s->route.triage || rc != RB_OK) {
        /* The rules failed: the configured triage department takes it, never lost. */
        snprintf(s->route.department, sizeof(s->route.department), "%s",
                 in->cfg->triage_department);
        if (!s->route.category[0])
            snprintf(s->route.category, sizeof(s->route.category), "triage");
        if (!s->route.sla_policy[0])
            snprintf(s->route.sla_policy, sizeof(s->route.sla_policy), "default");
        if (s->route.priority < 1 || s->route.priority > 5)
            s->route.priority = 3;
        s->route.triage = 1;
        if (in->m)
            rb_metrics_count(in->m, "rabta_routing_failures_total",
                             ROUTING_FAILURES_HELP, NULL, 1);
    }
    if (in->sla) {
        /* Overrides in sla.yaml may change the policy the rules named. */
        const struct rb_sla_policy *p = rb_sla_pick(in->sla, s->route.department, s->service,
                                                    s->kind, s->route.sla_policy);
        if (p) {
            int64_t now = (int64_t)rb_now_wall();
            snprintf(s->route.sla_policy, sizeof(s->route.sla_policy), "%s", p->name);
            rb_sla_deadlines(in->sla, p, now, &s->ack_due, &s->resolve_due);
            struct rb_sla_event plan[RB_SLA_PLAN_MAX];
            int n = rb_sla_plan(in->sla, p, now, s->ack_due, s->resolve_due,
                                1u << RB_SLA_ACK | 1u << RB_SLA_WARN | 1u << RB_SLA_RESOLVE,
                                plan);
            if (n > 0) {
                s->first = plan[0];
                s->sla_payload = rb_sla_event_payload(-1, plan, n);
            } else {
                s->resolve_due = s->ack_due = 0;
            }
        }
    }
    s->route_json = json_route(&s->route, rc != RB_OK || s->route.triage ? err : NULL);
}

static void flush(struct rb_intake *in);

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

struct rb_intake *rb_intake_new(struct event_base *base, struct rb_db *db,
                                struct rb_metrics *m, const struct rb_config *cfg,
                                struct rb_script *rules, const struct rb_sla *sla)
{
    struct rb_intake *in = rb_calloc(1, sizeof(*in));
    in->base = base;
    in->db = db;
    in->m = m;
    in->cfg = cfg;
    in->rules = rules;
    in->sla = sla;
    in->tail = &in->head;
    in->flush_ev = event_new(base, -1, 0, on_flush, in);
    if (!in->flush_ev)
        rb_fatal("out of memory");
    /* Counters are on /metrics from the start (at 0), so rate() and alerts on them work
     * before the first case or the first routing failure. */
    rb_metrics_count(m, "rabta_intake_cases_total", CASES_HELP, NULL, 0);
    rb_metrics_count(m, "rabta_intake_batches_total", BATCHES_HELP, NULL, 0);
    rb_metrics_count(m, "rabta_routing_failures_total",
                     ROUTING_FAILURES_HELP, NULL, 0);
    return in;
}

void rb_intake_set_channel_ok(struct rb_intake *in, int (*fn)(void *arg, const char *channel),
                              void *arg)
{
    in->channel_ok = fn;
    in->channel_arg = arg;
}

static int channel_ok(const struct rb_intake *in, const char *channel)
{
    return !in->channel_ok || in->channel_ok(in->channel_arg, channel);
}

void rb_intake_set_wants_delivery(struct rb_intake *in,
                                  int (*fn)(void *arg, const char *department), void *arg)
{
    in->wants_delivery = fn;
    in->wants_arg = arg;
}

void rb_intake_set_quiet_wait(struct rb_intake *in, double (*fn)(void *arg), void *arg)
{
    in->quiet_wait = fn;
    in->quiet_arg = arg;
}

void rb_intake_set_rules(struct rb_intake *in, const struct rb_config *cfg,
                         struct rb_script *rules, const struct rb_sla *sla)
{
    in->cfg = cfg;
    in->rules = rules;
    in->sla = sla;
}

size_t rb_intake_pending(const struct rb_intake *in)
{
    return in ? in->waiting + in->storing : 0;
}

/* The messages that tell the citizen their tracking number: the channel's reply (extra REPLY)
 * or else the "registered" notice, rendered now into r. */
static void render_messages(struct rb_intake *in, struct rb_intake_row *r)
{
    char err[256];
    if (r->reply_template && !channel_ok(in, r->reply_channel)) {
        rb_warn("intake", "case %s: no reply: no plugin sends channel %s", r->tracking,
                r->reply_channel);
        free(r->reply_template);
        free(r->reply_channel);
        free(r->reply_to);
        r->reply_template = r->reply_channel = r->reply_to = NULL;
    } else if (r->reply_template) {
        json_t *p = json_pack("{s:s}", "tracking", r->tracking);
        r->reply_body = rb_template_render(rb_script_templates(in->rules), r->reply_template,
                                           r->language, p, err, sizeof(err));
        json_decref(p);
        if (!r->reply_body) {
            rb_warn("intake", "case %s: no reply: %s", r->tracking, err);
            free(r->reply_template);
            free(r->reply_channel);
            free(r->reply_to);
            r->reply_template = r->reply_channel = r->reply_to = NULL;
        }
    }
    /* No channel reply carries the tracking number: a notice will, when there is someone to
     * tell: by SMS to a phone given or a known citizen's (the statement finds it), else by
     * e-mail to an address given; each only when a plugin sends that channel. */
    if (!r->reply_body && ((r->phone || r->citizen_id > 0) ? channel_ok(in, "sms")
                                                           : r->email && channel_ok(in, "email"))) {
        const struct rb_department *d = rb_config_department(in->cfg, r->route.department);
        int en = strcmp(r->language, "en") == 0;
        const char *dname = d ? (en ? d->name.en : d->name.ur) : NULL;
        json_t *p = json_pack("{s:s, s:s}", "tracking", r->tracking, "department",
                              dname && *dname ? dname : r->route.department);
        r->notice_body = rb_template_render(rb_script_templates(in->rules), "notice.routed",
                                            en ? "en" : "ur", p, err, sizeof(err));
        json_decref(p);
        if (!r->notice_body)
            rb_warn("intake", "case %s: no registered notice: %s", r->tracking, err);
    }
}

int rb_intake_submit(struct rb_intake *in, const struct rb_case_in *c, rb_intake_fn fn,
                     void *arg, char *why, size_t whylen)
{
    if (in->waiting >= PENDING_MAX) {
        fail(why, whylen, "too many submissions are waiting to be stored; try again shortly");
        return RB_EAGAIN;
    }
    struct sub *s = validate(in, c, why, whylen);
    if (!s)
        return RB_EINVAL;
    route(in, &s->r);
    rb_tracking_new(s->r.tracking);
    render_messages(in, &s->r);
    s->r.deliver =
        !in->wants_delivery || in->wants_delivery(in->wants_arg, s->r.route.department);
    s->fn = fn;
    s->arg = arg;
    *in->tail = s;
    in->tail = &s->next;
    in->waiting++;
    /* Send at the end of this turn of the loop, so everything that arrived with it joins. */
    if (in->waiting >= BATCH_MAX)
        flush(in);
    else if (in->waiting == 1)
        event_active(in->flush_ev, EV_TIMEOUT, 0);
    return RB_OK;
}

/* ---- storing ------------------------------------------------------------------------------ */

static void answer(struct sub *s, const struct rb_case_receipt *r, int status, const char *err)
{
    s->fn(r, status, err, s->arg);
    sub_free(s);
}

static void receipt_of(const struct rb_intake_row *s, long long id, struct rb_case_receipt *r)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    snprintf(r->tracking_no, sizeof(r->tracking_no), "%s", s->tracking);
    snprintf(r->status, sizeof(r->status), "routed");
    snprintf(r->department, sizeof(r->department), "%s", s->route.department);
    snprintf(r->category, sizeof(r->category), "%s", s->route.category);
    snprintf(r->sla_policy, sizeof(r->sla_policy), "%s", s->route.sla_policy);
    r->priority = s->route.priority;
    r->flags = s->route.flags;
    r->triage = s->route.triage;
}

static int sqlstate_is(const char *err, const char *prefix)
{
    const char *p = err ? strstr(err, "(SQLSTATE ") : NULL;
    return p && strncmp(p + 10, prefix, strlen(prefix)) == 0;
}

static void send_batch(struct rb_intake *in, struct sub *head, int n);

struct idem_lookup {
    struct rb_intake *in;
    struct sub *s;
};

static void idem_found(PGresult *res, const char *err, void *arg)
{
    struct idem_lookup *l = arg;
    struct sub *s = l->s;
    l->in->storing--;
    free(l);
    if (err) {
        answer(s, NULL, 503, err);
        return;
    }
    if (PQntuples(res) != 1) { /* the key's case vanished: cannot happen, say so */
        answer(s, NULL, 500, "the idempotency key is taken but its case was not found");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), s->r.idem_hash) != 0) {
        answer(s, NULL, 422, "this Idempotency-Key was already used for a different request");
        return;
    }
    struct rb_case_receipt r;
    memset(&r, 0, sizeof(r));
    r.id = atoll(PQgetvalue(res, 0, 1));
    snprintf(r.tracking_no, sizeof(r.tracking_no), "%s", PQgetvalue(res, 0, 2));
    snprintf(r.status, sizeof(r.status), "%s", PQgetvalue(res, 0, 3));
    snprintf(r.department, sizeof(r.department), "%s", PQgetvalue(res, 0, 4));
    snprintf(r.category, sizeof(r.category), "%s", PQgetvalue(res, 0, 5));
    snprintf(r.sla_policy, sizeof(r.sla_policy), "%s", PQgetvalue(res, 0, 6));
    r.priority = atoi(PQgetvalue(res, 0, 7));
    r.triage = strcmp(PQgetvalue(res, 0, 8), "t") == 0;
    r.replayed = 1;
    answer(s, &r, 0, NULL);
}

/* A retried submission: answer as the first time, or 422 for a different request. */
static void replay(struct rb_intake *in, struct sub *s)
{
    struct idem_lookup *l = rb_malloc(sizeof(*l));
    l->in = in;
    l->s = s;
    const char *params[2] = {s->r.idem_scope, s->r.idem_key};
    in->storing++;
    if (rb_db_query_prepared(in->db, idem_sql, 2, params, idem_found, l) != RB_OK) {
        in->storing--;
        free(l);
        answer(s, NULL, 503, "the database is overloaded; try again shortly");
    }
}

static void stored(PGresult **results, int n, const char *err, void *arg)
{
    struct batch *b = arg;
    struct rb_intake *in = b->in;
    struct sub *s = b->head, *next;
    in->inflight--;
    in->storing -= (size_t)b->n;
    if (err) {
        int data_error = sqlstate_is(err, "22") || sqlstate_is(err, "23");
        if (b->n > 1 && data_error) {
            /* One row spoiled the batch: store each on its own so only it fails. */
            rb_warn("intake", "a batch of %d failed (%s); storing them one by one", b->n, err);
            for (; s; s = next) {
                next = s->next;
                s->next = NULL;
                send_batch(in, s, 1);
            }
        } else if (b->n == 1 && s->r.idem_key && sqlstate_is(err, "23505")) {
            replay(in, s);
        } else {
            int status = data_error                   ? 422
                         : rb_db_outcome_unknown(err) ? RB_INTAKE_OUTCOME_UNKNOWN
                                                      : 503;
            for (; s; s = next) {
                next = s->next;
                answer(s, NULL, status, err);
            }
        }
        free(b);
        flush(in);
        return;
    }
    /* RETURNING does not promise input order: match rows by tracking number. */
    PGresult *res = results[n - 1];
    int rows = PQntuples(res);
    for (; s; s = next) {
        next = s->next;
        long long id = -1;
        for (int i = 0; i < rows; i++)
            if (strcmp(PQgetvalue(res, i, 1), s->r.tracking) == 0) {
                id = atoll(PQgetvalue(res, i, 0));
                break;
            }
        struct rb_case_receipt r;
        receipt_of(&s->r, id, &r);
        if (id < 0 && s->r.hold_channel)
            answer(s, NULL, 409, "a case of this citizen awaits their answer");
        else if (id < 0)
            answer(s, NULL, 500, "the case was not stored (no row came back)");
        else
            answer(s, &r, 0, NULL);
    }
    if (in->m) {
        rb_metrics_count(in->m, "rabta_intake_cases_total", CASES_HELP, NULL, rows);
        rb_metrics_count(in->m, "rabta_intake_batches_total", BATCHES_HELP, NULL, 1);
    }
    free(b);
    flush(in);
}

static void send_batch(struct rb_intake *in, struct sub *head, int n)
{
    struct rb_intake_arrays a;
    unsigned parts = 0;
    rb_intake_arrays_init(&a);
    for (struct sub *s = head; s; s = s->next) {
        rb_intake_arrays_add(&a, &s->r);
        parts |= rb_intake_row_parts(&s->r);
    }
    if (!in->store[parts])
        in->store[parts] = rb_intake_store_sql(parts);
    const char *params[RB_INTAKE_NPARAMS];
    rb_intake_arrays_params(&a, in->quiet_wait ? in->quiet_wait(in->quiet_arg) : 0.0, params);
    struct batch *b = rb_malloc(sizeof(*b));
    b->in = in;
    b->head = head;
    b->n = n;
    const struct rb_db_stmt stmt = {in->store[parts], RB_INTAKE_NPARAMS, params, 1};
    in->inflight++;
    in->storing += (size_t)n;
    if (rb_db_batch(in->db, &stmt, 1, 1, stored, b) != RB_OK) {
        in->inflight--;
        in->storing -= (size_t)n;
        struct sub *s = head, *next;
        for (; s; s = next) {
            next = s->next;
            answer(s, NULL, 503, "the database is overloaded; try again shortly");
        }
        free(b);
    }
    rb_intake_arrays_free(&a);
}

/* Sends waiting submissions as batches while fewer than INFLIGHT_MAX are being stored. */
static void flush(struct rb_intake *in)
{
    while (in->head && in->inflight < INFLIGHT_MAX) {
        struct sub *head = in->head, **cut = &in->head;
        int n = 0;
        while (*cut && n < BATCH_MAX) {
            cut = &(*cut)->next;
            n++;
        }
        in->head = *cut;
        *cut = NULL;
        if (!in->head)
            in->tail = &in->head;
        in->waiting -= (size_t)n;
        send_batch(in, head, n);
    }
}

void rb_intake_free(struct rb_intake *in)
{
    if (!in)
        return;
    struct sub *s = in->head, *next;
    for (; s; s = next) {
        next = s->next;
        answer(s, NULL, 503, "shutting down");
    }
    event_free(in->flush_ev);
    for (size_t i = 0; i < RB_INTAKE_COMBINATIONS; i++)
        free(in->store[i]);
    free(in);
}
