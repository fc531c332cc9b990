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
#include "lua/script.h"
#include "lua/templates.h"
#include "messages/message.h"
#include "sla/sla_engine.h"

#define BATCH_MAX 256       /* submissions per transaction */
#define INFLIGHT_MAX 2      /* transactions at once */
#define PENDING_MAX 20000   /* submissions waiting: beyond, RB_EAGAIN (503) */
#define STORE_COMBINATIONS 512 /* of the statement's parts (PART_*, below) */

struct sub {
    struct sub *next;
    char *kind, *service, *district, *text, *channel, *language, *phone, *email, *official;
    char *idem_scope, *idem_key, *idem_hash; /* owned; NULL when absent */
    char *route_json;                         /* owned; the routing decision for the event */
    double lat, lon;
    int anonymous, share_contact, rating;
    long long citizen_id; /* 0: find or add by phone/email */
    struct rb_route_out route;
    int64_t ack_due, resolve_due;  /* 0: no SLA */
    struct rb_sla_event first;     /* the case's first SLA event (valid when resolve_due) */
    char *sla_payload;             /* owned: its job payload, without the case id */
    char *photo_hex;               /* owned: "\\x..." bytea literal, or NULL */
    char *reply_body, *reply_template, *reply_channel, *reply_to; /* owned; NULL: no reply */
    char *notice_body;             /* owned: the "registered" notice by SMS, or NULL */
    int deliver;                   /* queue case.deliver: the department's plugin wants it */
    int unless_awaiting;           /* not stored while a case awaits this phone's answer */
    char *origin;                  /* owned: how it arrived (a JSON object), or NULL */
    const char *photo_type;        /* static string */
    char tracking[RB_TRACKING_LEN];
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
    char *store[STORE_COMBINATIONS]; /* owned; the statement of each combination of PART_*,
                                      * built when first used */
};

/* ---- the statement ---------------------------------------------------------------------- */

/* One statement stores a whole batch: citizens (found or added), cases, their first two events
 * and idempotency keys, replies, notices and jobs. Arrays in, (id, tracking_no) out. It is put
 * together from the parts below that the batch needs (store_parts): a part no submission of
 * the batch uses would still be planned, set up and run on every batch (a tenth of
 * PostgreSQL's time per case in small batches), e.g. the registered notice's join for SMS
 * complaints, which have their reply instead. Each combination is one prepared statement. */
enum {
    PART_CIT_PHONE = 1 << 0, /* a citizen found or added by phone */
    PART_CIT_EMAIL = 1 << 1, /* ... by email */
    PART_IDEM = 1 << 2,      /* an idempotency key */
    PART_ATT = 1 << 3,       /* a photo */
    PART_REPLY = 1 << 4,     /* the channel's reply and its job */
    PART_NOTICE = 1 << 5,    /* the registered notice and its job */
    PART_DELIVER = 1 << 6,   /* a case.deliver job */
    PART_SLA = 1 << 7,       /* an sla.check job */
    PART_AWAIT = 1 << 8,     /* a submission not stored while a case awaits its phone's answer */
};
_Static_assert(PART_AWAIT * 2 == STORE_COMBINATIONS, "one statement per combination of parts");

/* $42 (seconds until quiet hours end) is named in the input whether the notices use it or
 * not: a parameter no part names would have no type. */
static const char store_input[] =
    "WITH input AS ("
    "  SELECT t.*, $42::float8 AS notice_delay FROM unnest($1::text[], $2::text[],"
    "    $3::text[], $4::text[], $5::text[],"
    "    $6::text[], $7::text[], $8::text[], $9::int[], $10::text[], $11::text[], $12::text[],"
    "    $13::text[], $14::float8[], $15::float8[], $16::bool[], $17::bool[], $18::text[],"
    "    $19::int[], $20::jsonb[], $21::text[], $22::text[], $23::text[], $24::float8[],"
    "    $25::float8[], $26::text[], $27::int[], $28::float8[], $29::float8[], $30::text[],"
    "    $31::bytea[], $32::text[], $33::int8[], $34::text[], $35::text[], $36::text[],"
    "    $37::text[], $38::text[], $39::bool[], $40::bool[], $41::jsonb[])"
    "  AS t(tracking_no, kind, phone, email, channel, service_id, department_id, category,"
    "    priority, sla_policy, district_id, text, language, lat, long, anonymous, share_contact,"
    "    names_official, rating, route, idem_scope, idem_key, idem_hash, ack_due, resolve_due,"
    "    sla_check, sla_level, sla_due, sla_deadline, sla_payload, photo, photo_type,"
    "    citizen_id, reply_channel, reply_to, reply_body, reply_template, notice_body,"
    "    deliver, unless_awaiting, origin))";

