/* The statement that stores a batch of new cases, built from RB_INTAKE_COLUMNS. See
 * intake_store.h. */
#include "intake/intake_store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

/* ---- the columns ------------------------------------------------------------------------ */

enum { TO_INPUT = 0, TO_CASE = 1 };

static const struct column {
    const char *name, *type;
    int to_case;
} columns[RB_INTAKE_NCOLUMNS] = {
#define COLUMN_DESC(name, type, c, to, value, present) {#name, #type, TO_##to},
    RB_INTAKE_COLUMNS(COLUMN_DESC)
#undef COLUMN_DESC
};

void rb_intake_row_free(struct rb_intake_row *r)
{
    char *owned[] = {r->kind, r->service, r->district, r->text, r->channel, r->language,
                     r->phone, r->email, r->official, r->idem_scope, r->idem_key,
                     r->idem_hash, r->route_json, r->sla_payload, r->photo_hex,
                     r->notice_body, r->origin, r->reply_body, r->reply_template,
                     r->reply_channel, r->reply_to, r->hold_channel};
    for (size_t i = 0; i < RB_ARRAY_LEN(owned); i++)
        free(owned[i]);
}

const char *rb_intake_sla_check(const struct rb_intake_row *r)
{
    static const char *const checks[] = {"ack", "warn", "resolve"};
    return (unsigned)r->first.check < RB_ARRAY_LEN(checks) ? checks[r->first.check] : NULL;
}

unsigned rb_intake_row_parts(const struct rb_intake_row *r)
{
    unsigned parts = 0;
    if (r->citizen_id <= 0 && r->phone)
        parts |= RB_INTAKE_PART_CIT_PHONE;
    else if (r->citizen_id <= 0 && r->email)
        parts |= RB_INTAKE_PART_CIT_EMAIL;
    return parts | (r->idem_key ? RB_INTAKE_PART_IDEM : 0) |
           (r->photo_hex ? RB_INTAKE_PART_ATT : 0) |
           (r->reply_body ? RB_INTAKE_PART_REPLY : 0) |
           (r->notice_body ? RB_INTAKE_PART_NOTICE : 0) |
           (r->deliver ? RB_INTAKE_PART_DELIVER : 0) |
           (RB_INTAKE_HAS_SLA(r) ? RB_INTAKE_PART_SLA : 0) |
           (r->hold_channel ? RB_INTAKE_PART_HOLD : 0);
}

/* ---- the arrays ------------------------------------------------------------------------- */

static void put_TEXT(struct rb_sbuf *b, const char *v)
{
    rb_sbuf_elem(b, v);
}

static void put_INT(struct rb_sbuf *b, long long v)
{
    char s[24];
    snprintf(s, sizeof(s), "%lld", v);
    rb_sbuf_elem(b, s);
}

static void put_FLOAT(struct rb_sbuf *b, double v)
{
    char s[40];
    snprintf(s, sizeof(s), "%.8f", v);
    rb_sbuf_elem(b, s);
}

static void put_BOOL(struct rb_sbuf *b, int v)
{
    rb_sbuf_elem(b, v ? "t" : "f");
}

void rb_intake_arrays_init(struct rb_intake_arrays *b)
{
    memset(b, 0, sizeof(*b));
    for (int i = 0; i < RB_INTAKE_NCOLUMNS; i++)
        rb_sbuf_puts(&b->a[i], "{");
}

