/* POST /api/v1/transactions (feedback_api.h): an office's batch of up to 1,000 transactions.
 *
 *   {"transactions": [{"reference": "DL-0001", "office": "lhr-dlc",
 *     "service": "driving_licence_issue", "official": "off-1", "citizen_name": "...",
 *     "phone": "03001234567", "completed_at": "2026-03-01 10:00", "language": "ur"}, ...]}
 *
 * Answers 200 with a result per transaction, in order: added, duplicate (the office sent
 * this reference before: the same transaction) or refused with the reason. The good ones are
 * kept whatever the others are. An invalid phone is stored and counted, not refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/common.h"
#include "base/log.h"
#include "base/phone.h"
#include "base/process.h"
#include "db/db.h"
#include "feedback/feedback_api.h"
#include "feedback/feedback_int.h"
#include "net/http.h"
#include "outreach/outreach_policy.h"
#include "staff/staff_account.h"
#include "staff/staff_api.h"

enum { A_LINE, A_REF, A_OFFICE, A_SERVICE, A_OFFICIAL, A_NAME, A_PHONE, A_BAD, A_WHEN, A_LANG,
       A_COUNT };

struct txreq {
    struct rb_server *srv; /* borrowed */
    struct rb_http_req *req;
    char office[65]; /* "" : any office (an administrator) */
    json_t *results; /* owned: one per transaction, by index */
    long invalid_phones;
};

static void txreq_free(struct txreq *t)
{
    json_decref(t->results);
    free(t);
}

static void refuse(struct txreq *t, size_t i, const char *fmt, const char *a, const char *b)
{
    char why[300];
    snprintf(why, sizeof(why), fmt, a ? a : "", b ? b : "");
    json_array_set_new(t->results, i, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)i,
                                                "outcome", "refused", "reason", why));
}

/* One transaction's fields into the arrays. 0, or -1 after refusing it. */
static int take_one(struct txreq *t, size_t i, json_t *x, struct rb_sbuf *a)
{
    static const struct {
        const char *name;
        size_t max;
        int required;
    } f[] = {{"reference", 64, 1}, {"office", 64, 1},  {"service", 64, 1},
             {"official", 64, 0},  {"citizen_name", 200, 0}, {"phone", 40, 0},
             {"completed_at", 40, 1}, {"language", 2, 0}};
    const char *v[RB_ARRAY_LEN(f)];
    if (!json_is_object(x)) {
        refuse(t, i, "a transaction is an object with reference, office, service, phone and "
                     "completed_at%s%s", NULL, NULL);
        return -1;
    }
    for (size_t k = 0; k < RB_ARRAY_LEN(f); k++) {
        json_t *j = json_object_get(x, f[k].name);
        if (j && !json_is_string(j) && !json_is_null(j)) {
            refuse(t, i, "%s must be a string%s", f[k].name, NULL);
            return -1;
        }
        v[k] = json_is_string(j) ? json_string_value(j) : "";
        const char *why = rb_outreach_check_text(v[k], f[k].max, f[k].required);
        if (why) {
            refuse(t, i, "%s %s", f[k].name, why);
            return -1;
        }
    }
    char when[40], e164[RB_PHONE_MAX] = "", line[24];
    if (rb_outreach_parse_time(v[6], when) != 0) {
        refuse(t, i, "completed_at \"%s\": expected YYYY-MM-DD HH:MM[:SS], optionally with Z "
                     "or +HH:MM%s", v[6], NULL);
        return -1;
    }
    if (v[7][0] && strcmp(v[7], "ur") != 0 && strcmp(v[7], "en") != 0) {
        refuse(t, i, "language \"%s\": ur or en%s", v[7], NULL);
        return -1;
    }
    if (t->office[0] && strcmp(v[1], t->office) != 0) {
        refuse(t, i, "office \"%s\": you submit for office \"%s\" only", v[1], t->office);
        return -1;
    }
    const char *why = NULL;
    int bad = rb_phone_normalize(v[5], e164, &why) != RB_OK;
    t->invalid_phones += bad;
    snprintf(line, sizeof(line), "%zu", i);
    const char *row[A_COUNT] = {line, v[0], v[1], v[2], v[3][0] ? v[3] : NULL,
                                v[4][0] ? v[4] : NULL, bad ? NULL : e164, bad ? "t" : "f", when,
                                v[7][0] ? v[7] : "ur"};
    for (int k = 0; k < A_COUNT; k++)
        rb_sbuf_elem(&a[k], row[k]);
    return 0;
}

static const char add_sql[] =
    "SELECT line, outcome, reason, id FROM rabta_transactions_add($1::int[], $2::text[],"
    " $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::boolean[],"
    " $9::timestamptz[], $10::text[], $11, $12::text[], $13::float8[], $14::float8[])";

static void reply(struct txreq *t)
{
    long n[3] = {0, 0, 0};
    static const char *const names[3] = {"added", "duplicate", "refused"};
    for (size_t i = 0; i < json_array_size(t->results); i++) {
        const char *o = json_string_value(json_object_get(json_array_get(t->results, i),
                                                          "outcome"));
        for (int k = 0; k < 3; k++)
            n[k] += o && strcmp(o, names[k]) == 0;
    }
    json_t *out = json_pack("{s:I, s:I, s:I, s:I, s:O}", "added", (json_int_t)n[0],
                            "duplicates", (json_int_t)n[1], "refused", (json_int_t)n[2],
                            "invalid_phones", (json_int_t)t->invalid_phones, "results",
                            t->results);
    rb_http_reply_json(t->req, 200, out);
}

