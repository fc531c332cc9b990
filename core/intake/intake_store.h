/* The statement that stores a batch of new cases, and the one definition of what it stores.
 *
 * A submission that intake has checked and routed is a struct rb_intake_row. Which of its
 * values the statement receives is said once, in RB_INTAKE_COLUMNS: one line per column, and
 * from that table come the arrays built for a batch (rb_intake_arrays_*), the statement's
 * parameters and its unnest(...) AS t(...) list, and the columns copied as they are into
 * `cases` (rb_intake_store_sql). To store a new field of a case: a migration, the field in
 * struct rb_case_in (validated in intake.c) and in struct rb_intake_row, and one line here.
 *
 * The statement is put together from the parts a batch needs (RB_INTAKE_PART_*): a part no row
 * of the batch uses would still be planned and run on every batch. Intake keeps one prepared
 * statement per combination. Used by intake.c only (and its unit test). */
#ifndef RB_INTAKE_STORE_H
#define RB_INTAKE_STORE_H

#include <stdint.h>

#include "base/tracking.h"
#include "db/db.h"
#include "lua/script.h"
#include "sla/sla_engine.h"

/* A submission as it is stored: validated, routed, numbered. Strings owned (NULL: absent),
 * freed by rb_intake_row_free. */
struct rb_intake_row {
    char *kind, *service, *district, *text, *channel, *language, *phone, *email, *official;
    char *idem_scope, *idem_key, *idem_hash; /* all three or none */
    char *route_json;                        /* the routing decision, for the "routed" event */
    double lat, lon;                         /* NAN when absent */
    int anonymous, share_contact, rating;
    long long citizen_id; /* 0: find or add by phone/email */
    struct rb_route_out route;
    int64_t ack_due, resolve_due; /* 0: no SLA */
    struct rb_sla_event first;    /* the case's first SLA event (valid when resolve_due) */
    char *sla_payload;            /* its job payload, without the case id */
    char *photo_hex;              /* "\\x..." bytea literal, or NULL */
    const char *photo_type;       /* static string */
    char *notice_body;            /* the "registered" notice by SMS, or NULL */
    int deliver;                  /* queue case.deliver: the department's plugin wants it */
    int contact_unverified;       /* phone/email as typed: never joined to a verified citizen */
    /* The channel's extras (struct rb_case_extra), stored with the case. */
    char *origin;                                      /* ORIGIN: a JSON object */
    char *reply_body, *reply_template, *reply_channel; /* REPLY: rendered, to reply_to */
    char *reply_to;
    char *hold_channel; /* HOLD: the channel of the question the phone's citizen may owe */
    char tracking[RB_TRACKING_LEN];
};

void rb_intake_row_free(struct rb_intake_row *r); /* the strings, not r */

#define RB_INTAKE_HAS_SLA(r) ((r)->resolve_due != 0)

/* The columns of the statement's input, in the order of its array parameters. Per column:
 *   name   as the statement reads it (i.name); a CASE column is also copied as it is into the
 *          column of that name of `cases`, an INPUT column only read by the parts;
 *   type   of the SQL array's elements;
 *   C      how the value is written: TEXT (a string, NULL is SQL NULL), INT (long long),
 *          FLOAT (double), BOOL (int);
 *   value  taken from the row r, only when present is true (otherwise SQL NULL). */