void rb_intake_arrays_add(struct rb_intake_arrays *b, const struct rb_intake_row *r)
{
#define COLUMN_PUT(name, type, c, to, value, present)                                         \
    if (present)                                                                              \
        put_##c(&b->a[RB_INTAKE_COL_##name], (value));                                        \
    else                                                                                      \
        rb_sbuf_elem(&b->a[RB_INTAKE_COL_##name], NULL);
    RB_INTAKE_COLUMNS(COLUMN_PUT)
#undef COLUMN_PUT
}

void rb_intake_arrays_params(struct rb_intake_arrays *b, double delay,
                             const char *params[RB_INTAKE_NPARAMS])
{
    snprintf(b->delay, sizeof(b->delay), "%.0f", delay);
    params[0] = b->delay;
    for (int i = 0; i < RB_INTAKE_NCOLUMNS; i++) {
        rb_sbuf_puts(&b->a[i], "}");
        params[1 + i] = b->a[i].p;
    }
}

void rb_intake_arrays_free(struct rb_intake_arrays *b)
{
    for (int i = 0; i < RB_INTAKE_NCOLUMNS; i++)
        free(b->a[i].p);
}

/* ---- the statement ---------------------------------------------------------------------- */

/* One statement stores a whole batch: citizens (found or added), cases, their first two events
 * and idempotency keys, replies, notices and jobs. Arrays in, (id, tracking_no) out. It is put
 * together from the parts below that the batch needs (rb_intake_row_parts): a part no row of
 * the batch uses would still be planned, set up and run on every batch (a tenth of
 * PostgreSQL's time per case in small batches), e.g. the registered notice's join for SMS
 * complaints, which have their reply instead. */

/* The input: "%s" the arrays (unnest's arguments), "%s" their column names. $1 (seconds until
 * quiet hours end) is named here whether the notices use it or not: a parameter no part names
 * would have no type. */
static const char store_input_fmt[] =
    "WITH input AS ("
    "  SELECT t.*, $1::float8 AS notice_delay FROM unnest(%s) AS t(%s))";

/* The citizen of a phone: found, or else added. Found ones are only read (an upsert would
 * write a new version of every returning citizen's row); ON CONFLICT covers a citizen another
 * transaction added since this one's snapshot. A contact the channel could not verify
 * (i.unverified) never reaches a verified citizen's account: the case is joined to none (the
 * channel keeps the contact on the case). */
static const char store_cit_phone[] =
    ", cit_old AS ("
    "  SELECT DISTINCT z.id, z.phone, z.verified_at IS NOT NULL AS verified"
    "  FROM input i JOIN citizens z ON z.phone = i.phone WHERE i.citizen_id IS NULL),"
    " cit_new AS ("
    "  INSERT INTO citizens (phone, language)"
    "  SELECT DISTINCT ON (phone) phone, language FROM input i"
    "  WHERE phone IS NOT NULL AND citizen_id IS NULL"
    "    AND NOT EXISTS (SELECT 1 FROM cit_old o WHERE o.phone = i.phone) ORDER BY phone"
    "  ON CONFLICT (phone) DO UPDATE SET language = citizens.language"
    "  RETURNING id, phone, verified_at IS NOT NULL AS verified),"
    " cit_phone AS (SELECT id, phone, verified FROM cit_old"
    "  UNION ALL SELECT id, phone, verified FROM cit_new)";

static const char store_cit_email[] =
    ", cit_email AS ("
    "  INSERT INTO citizens (email, language)"
    "  SELECT DISTINCT ON (lower(email)) email, language FROM input i"
    "  WHERE phone IS NULL AND email IS NOT NULL AND citizen_id IS NULL"
    "    AND NOT (unverified AND EXISTS (SELECT 1 FROM citizens v"
    "      WHERE lower(v.email) = lower(i.email) AND v.verified_at IS NOT NULL))"
    "  ORDER BY lower(email)"
    "  ON CONFLICT ((lower(email))) WHERE email IS NOT NULL"
    "  DO UPDATE SET language = citizens.language"
    "  RETURNING id, lower(email) AS email, verified_at IS NOT NULL AS verified)";

/* The cases: "%s" the CASE columns, "%s" the citizen (coalesce of the input's and the parts'
 * ids), "%s" the CASE columns' values, "%s%s" the joins with the citizen parts present, "%s"
 * the condition of PART_HOLD or "". */
static const char store_cases_fmt[] =
    ", ins AS ("
    "  INSERT INTO cases (status, citizen_id, ack_due_at, resolve_due_at%s)"
    "  SELECT 'routed', %s, to_timestamp(i.ack_due), to_timestamp(i.resolve_due)%s"
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

/* The messages go through core's one function (rabta_message_queue, migration 0029), in a
 * CTE of one row that the statement's answer joins (a CTE nobody reads is not run). */
#define STORE_QUEUE(NAME, ROWS)                                                               \
    ", " NAME "_r AS (" ROWS "),"                                                             \
    " " NAME " AS MATERIALIZED (SELECT count(*) FROM rabta_message_queue("                    \
    "  (SELECT array_agg(channel) FROM " NAME "_r), (SELECT array_agg(to_address) FROM "      \
    NAME "_r), (SELECT array_agg(body) FROM " NAME "_r),"                                     \
    "  case_id => (SELECT array_agg(case_id) FROM " NAME "_r),"                              \
    "  citizen_id => (SELECT array_agg(citizen_id) FROM " NAME "_r),"                        \
    "  template => (SELECT array_agg(template) FROM " NAME "_r),"                            \
    "  language => (SELECT array_agg(language) FROM " NAME "_r),"                            \
    "  notice => (SELECT array_agg(notice) FROM " NAME "_r),"                                \
    "  urgent => (SELECT array_agg(urgent) FROM " NAME "_r),"                                \
    "  event_id => (SELECT array_agg(event_id) FROM " NAME "_r), delay => $1::float8))"

/* The channel's reply (extra REPLY: the tracking number), committed with the case. */
static const char store_reply[] = STORE_QUEUE(
    "rmsg",
    "  SELECT ins.id AS case_id, ins.citizen_id, i.reply_channel AS channel,"
    "    i.reply_to AS to_address, i.reply_body AS body, i.reply_template AS template,"
    "    i.language, false AS notice, true AS urgent, NULL::bigint AS event_id"
    "  FROM ins JOIN input i USING (tracking_no) WHERE i.reply_body IS NOT NULL");

/* The citizen's "registered" notice (cases with no reply, which would say it): here, in the
 * batch, rather than a notice job per case (core/messages/notice.c sends the later ones): by
 * SMS to a phone, else by e-mail. A citizen added by this statement is not visible in citizens
 * yet: their phone is the input's, and they have not opted out. $1: seconds until quiet hours
 * end. */
static const char store_notice[] = STORE_QUEUE(
    "nmsg",
    "  SELECT ins.id AS case_id, ins.citizen_id,"
    "    CASE WHEN coalesce(z.phone, i.phone) IS NOT NULL THEN 'sms' ELSE 'email' END"
    "      AS channel, coalesce(z.phone, i.phone, z.email, i.email) AS to_address,"
    "    i.notice_body AS body, 'notice.routed' AS template,"
    "    CASE WHEN i.language = 'en' THEN 'en' ELSE 'ur' END AS language, true AS notice,"
    "    false AS urgent, ev.id AS event_id"
    "  FROM ins JOIN input i USING (tracking_no)"
    "  JOIN ev ON ev.case_id = ins.id AND ev.event = 'routed'"
    "  LEFT JOIN citizens z ON z.id = ins.citizen_id"
    "  WHERE i.notice_body IS NOT NULL"
    "    AND coalesce(z.phone, i.phone, z.email, i.email) IS NOT NULL"
    "    AND z.opted_out_at IS NULL");

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

/* PART_HOLD (extra HOLD): a submission that asks so is not stored while a case of its phone's
 * citizen awaits their answer to a question sent on hold_channel (SQL rabta_awaiting,
 * migration 0055: the SMS plugin's look-up is the same function; docs/sms.md "Answering a
 * question"). */
static const char store_hold[] =
    " WHERE NOT (i.hold_channel IS NOT NULL AND EXISTS ("
    "  SELECT 1 FROM rabta_awaiting(i.phone, i.hold_channel)))";

/* The lists made from the columns: unnest's arrays, their names, and the CASE columns' names
 * and values (each after a ", "). Strings owned by the caller. */
struct column_lists {
    struct rb_sbuf arrays, names, case_names, case_values;
};

static void column_lists(struct column_lists *l)
{
    memset(l, 0, sizeof(*l));
    for (int i = 0; i < RB_INTAKE_NCOLUMNS; i++) {
        char *a = rb_sprintf("%s$%d::%s[]", i ? ", " : "", 2 + i, columns[i].type);
        rb_sbuf_puts(&l->arrays, a);
        free(a);
        rb_sbuf_puts(&l->names, i ? ", " : "");
        rb_sbuf_puts(&l->names, columns[i].name);
        if (columns[i].to_case) {
            rb_sbuf_puts(&l->case_names, ", ");
            rb_sbuf_puts(&l->case_names, columns[i].name);
            rb_sbuf_puts(&l->case_values, ", i.");
            rb_sbuf_puts(&l->case_values, columns[i].name);
        }
    }
}

char *rb_intake_store_sql(unsigned parts)
{
    const char *citizen = (parts & RB_INTAKE_PART_CIT_PHONE) && (parts & RB_INTAKE_PART_CIT_EMAIL)
                              ? "coalesce(i.citizen_id, p.id, e.id)"
                          : (parts & RB_INTAKE_PART_CIT_PHONE) ? "coalesce(i.citizen_id, p.id)"
                          : (parts & RB_INTAKE_PART_CIT_EMAIL) ? "coalesce(i.citizen_id, e.id)"
                                                               : "i.citizen_id";
    struct column_lists l;
    column_lists(&l);
    char *input = rb_sprintf(store_input_fmt, l.arrays.p, l.names.p);
    char *cases = rb_sprintf(
        store_cases_fmt, l.case_names.p, citizen, l.case_values.p,
        parts & RB_INTAKE_PART_CIT_PHONE ? " LEFT JOIN cit_phone p ON p.phone = i.phone"
                                           " AND NOT (i.unverified AND p.verified)"
                                         : "",
        parts & RB_INTAKE_PART_CIT_EMAIL ? " LEFT JOIN cit_email e ON e.email = lower(i.email)"
                                           " AND NOT (i.unverified AND e.verified)"
                                         : "",
        parts & RB_INTAKE_PART_HOLD ? store_hold : "");
    char *sql = rb_sprintf("%s%s%s%s%s%s%s%s%s%s SELECT id, tracking_no FROM ins%s%s", input,
                           parts & RB_INTAKE_PART_CIT_PHONE ? store_cit_phone : "",
                           parts & RB_INTAKE_PART_CIT_EMAIL ? store_cit_email : "", cases,
                           parts & RB_INTAKE_PART_IDEM ? store_idem : "",
                           parts & RB_INTAKE_PART_ATT ? store_att : "",
                           parts & RB_INTAKE_PART_REPLY ? store_reply : "",
                           parts & RB_INTAKE_PART_NOTICE ? store_notice : "",
                           parts & RB_INTAKE_PART_DELIVER ? store_deliver : "",
                           parts & RB_INTAKE_PART_SLA ? store_sla : "",
                           parts & RB_INTAKE_PART_REPLY ? ", rmsg" : "",
                           parts & RB_INTAKE_PART_NOTICE ? ", nmsg" : "");
    free(input);
    free(cases);
    free(l.arrays.p);
    free(l.names.p);
    free(l.case_names.p);
    free(l.case_values.p);
    return sql;
}