/* The citizen of a phone: found, or else added. Found ones are only read (an upsert would
 * write a new version of every returning citizen's row); ON CONFLICT covers a citizen another
 * transaction added since this one's snapshot. */
static const char store_cit_phone[] =
    ", cit_old AS ("
    "  SELECT DISTINCT z.id, z.phone FROM input i JOIN citizens z ON z.phone = i.phone"
    "  WHERE i.citizen_id IS NULL),"
    " cit_new AS ("
    "  INSERT INTO citizens (phone, language)"
    "  SELECT DISTINCT ON (phone) phone, language FROM input i"
    "  WHERE phone IS NOT NULL AND citizen_id IS NULL"
    "    AND NOT EXISTS (SELECT 1 FROM cit_old o WHERE o.phone = i.phone) ORDER BY phone"
    "  ON CONFLICT (phone) DO UPDATE SET language = citizens.language"
    "  RETURNING id, phone),"
    " cit_phone AS (SELECT id, phone FROM cit_old UNION ALL SELECT id, phone FROM cit_new)";

static const char store_cit_email[] =
    ", cit_email AS ("
    "  INSERT INTO citizens (email, language)"
    "  SELECT DISTINCT ON (lower(email)) email, language FROM input"
    "  WHERE phone IS NULL AND email IS NOT NULL AND citizen_id IS NULL"
    "  ORDER BY lower(email)"
    "  ON CONFLICT ((lower(email))) WHERE email IS NOT NULL"
    "  DO UPDATE SET language = citizens.language"
    "  RETURNING id, lower(email) AS email)";

/* The cases: "%s" is the citizen (coalesce of the input's and the parts' ids), "%s%s" the
 * joins with the citizen parts present, "%s" the condition of PART_AWAIT or "". */
static const char store_cases_fmt[] =
    ", ins AS ("
    "  INSERT INTO cases (tracking_no, kind, status, citizen_id, channel, service_id,"
    "    department_id, category, priority, sla_policy, district_id, text, language, lat, long,"
    "    anonymous, share_contact, names_official, rating, ack_due_at, resolve_due_at)"
    "  SELECT i.tracking_no, i.kind, 'routed', %s, i.channel,"
    "    i.service_id,"
    "    i.department_id, i.category, i.priority, i.sla_policy, i.district_id, i.text,"
    "    i.language, i.lat, i.long, i.anonymous, i.share_contact, i.names_official, i.rating,"
    "    to_timestamp(i.ack_due), to_timestamp(i.resolve_due)"
    "  FROM input i%s%s%s"
    "  RETURNING id, tracking_no, citizen_id),"
    " ev AS ("
    "  INSERT INTO case_events (case_id, actor_type, actor_id, event, from_status, to_status,"
    "    data)"
    "  SELECT ins.id, 'system', x.actor, x.event, x.from_status, x.to_status, x.data"
    "  FROM ins JOIN input i USING (tracking_no) CROSS JOIN LATERAL (VALUES"
    "    ('intake', 'submitted', NULL, 'submitted', CASE WHEN i.origin IS NULL"
    "      THEN jsonb_build_object('channel', i.channel)"
    "      ELSE jsonb_build_object('channel', i.channel, 'origin', i.origin) END),"
    "    ('routing', 'routed', 'submitted', 'routed', i.route))"
    "    AS x(actor, event, from_status, to_status, data)"
    "  RETURNING id, case_id, event)";