#define RB_INTAKE_COLUMNS(X)                                                                  \
    /* name          type    C      to     value                      present */              \
    X(tracking_no,   text,   TEXT,  CASE,  r->tracking,               1)                      \
    X(kind,          text,   TEXT,  CASE,  r->kind,                   1)                      \
    X(phone,         text,   TEXT,  INPUT, r->phone,                  1)                      \
    X(email,         text,   TEXT,  INPUT, r->email,                  1)                      \
    X(channel,       text,   TEXT,  CASE,  r->channel,                1)                      \
    X(service_id,    text,   TEXT,  CASE,  r->service,                1)                      \
    X(department_id, text,   TEXT,  CASE,  r->route.department,       1)                      \
    X(category,      text,   TEXT,  CASE,  r->route.category,         1)                      \
    X(priority,      int,    INT,   CASE,  r->route.priority,         1)                      \
    X(sla_policy,    text,   TEXT,  CASE,  r->route.sla_policy,       1)                      \
    X(district_id,   text,   TEXT,  CASE,  r->district,               1)                      \
    X(text,          text,   TEXT,  CASE,  r->text,                   1)                      \
    X(language,      text,   TEXT,  CASE,  r->language,               1)                      \
    X(lat,           float8, FLOAT, CASE,  r->lat,                    !isnan(r->lat))         \
    X(long,          float8, FLOAT, CASE,  r->lon,                    !isnan(r->lon))         \
    X(anonymous,     bool,   BOOL,  CASE,  r->anonymous,              1)                      \
    X(share_contact, bool,   BOOL,  CASE,  r->share_contact,          1)                      \
    X(names_official,text,   TEXT,  CASE,  r->official,               1)                      \
    X(rating,        int,    INT,   CASE,  r->rating,                 r->rating != 0)         \
    X(route,         jsonb,  TEXT,  INPUT, r->route_json,             1)                      \
    X(idem_scope,    text,   TEXT,  INPUT, r->idem_scope,             1)                      \
    X(idem_key,      text,   TEXT,  INPUT, r->idem_key,               1)                      \
    X(idem_hash,     text,   TEXT,  INPUT, r->idem_hash,              1)                      \
    X(ack_due,       float8, INT,   INPUT, r->ack_due,                RB_INTAKE_HAS_SLA(r))   \
    X(resolve_due,   float8, INT,   INPUT, r->resolve_due,            RB_INTAKE_HAS_SLA(r))   \
    X(sla_check,     text,   TEXT,  INPUT, rb_intake_sla_check(r),    RB_INTAKE_HAS_SLA(r))   \
    X(sla_level,     int,    INT,   INPUT, r->first.level,            RB_INTAKE_HAS_SLA(r))   \
    X(sla_due,       float8, INT,   INPUT, r->first.due,              RB_INTAKE_HAS_SLA(r))   \
    X(sla_payload,   text,   TEXT,  INPUT, r->sla_payload,            RB_INTAKE_HAS_SLA(r))   \
    X(photo,         bytea,  TEXT,  INPUT, r->photo_hex,              1)                      \
    X(photo_type,    text,   TEXT,  INPUT, r->photo_type,             1)                      \
    X(citizen_id,    int8,   INT,   INPUT, r->citizen_id,             r->citizen_id > 0)      \
    X(reply_channel, text,   TEXT,  INPUT, r->reply_channel,          1)                      \
    X(reply_to,      text,   TEXT,  INPUT, r->reply_to,               1)                      \
    X(reply_body,    text,   TEXT,  INPUT, r->reply_body,             1)                      \
    X(reply_template,text,   TEXT,  INPUT, r->reply_template,         1)                      \
    X(notice_body,   text,   TEXT,  INPUT, r->notice_body,            1)                      \
    X(deliver,       bool,   BOOL,  INPUT, r->deliver,                1)                      \
    X(unverified,    bool,   BOOL,  INPUT, r->contact_unverified,     1)                      \
    X(hold_channel,  text,   TEXT,  INPUT, r->hold_channel,           1)                      \
    X(origin,        jsonb,  TEXT,  INPUT, r->origin,                 1)

enum rb_intake_column {
#define RB_INTAKE_COLUMN_ENUM(name, type, c, to, value, present) RB_INTAKE_COL_##name,
    RB_INTAKE_COLUMNS(RB_INTAKE_COLUMN_ENUM)
#undef RB_INTAKE_COLUMN_ENUM
    RB_INTAKE_NCOLUMNS
};

/* Parameters: $1 the seconds until quiet hours end (the notices' delay), then one array per
 * column ($2 is the first column's). */
#define RB_INTAKE_NPARAMS (1 + RB_INTAKE_NCOLUMNS)

/* The parts of the statement; a batch needs the union of its rows' parts. */
enum {
    RB_INTAKE_PART_CIT_PHONE = 1 << 0, /* a citizen found or added by phone */
    RB_INTAKE_PART_CIT_EMAIL = 1 << 1, /* ... by email */
    RB_INTAKE_PART_IDEM = 1 << 2,      /* an idempotency key */
    RB_INTAKE_PART_ATT = 1 << 3,       /* a photo */
    RB_INTAKE_PART_REPLY = 1 << 4,     /* the channel's reply and its job (extra REPLY) */
    RB_INTAKE_PART_NOTICE = 1 << 5,    /* the registered notice and its job */
    RB_INTAKE_PART_DELIVER = 1 << 6,   /* a case.deliver job */
    RB_INTAKE_PART_SLA = 1 << 7,       /* an sla.check job */
    RB_INTAKE_PART_HOLD = 1 << 8,      /* not stored while a case awaits the phone's answer */
};
#define RB_INTAKE_COMBINATIONS (RB_INTAKE_PART_HOLD * 2)

/* The parts row r needs. */
unsigned rb_intake_row_parts(const struct rb_intake_row *r);
/* The statement for a combination of parts: returns a new string; caller frees. It returns
 * (id, tracking_no) of each case stored. */
char *rb_intake_store_sql(unsigned parts);
/* "ack", "warn" or "resolve": the kind of the row's first SLA event. */
const char *rb_intake_sla_check(const struct rb_intake_row *r);

/* The arrays of one batch: rb_intake_arrays_init, rb_intake_arrays_add for each row,
 * rb_intake_arrays_params, rb_intake_arrays_free. */
struct rb_intake_arrays {
    struct rb_sbuf a[RB_INTAKE_NCOLUMNS]; /* owned */
    char delay[32];
};
void rb_intake_arrays_init(struct rb_intake_arrays *b);
void rb_intake_arrays_add(struct rb_intake_arrays *b, const struct rb_intake_row *r);
/* Fills params[RB_INTAKE_NPARAMS] (borrowed from b: valid until rb_intake_arrays_free) with
 * delay (seconds until quiet hours end) and the arrays. */
void rb_intake_arrays_params(struct rb_intake_arrays *b, double delay,
                             const char *params[RB_INTAKE_NPARAMS]);
void rb_intake_arrays_free(struct rb_intake_arrays *b);

#endif