static void added(PGresult *res, const char *err, void *arg)
{
    struct txreq *t = arg;
    if (err && rb_db_outcome_unknown(err)) {
        rb_warn(rb_http_req_id(t->req), "transactions: database: %s", err);
        rb_http_reply_error(t->req, 503, "outcome_unknown",
                            "the database stopped answering while it stored these; some may be "
                            "stored: send them again (an office's reference is one transaction, "
                            "so none is stored twice)");
        txreq_free(t);
        return;
    }
    if (err) {
        rb_http_reply_db_error(t->req, err, "the transactions were not stored");
        txreq_free(t);
        return;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        size_t i = (size_t)atol(PQgetvalue(res, r, 0));
        json_t *o = json_pack("{s:I, s:s}", "index", (json_int_t)i, "outcome",
                              PQgetvalue(res, r, 1));
        if (!PQgetisnull(res, r, 2))
            json_object_set_new(o, "reason", json_string(PQgetvalue(res, r, 2)));
        if (!PQgetisnull(res, r, 3))
            json_object_set_new(o, "id", json_integer(atoll(PQgetvalue(res, r, 3))));
        json_array_set_new(t->results, i, o);
    }
    reply(t);
    txreq_free(t);
}

/* The body, checked; the good transactions stored in one statement. */
static void submit(struct txreq *t)
{
    json_t *body = rb_http_req_json(t->req);
    json_t *list = json_object_get(body, "transactions");
    size_t n = json_array_size(list);
    if (!body) {
        txreq_free(t);
        return;
    }
    if (!json_is_array(list) || n == 0 || n > RB_FEEDBACK_BATCH_MAX) {
        rb_http_reply_error(t->req, 400, "invalid_field",
                            "transactions must be a list of 1 to %d transactions",
                            RB_FEEDBACK_BATCH_MAX);
        json_decref(body);
        txreq_free(t);
        return;
    }
    t->results = json_array();
    struct rb_sbuf a[A_COUNT];
    memset(a, 0, sizeof(a));
    for (int k = 0; k < A_COUNT; k++)
        rb_sbuf_puts(&a[k], "{");
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(t->results, json_null());
        good += take_one(t, i, json_array_get(list, i), a) == 0;
    }
    json_decref(body);
    const char *p[14];
    for (int k = 0; k < A_COUNT; k++) {
        rb_sbuf_puts(&a[k], "}");
        p[k] = a[k].p;
    }
    char *fb[3];
    rb_outreach_sql_arrays(t->srv->outreach, &fb[0], &fb[1], &fb[2]);
    p[A_COUNT] = t->office[0] ? t->office : NULL;
    p[11] = fb[0];
    p[12] = fb[1];
    p[13] = fb[2];
    int rc = good ? rb_db_query(t->srv->db, add_sql, 14, p, added, t) : RB_OK;
    for (int k = 0; k < A_COUNT; k++)
        free(a[k].p);
    for (int k = 0; k < 3; k++)
        free(fb[k]);
    if (!good) {
        reply(t);
        txreq_free(t);
    } else if (rc != RB_OK) {
        rb_http_reply_busy(t->req);
        txreq_free(t);
    }
}

static void staff_authed(struct rb_http_req *req, const struct rb_staff_user *u, void *arg)
{
    struct txreq *t = arg;
    if (!u) { /* answered */
        txreq_free(t);
    } else if (!u->office[0] && u->role != RB_STAFF_ADMIN) {
        rb_http_reply_error(req, 403, "forbidden", "transactions are submitted by an office's "
                                                   "staff or key, or by an administrator");
        txreq_free(t);
    } else {
        snprintf(t->office, sizeof(t->office), "%s", u->office);
        submit(t);
    }
}

static void key_found(PGresult *res, const char *err, void *arg)
{
    struct txreq *t = arg;
    if (err) {
        rb_http_reply_db_error(t->req, err, "the API key could not be checked");
    } else if (PQntuples(res) != 1) {
        rb_http_reply_error(t->req, 401, "unauthorized", "the API key is unknown or revoked");
    } else if (PQgetisnull(res, 0, 0)) {
        rb_http_reply_error(t->req, 403, "forbidden", "this API key is not an office's key "
                                                      "(rabtad offices key OFFICE)");
    } else {
        snprintf(t->office, sizeof(t->office), "%s", PQgetvalue(res, 0, 0));
        submit(t);
        return;
    }
    txreq_free(t);
}

static void on_transactions(struct rb_http_req *req, void *arg)
{
    struct txreq *t = rb_calloc(1, sizeof(*t));
    t->srv = arg;
    t->req = req;
    const char *key = rb_http_req_header(req, "X-Api-Key");
    if (!key) {
        rb_staff_api_authenticate(req, staff_authed, t);
        return;
    }
    const char *p[1] = {key};
    if (strlen(key) > 200 ||
        rb_db_query(t->srv->db,
                    "SELECT office_id FROM api_keys WHERE key_hash = sha256(convert_to($1, "
                    "'UTF8')) AND revoked_at IS NULL",
                    1, p, key_found, t) != RB_OK) {
        rb_http_reply_error(req, 401, "unauthorized", "the API key is unknown or revoked");
        txreq_free(t);
    }
}

int rb_feedback_tx_init(struct rb_server *srv)
{
    return rb_http_route(srv->http, RB_HTTP_POST, "/api/v1/transactions", on_transactions,
                         srv);
}