static const char store_idem[] =
    ", idem AS ("
    "  INSERT INTO idempotency_keys (scope, key, request_hash, case_id)"
    "  SELECT i.idem_scope, i.idem_key, i.idem_hash, ins.id"
    "  FROM ins JOIN input i USING (tracking_no) WHERE i.idem_key IS NOT NULL)";

static const char store_att[] =
    ", att AS ("
    "  INSERT INTO case_attachments (case_id, content_type, bytes)"
    "  SELECT ins.id, i.photo_type, i.photo FROM ins JOIN input i USING (tracking_no)"
    "  WHERE i.photo IS NOT NULL)";

/* The channel's reply (the tracking number), committed with the case. */
static const char store_reply[] =
    ", rmsg AS ("
    "  INSERT INTO messages (case_id, citizen_id, channel, to_address, body, template,"
    "    language)"
    "  SELECT ins.id, ins.citizen_id, i.reply_channel, i.reply_to, i.reply_body,"
    "    i.reply_template, i.language FROM ins JOIN input i USING (tracking_no)"
    "  WHERE i.reply_body IS NOT NULL RETURNING id),"
    " rjob AS ("
    "  INSERT INTO jobs (kind, payload)"
    "  SELECT 'message.send', jsonb_build_object('message_id', id) FROM rmsg)";

/* The citizen's "registered" notice (cases not sent by SMS, whose reply says it): here, in the
 * batch, rather than a notice job per case (core/messages/notice.c sends the later ones). A citizen
 * added by this statement is not visible in citizens yet: their phone is the input's, and they
 * have not opted out. $42: seconds until quiet hours end. */
static const char store_notice[] =
    ", nmsg AS ("
    "  INSERT INTO messages (case_id, citizen_id, channel, to_address, body, template,"
    "    language, notice, urgent, event_id)"
    "  SELECT ins.id, ins.citizen_id, 'sms', coalesce(z.phone, i.phone), i.notice_body,"
    "    'notice.routed', CASE WHEN i.language = 'en' THEN 'en' ELSE 'ur' END, true, false,"
    "    ev.id"
    "  FROM ins JOIN input i USING (tracking_no)"
    "  JOIN ev ON ev.case_id = ins.id AND ev.event = 'routed'"
    "  LEFT JOIN citizens z ON z.id = ins.citizen_id"
    "  WHERE i.notice_body IS NOT NULL AND coalesce(z.phone, i.phone) IS NOT NULL"
    "    AND z.opted_out_at IS NULL"
    "  RETURNING id),"
    " njob AS ("
    "  INSERT INTO jobs (kind, payload, run_at)"
    "  SELECT 'message.send', jsonb_build_object('message_id', id),"
    "    now() + make_interval(secs => $42::float8) FROM nmsg)";

/* The case's delivery to its department's plugin, when that plugin wants new cases
 * (core/server/deliver.c; a transfer's delivery is queued by case_event_jobs). */
static const char store_deliver[] =
    ", djob AS ("
    "  INSERT INTO jobs (kind, payload)"
    "  SELECT 'case.deliver', jsonb_build_object('case_id', ins.id, 'event_id', ev.id,"
    "    'event', 'routed')"
    "  FROM ins JOIN input i USING (tracking_no)"
    "  JOIN ev ON ev.case_id = ins.id AND ev.event = 'routed' WHERE i.deliver)";

/* One pending SLA job per case: its first event (see sla_engine.c for the payload). */
static const char store_sla[] =
    ", sla AS ("
    "  INSERT INTO jobs (kind, payload, run_at, dedup_key)"
    "  SELECT 'sla.check', i.sla_payload::jsonb || jsonb_build_object('case_id', ins.id),"
    "    to_timestamp(i.sla_due),"
    "    'sla:' || ins.id || ':' || i.sla_check || ':' || i.sla_level || ':' || i.sla_due::bigint"
    "  FROM ins JOIN input i USING (tracking_no) WHERE i.sla_check IS NOT NULL)";

/* PART_AWAIT: a submission that asks so is not stored while a case of its phone's citizen
 * awaits their answer to a question sent by SMS to that phone since the case began waiting
 * (the SMS plugin's test, docs/sms.md "Answering a question"; index cases_awaiting). */
static const char store_await[] =
    " WHERE NOT (i.unless_awaiting AND EXISTS ("
    "  SELECT 1 FROM citizens ci JOIN cases c ON c.citizen_id = ci.id"
    "  WHERE ci.phone = i.phone AND c.status = 'awaiting_citizen'"
    "    AND EXISTS (SELECT 1 FROM messages q WHERE q.case_id = c.id AND q.channel = 'sms'"
    "                AND q.to_address = i.phone AND q.created_at >= c.paused_at)))";

/* The statement for a combination of parts (owned by the caller). */
static char *store_sql(unsigned parts)
{
    const char *citizen = (parts & PART_CIT_PHONE) && (parts & PART_CIT_EMAIL)
                              ? "coalesce(i.citizen_id, p.id, e.id)"
                          : (parts & PART_CIT_PHONE) ? "coalesce(i.citizen_id, p.id)"
                          : (parts & PART_CIT_EMAIL) ? "coalesce(i.citizen_id, e.id)"
                                                     : "i.citizen_id";
    char *cases = rb_sprintf(store_cases_fmt, citizen,
                             parts & PART_CIT_PHONE ? " LEFT JOIN cit_phone p ON p.phone = i.phone"
                                                    : "",
                             parts & PART_CIT_EMAIL
                                 ? " LEFT JOIN cit_email e ON e.email = lower(i.email)"
                                 : "",
                             parts & PART_AWAIT ? store_await : "");
    char *sql = rb_sprintf("%s%s%s%s%s%s%s%s%s%s SELECT id, tracking_no FROM ins", store_input,
                           parts & PART_CIT_PHONE ? store_cit_phone : "",
                           parts & PART_CIT_EMAIL ? store_cit_email : "", cases,
                           parts & PART_IDEM ? store_idem : "", parts & PART_ATT ? store_att : "",
                           parts & PART_REPLY ? store_reply : "",
                           parts & PART_NOTICE ? store_notice : "",
                           parts & PART_DELIVER ? store_deliver : "",
                           parts & PART_SLA ? store_sla : "");
    free(cases);
    return sql;
}

#define STORE_NPARAMS 42 /* 41 arrays, then the notices' delay */
#define STORE_NARRAYS 41

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
    char *owned[] = {s->kind, s->service, s->district, s->text, s->channel, s->language,
                     s->phone, s->email, s->official, s->idem_scope, s->idem_key,
                     s->idem_hash, s->route_json, s->sla_payload, s->photo_hex,
                     s->reply_body, s->reply_template, s->reply_channel, s->reply_to,
                     s->notice_body, s->origin};
    for (size_t i = 0; i < RB_ARRAY_LEN(owned); i++)
        free(owned[i]);
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

/* Checks c and builds a queued submission from it, or returns NULL with why set. */
static struct sub *validate(struct rb_intake *in, const struct rb_case_in *c, char *why,
                            size_t whylen)
{
    const struct rb_config *cfg = in->cfg;
    const char *what;
    char phone[RB_PHONE_MAX] = "";

    if (!c->kind || !one_of(c->kind, kinds)) {
        fail(why, whylen, "field \"kind\": expected complaint, feedback or information");
        return NULL;
    }
    if (!c->channel || !one_of(c->channel, channels)) {
        fail(why, whylen, "field \"channel\": expected app, sms, ivr, web or open311");
        return NULL;
    }
    if (c->language && !one_of(c->language, languages)) {
        fail(why, whylen, "field \"language\": expected ur or en");
        return NULL;
    }
    if (c->service && (short_field("service", c->service, 64, why, whylen) != RB_OK ||
                       (!rb_config_service(cfg, c->service) &&
                        fail(why, whylen, "field \"service\": no service \"%.64s\"",
                             c->service))))
        return NULL;
    if (c->district && (short_field("district", c->district, 64, why, whylen) != RB_OK ||
                        (!rb_config_district(cfg, c->district) &&
                         fail(why, whylen, "field \"district\": no district \"%.64s\"",
                              c->district))))
        return NULL;
    if (!c->text) {
        fail(why, whylen, "field \"text\" is required");
        return NULL;
    }
    if (memchr(c->text, '\0', c->text_len)) {
        fail(why, whylen, "field \"text\": contains a NUL character");
        return NULL;
    }
    if (c->phone && rb_phone_normalize(c->phone, phone, &what) != RB_OK) {
        fail(why, whylen, "field \"phone\": %s", what);
        return NULL;
    }
    if (c->email) {
        const char *at = strchr(c->email, '@');
        if (short_field("email", c->email, 254, why, whylen) != RB_OK)
            return NULL;
        if (!at || at == c->email || !at[1] || strchr(at + 1, '@') || strpbrk(c->email, " \t")) {
            fail(why, whylen, "field \"email\": not an email address");
            return NULL;
        }
    }
    if (!c->phone && !c->email && !c->anonymous) {
        fail(why, whylen, "a phone number or an email is needed to keep you informed (or "
                          "submit anonymously)");
        return NULL;
    }
    if (isnan(c->lat) != isnan(c->lon)) {
        fail(why, whylen, "fields \"lat\" and \"long\": give both or neither");
        return NULL;
    }
    if (!isnan(c->lat) && (!(c->lat >= -90 && c->lat <= 90) || !(c->lon >= -180 && c->lon <= 180))) {
        fail(why, whylen, "fields \"lat\" and \"long\": out of range");
        return NULL;
    }
    if (c->rating && (c->rating < 1 || c->rating > 5)) {
        fail(why, whylen, "field \"rating\": expected a whole number from 1 to 5");
        return NULL;
    }
    if (c->official && short_field("official", c->official, 200, why, whylen) != RB_OK)
        return NULL;
    if (c->idem_key && (!c->idem_scope || !c->idem_hash)) {
        fail(why, whylen, "an Idempotency-Key needs a scope and a request digest");
        return NULL;
    }
    if (c->idem_key && short_field("Idempotency-Key", c->idem_key, 200, why, whylen) != RB_OK)
        return NULL;
    const char *photo_type = NULL;
    if (c->photo) {
        static const unsigned char jpeg[] = {0xff, 0xd8, 0xff};
        static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        const unsigned char *b = c->photo;
        if (c->photo_len > RB_INTAKE_PHOTO_MAX) {
            fail(why, whylen, "field \"photo\": %zu bytes is over the limit of %u bytes",
                 c->photo_len, RB_INTAKE_PHOTO_MAX);
            return NULL;
        }
        if (c->photo_len > sizeof(png) && memcmp(b, png, sizeof(png)) == 0)
            photo_type = "image/png";
        else if (c->photo_len > sizeof(jpeg) && memcmp(b, jpeg, sizeof(jpeg)) == 0)
            photo_type = "image/jpeg";
        else if (c->photo_len > 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WAVE", 4) == 0)
            photo_type = "audio/wav"; /* a recording from the phone (IVR) */
        if (!photo_type || (c->photo_type && strcmp(c->photo_type, photo_type) != 0)) {
            fail(why, whylen, "field \"photo\": expected a JPEG or PNG image or a WAV "
                              "recording (its content "
                              "does not match%s%s)", c->photo_type ? " " : "",
                 c->photo_type ? c->photo_type : "");
            return NULL;
        }
    }
    if (c->origin && origin_check(c->origin, why, whylen) != RB_OK)
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
    if (photo_type) {
        static const char digits[] = "0123456789abcdef";
        const unsigned char *b = c->photo;
        s->photo_hex = rb_malloc(2 + 2 * c->photo_len + 1);
        s->photo_hex[0] = '\\';
        s->photo_hex[1] = 'x';
        for (size_t i = 0; i < c->photo_len; i++) {
            s->photo_hex[2 + 2 * i] = digits[b[i] >> 4];
            s->photo_hex[3 + 2 * i] = digits[b[i] & 15];
        }
        s->photo_hex[2 + 2 * c->photo_len] = '\0';
        s->photo_type = photo_type;
    }
    s->kind = rb_strdup(c->kind);
    s->service = rb_strdup(c->service);
    s->district = rb_strdup(c->district);
    s->text = text;
    s->channel = rb_strdup(c->channel);
    s->language = rb_strdup(c->language ? c->language : "ur");
    s->phone = phone[0] ? rb_strdup(phone) : NULL;
    s->email = rb_strdup(c->email);
    s->official = rb_strdup(c->official);
    s->lat = c->lat;
    s->lon = c->lon;
    s->anonymous = c->anonymous;
    s->share_contact = c->share_contact;
    s->rating = c->rating;
    s->citizen_id = c->citizen_id > 0 ? c->citizen_id : 0;
    s->unless_awaiting = c->unless_awaiting && s->phone; /* the test is by phone */
    s->origin = rb_strdup(c->origin);
    if (c->idem_key) {
        s->idem_scope = rb_strdup(c->idem_scope);
        s->idem_key = rb_strdup(c->idem_key);
        s->idem_hash = rb_strdup(c->idem_hash);
    }
    return s;
}

/* /metrics help texts of intake's counters */
#define CASES_HELP "Cases stored."
#define BATCHES_HELP "Intake transactions."
#define ROUTING_FAILURES_HELP "Cases sent to triage because the routing rules failed."

/* ---- routing and queueing --------------------------------------------------------------- */

static void route(struct rb_intake *in, struct sub *s)
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
    route(in, s);
    rb_tracking_new(s->tracking);
    if (c->reply_template && c->reply_channel && c->reply_to) {
        json_t *p = json_pack("{s:s}", "tracking", s->tracking);
        char err[256];
        s->reply_body = rb_template_render(rb_script_templates(in->rules), c->reply_template, s->language, p, err,
                                           sizeof(err));
        json_decref(p);
        if (!s->reply_body)
            rb_warn("intake", "case %s: no reply: %s", s->tracking, err);
        else {
            s->reply_template = rb_strdup(c->reply_template);
            s->reply_channel = rb_strdup(c->reply_channel);
            s->reply_to = rb_strdup(c->reply_to);
        }
    }
    /* No channel reply carries the tracking number: a notice will, when there is someone to
     * text (a phone given, or a citizen whose phone the statement finds). */
    if (!s->reply_body && (s->phone || s->citizen_id > 0)) {
        const struct rb_department *d = rb_config_department(in->cfg, s->route.department);
        int en = strcmp(s->language, "en") == 0;
        const char *dname = d ? (en ? d->name.en : d->name.ur) : NULL;
        json_t *p = json_pack("{s:s, s:s}", "tracking", s->tracking, "department",
                              dname && *dname ? dname : s->route.department);
        char err[256];
        s->notice_body = rb_template_render(rb_script_templates(in->rules), "notice.routed", en ? "en" : "ur", p,
                                            err, sizeof(err));
        json_decref(p);
        if (!s->notice_body)
            rb_warn("intake", "case %s: no registered notice: %s", s->tracking, err);
    }
    s->deliver = !in->wants_delivery || in->wants_delivery(in->wants_arg, s->route.department);
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

static void receipt_of(const struct sub *s, long long id, struct rb_case_receipt *r)
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
    if (strcmp(PQgetvalue(res, 0, 0), s->idem_hash) != 0) {
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
    const char *params[2] = {s->idem_scope, s->idem_key};
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
        } else if (b->n == 1 && s->idem_key && sqlstate_is(err, "23505")) {
            replay(in, s);
        } else {
            for (; s; s = next) {
                next = s->next;
                answer(s, NULL, data_error ? 422 : 503, err);
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
            if (strcmp(PQgetvalue(res, i, 1), s->tracking) == 0) {
                id = atoll(PQgetvalue(res, i, 0));
                break;
            }
        struct rb_case_receipt r;
        receipt_of(s, id, &r);
        if (id < 0 && s->unless_awaiting)
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
    struct rb_sbuf a[STORE_NARRAYS];
    memset(a, 0, sizeof(a));
    unsigned parts = 0;
    for (int i = 0; i < STORE_NARRAYS; i++)
        rb_sbuf_puts(&a[i], "{");
    for (struct sub *s = head; s; s = s->next) {
        char prio[8], rating[8], lat[40], lon[40], ack[24], res[24], lvl[12], due[24], dl[24];
        static const char *const checks[] = {"ack", "warn", "resolve"};
        snprintf(ack, sizeof(ack), "%lld", (long long)s->ack_due);
        snprintf(res, sizeof(res), "%lld", (long long)s->resolve_due);
        snprintf(lvl, sizeof(lvl), "%d", s->first.level);
        snprintf(due, sizeof(due), "%lld", (long long)s->first.due);
        snprintf(dl, sizeof(dl), "%lld", (long long)s->first.deadline);
        int has_sla = s->resolve_due != 0;
        char cit[24];
        snprintf(cit, sizeof(cit), "%lld", s->citizen_id);
        snprintf(prio, sizeof(prio), "%d", s->route.priority);
        snprintf(rating, sizeof(rating), "%d", s->rating);
        snprintf(lat, sizeof(lat), "%.8f", s->lat);
        snprintf(lon, sizeof(lon), "%.8f", s->lon);
        const char *v[STORE_NARRAYS] = {
            s->tracking, s->kind, s->phone, s->email,
            s->channel, s->service, s->route.department, s->route.category, prio,
            s->route.sla_policy, s->district, s->text, s->language,
            isnan(s->lat) ? NULL : lat, isnan(s->lon) ? NULL : lon,
            s->anonymous ? "t" : "f", s->share_contact ? "t" : "f", s->official,
            s->rating ? rating : NULL, s->route_json, s->idem_scope, s->idem_key,
            s->idem_hash, has_sla ? ack : NULL, has_sla ? res : NULL,
            has_sla ? checks[s->first.check] : NULL, has_sla ? lvl : NULL,
            has_sla ? due : NULL, has_sla ? dl : NULL, has_sla ? s->sla_payload : NULL,
            s->photo_hex, s->photo_type, s->citizen_id > 0 ? cit : NULL,
            s->reply_channel, s->reply_to, s->reply_body, s->reply_template, s->notice_body,
            s->deliver ? "t" : "f", s->unless_awaiting ? "t" : "f", s->origin,
        };
        for (int i = 0; i < STORE_NARRAYS; i++)
            rb_sbuf_elem(&a[i], v[i]);
        if (s->citizen_id <= 0 && s->phone)
            parts |= PART_CIT_PHONE;
        else if (s->citizen_id <= 0 && s->email)
            parts |= PART_CIT_EMAIL;
        parts |= (s->idem_key ? PART_IDEM : 0) | (s->photo_hex ? PART_ATT : 0) |
                 (s->reply_body ? PART_REPLY : 0) | (s->notice_body ? PART_NOTICE : 0) |
                 (s->deliver ? PART_DELIVER : 0) | (has_sla ? PART_SLA : 0) |
                 (s->unless_awaiting ? PART_AWAIT : 0);
    }
    if (!in->store[parts])
        in->store[parts] = store_sql(parts);
    const char *params[STORE_NPARAMS];
    for (int i = 0; i < STORE_NARRAYS; i++) {
        rb_sbuf_puts(&a[i], "}");
        params[i] = a[i].p;
    }
    char quiet[32];
    snprintf(quiet, sizeof(quiet), "%.0f", in->quiet_wait ? in->quiet_wait(in->quiet_arg) : 0.0);
    params[STORE_NARRAYS] = quiet;
    struct batch *b = rb_malloc(sizeof(*b));
    b->in = in;
    b->head = head;
    b->n = n;
    const struct rb_db_stmt stmt = {in->store[parts], STORE_NPARAMS, params, 1};
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
    for (int i = 0; i < STORE_NARRAYS; i++)
        free(a[i].p);
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
    for (size_t i = 0; i < STORE_COMBINATIONS; i++)
        free(in->store[i]);
    free(in);
}
