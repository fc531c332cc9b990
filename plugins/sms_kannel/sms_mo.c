/* GET/POST /sms/kannel/mo: one SMS from a citizen, as Kannel's sms-service hands it over.
 *
 *   get-url  = "http://HOST/sms/kannel/mo?secret=S&from=%p&to=%P&text=%a&id=%I"
 *   post-url = "http://HOST/sms/kannel/mo?secret=S&id=%I"  (text in the body, the sender
 *              in X-Kannel-From)
 *
 * Kannel retries on connection refused and on 5xx with the same %I, so: 2xx only after
 * COMMIT, and %I de-duplicates. A complaint is stored by case_submit with the idempotency key
 * ("sms_kannel", %I) and its origin (%I, sender, short code; kept in the case's "submitted"
 * event), so a retry gets the first case back; that is the SMS stored. Free text from a phone
 * whose case awaits its answer to an officer's question is added to that case by
 * case_comment with the same key, so a retry adds nothing, and then recorded in sms_mo.
 * Anything else is recorded in sms_mo (kannel_id unique) by ONE statement that, only when
 * that row is new, adds the reply (rabta_message_queue: message + send
 * job) and, for STOP/START,
 * the citizen's opt-out. MOs ready together are recorded by one statement (group commit; see
 * struct queue). A retry of any kind thus yields one case and one reply. 4xx answers are for
 * input no retry can fix (Kannel logs them).
 *
 * One MO is a small state machine: its state is one enum (m->state), each state has one
 * function (enter[]) that does its work, and the callback of that work names the next state
 * with go(). Every MO ends in end() with Kannel's answer: 200 ok, 400 refused or 503 try
 * again (written once, in answers[]).
 *
 *   CLASSIFY ─┬─ past the flood limit ───────────────────────────────────────── RECORD
 *             └─ SURVEY ─┬─ (a survey awaited this phone's answer: taken) ─────── RECORD
 *                        └─ COMMAND ─┬─ free text ──── TEXT ─┬─ (stored) ──────── end
 *                                    │                       └─ (409/422) ─┐
 *                                    ├─ free text naming a case ─── LOOK_UP ─┬─ COMPLAINT ─ end
 *                                    │                                       ├─ ATTACH ─┬─ INDEX
 *                                    │                                       │          └─ RECORD
 *                                    │                                       └─ RECORD
 *                                    ├─ STATUS ─── STATUS_CASE ── RECORD ── end
 *                                    ├─ 1 / 2 ──── RATING ── RATE ── RECORD
 *                                    └─ HELP, STOP, START ── RECORD
 *   (STOP and START skip SURVEY.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "sms_kannel.h"

#define api rb_sms_api

static double api_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum mo_state {
    MO_CLASSIFY,    /* what the text is: a command, free text, past the flood limit */
    MO_SURVEY,      /* does a survey await this phone (batched)? then the host API takes it */
    MO_COMMAND,     /* the command's own handling */
    MO_TEXT,        /* free text naming no case: a complaint unless a case awaits the sender */
    MO_LOOK_UP,     /* free text: a retry? the sender's citizen, the case it answers (batched) */
    MO_COMPLAINT,   /* free text stored as a complaint after the look-up */
    MO_ATTACH,      /* free text added to the case awaiting it, as the citizen's answer */
    MO_STATUS,      /* STATUS: the sender's citizen */
    MO_STATUS_CASE, /* STATUS: the case's status, told only to the citizen who filed it */
    MO_RATING,      /* "1" / "2": the sender's case waiting for a rating */
    MO_RATE,        /* ... rated */
    MO_RECORD,      /* the sms_mo row and the reply (batched); Kannel's 200 after COMMIT */
    MO_INDEX,       /* an answer added to its case, 200 already sent: its sms_mo row */
};

/* What Kannel is told at the end. */
enum mo_answer { MO_OK, MO_REFUSED, MO_TRY_AGAIN };

static const struct {
    int status;
    const char *body;
} answers[] = {
    [MO_OK] = {200, "ok\n"},
    [MO_REFUSED] = {400, "refused\n"},
    [MO_TRY_AGAIN] = {503, "try again\n"},
};

struct mo {
    enum mo_state state;
    struct rb_plugin_ctx *ctx; /* borrowed */
    struct rb_http_req *req;   /* borrowed until answered; NULL after */
    char phone[24];            /* E.164 sender */
    char *to;                  /* owned; our short code as Kannel saw it, or NULL */
    char *kannel_id;           /* owned */
    char *text;                /* owned, NUL-terminated */
    size_t text_len;
    const char *lang;          /* static "ur"/"en" */
    enum rb_sms_cmd cmd;
    char arg[48];              /* STATUS: what followed the keyword; rating: "1" or "2" */
    char tracking[32];         /* canonical tracking number, when there is one */
    long long case_id;
    char *reply;               /* owned: the SMS we answer with; NULL: none */
    const char *template;      /* static */
    long long citizen_id;      /* the sender's citizen row, once looked up (0: none known) */
    char named[48];            /* free text: the tracking number it starts with, as typed */
    size_t answer_off;         /* ... and where the answer after it begins (0: no number) */
};

static void mo_free(struct mo *m)
{
    free(m->to);
    free(m->kannel_id);
    free(m->text);
    free(m->reply);
    free(m);
}

/* Answers Kannel now, once; the MO may go on (an answer's sms_mo row). */
static void answer(struct mo *m, enum mo_answer a)
{
    if (!m->req)
        return;
    api->reply(m->req, answers[a].status, "text/plain", answers[a].body,
               strlen(answers[a].body));
    m->req = NULL;
}

/* The end of an MO: Kannel's answer (unless given already), and the MO freed. */
static void end(struct mo *m, enum mo_answer a)
{
    answer(m, a);
    mo_free(m);
}

static void (*const enter[MO_INDEX + 1])(struct mo *m);

/* The one way an MO moves: into state s, whose function runs now. */
static void go(struct mo *m, enum mo_state s)
{
    m->state = s;
    enter[s](m);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        abort();
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* The reply: template name in the MO's language with params (a JSON object or NULL). A
 * template that does not render leaves no reply (logged); the MO is stored all the same. */
static void reply_with(struct mo *m, const char *name, const char *params)
{
    char why[256];
    m->template = name;
    m->reply = api->template_render(m->ctx, name, m->lang, params, why, sizeof(why));
    if (!m->reply)
        api->log(m->ctx, RB_LOG_ERROR, "SMS %s from %s: no reply: %s", m->kannel_id, m->phone,
                 why);
}

/* {"tracking": t} */
static void reply_tracking(struct mo *m, const char *name, const char *tracking)
{
    char params[96];
    snprintf(params, sizeof(params), "{\"tracking\":\"%.40s\"}", tracking);
    reply_with(m, name, params);
}

/* Recording, batched. The MOs that are ready while a recording statement is in flight wait
 * and go together in the next one (group commit: no timer, no added delay when idle), each
 * answered after that statement commits. One statement per batch: the MO rows (dedup on
 * kannel_id); only for the new ones, the opt-out changes, the replies and their jobs.
 *   $1 a JSON array of {i, kannel_id, phone, to_number, command, case_id, reply, lang,
 *      template, optout ('stop' | 'start' | null), text (null for an answer added to a case:
 *      the case holds it)}
 * Answers one row per input: i, 1 when the MO was new or 0 for a retry. Two STOP/START of
 * one phone in a batch: the later one wins. */
static const char record_sql[] =
    "WITH input AS ("
    "  SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(i int, kannel_id text, phone text,"
    "    to_number text, command text, case_id bigint, reply text, lang text, template text,"
    "    optout text, text text)),"
    " mo AS ("
    "  INSERT INTO sms_mo (kannel_id, phone, to_number, command, case_id, text)"
    "  SELECT kannel_id, phone, to_number, command, case_id, text FROM input ORDER BY i"
    "  ON CONFLICT (kannel_id) DO NOTHING RETURNING kannel_id),"
    " fresh AS ("
    "  SELECT DISTINCT ON (n.kannel_id) n.* FROM input n JOIN mo USING (kannel_id)"
    "  ORDER BY n.kannel_id, n.i),"
    " opt AS (SELECT * FROM fresh WHERE optout IS NOT NULL),"
    " cit AS MATERIALIZED (SELECT * FROM rabta_citizen_opt_out("
    "    (SELECT array_agg(phone ORDER BY i) FROM opt), (SELECT array_agg(lang ORDER BY i) FROM opt),"
    "    (SELECT array_agg(optout = 'stop' ORDER BY i) FROM opt))),"
    " r AS ("
    "  SELECT f.case_id, coalesce((SELECT id FROM cit WHERE cit.phone = f.phone),"
    "    (SELECT z.id FROM rabta_citizen_by_phone(f.phone) z)) AS citizen_id, f.phone,"
    "    f.reply, f.template, f.lang, f.i FROM fresh f WHERE f.reply IS NOT NULL),"
    " msg AS MATERIALIZED ("
    "  SELECT count(*) FROM rabta_message_queue("
    "    (SELECT array_agg('sms'::text ORDER BY i) FROM r), (SELECT array_agg(phone ORDER BY i) FROM r),"
    "    (SELECT array_agg(reply ORDER BY i) FROM r),"
    "    case_id => (SELECT array_agg(case_id ORDER BY i) FROM r),"
    "    citizen_id => (SELECT array_agg(citizen_id ORDER BY i) FROM r),"
    "    template => (SELECT array_agg(template ORDER BY i) FROM r),"
    "    language => (SELECT array_agg(lang ORDER BY i) FROM r)))"
    " SELECT i, (i IN (SELECT i FROM fresh))::int FROM input, msg,"
    "  (SELECT count(*) FROM cit) opted ORDER BY i"; /* read, so that cit runs */

#define BATCH_MAX 512     /* MOs in one statement */

/* A statement that serves many MOs at once: the MOs that are ready while one is in flight
 * wait and go together in the next one (no timer, no added delay when idle). Its one
 * parameter is a JSON array of row(m, i); it answers one row per MO, in order of i. */
struct queue {
    const char *sql;
    int inflight_max; /* statements in flight at once */
    json_t *(*row)(const struct mo *m, size_t i);
    /* Each MO of a batch: res and its row, or err (res NULL) when the statement failed. */
    void (*done)(struct mo *m, const struct rb_db_result *res, int row, const char *err);
    struct mo *waiting[BATCH_MAX * 4];
    size_t n;
    int in_flight;
};

struct batch {
    struct queue *q; /* borrowed */
    struct mo **v;   /* owned array; the MOs are owned until done */
    size_t n;
};

static void flush(struct queue *q, struct rb_plugin_ctx *ctx);

static void batch_done(const struct rb_db_result *res, const char *err, void *arg)
{
    struct batch *b = arg;
    struct queue *q = b->q;
    struct rb_plugin_ctx *ctx = b->v[0]->ctx;
    if (!err && api->db_ntuples(res) != (int)b->n)
        err = "short answer";
    for (size_t k = 0; k < b->n; k++)
        q->done(b->v[k], err ? NULL : res, (int)k, err);
    free(b->v);
    free(b);
    q->in_flight--;
    flush(q, ctx);
}

static void flush(struct queue *q, struct rb_plugin_ctx *ctx)
{
    while (q->n > 0 && q->in_flight < q->inflight_max) {
        struct batch *b = malloc(sizeof(*b));
        size_t n = q->n < BATCH_MAX ? q->n : BATCH_MAX;
        if (!b || !(b->v = malloc(n * sizeof(*b->v))))
            abort();
        b->q = q;
        b->n = n;
        memcpy(b->v, q->waiting, n * sizeof(*b->v));
        memmove(q->waiting, q->waiting + n, (q->n - n) * sizeof(*q->waiting));
        q->n -= n;
        json_t *arr = json_array();
        for (size_t k = 0; k < n; k++)
            json_array_append_new(arr, q->row(b->v[k], k));
        char *text = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        const char *params[1] = {text};
        q->in_flight++;
        int rc = text ? api->db_query_prepared(ctx, q->sql, 1, params, batch_done, b)
                      : RB_ERR;
        free(text);
        if (rc != RB_OK) {
            q->in_flight--;
            for (size_t k = 0; k < n; k++)
                q->done(b->v[k], NULL, 0, "database unavailable");
            free(b->v);
            free(b);
        }
    }
}

static void enqueue(struct queue *q, struct mo *m)
{
    if (q->n == sizeof(q->waiting) / sizeof(q->waiting[0])) {
        q->done(m, NULL, 0, "too many SMS waiting for the database");
        return;
    }
    q->waiting[q->n++] = m;
    flush(q, m->ctx);
}

/* ---- RECORD, INDEX --------------------------------------------------------------------- */

/* The sms_mo row (and reply) committed, or not. */
static void recorded(struct mo *m, const struct rb_db_result *res, int row, const char *err)
{
    const char *f = res ? api->db_value(res, row, 1) : NULL;
    int fresh = f && f[0] == '1';
    if (m->state == MO_INDEX) { /* its 200 went out with the answer */
        if (err)
            api->log(m->ctx, RB_LOG_WARN, "SMS %s from %s (case %s): its sms_mo row was not "
                     "written: %s", m->kannel_id, m->phone, m->tracking, err);
        end(m, MO_OK);
    } else if (err) {
        api->log(m->ctx, RB_LOG_WARN, "SMS %s from %s not recorded: %s", m->kannel_id,
                 m->phone, err);
        end(m, MO_TRY_AGAIN);
    } else {
        api->log(m->ctx, RB_LOG_INFO, "SMS %s from %s: %s%s%s%s", m->kannel_id, m->phone,
                 rb_sms_cmd_name(m->cmd), m->tracking[0] ? " " : "", m->tracking,
                 fresh ? "" : " (a retry; nothing new)");
        end(m, MO_OK);
    }
}

static json_t *mo_json(const struct mo *m, size_t i)
{
    json_t *o = json_object();
    json_object_set_new(o, "i", json_integer((json_int_t)i));
    json_object_set_new(o, "kannel_id", json_string(m->kannel_id));
    json_object_set_new(o, "phone", json_string(m->phone));
    json_object_set_new(o, "to_number", m->to ? json_string(m->to) : json_null());
    json_object_set_new(o, "command", json_string(rb_sms_cmd_name(m->cmd)));
    json_object_set_new(o, "case_id", m->case_id ? json_integer(m->case_id) : json_null());
    json_object_set_new(o, "reply", m->reply ? json_string(m->reply) : json_null());
    json_object_set_new(o, "lang", json_string(m->lang));
    json_object_set_new(o, "template", m->template ? json_string(m->template) : json_null());
    json_object_set_new(o, "optout", m->cmd == RB_SMS_STOP    ? json_string("stop")
                                     : m->cmd == RB_SMS_START ? json_string("start")
                                                              : json_null());
    /* The text, unless a case holds it (an answer added to its case). */
    int held = m->cmd == RB_SMS_REPLY && m->case_id;
    json_object_set_new(o, "text", held ? json_null()
                                       : json_stringn(m->text, m->text_len));
    return o;
}

static struct queue recording = {.sql = record_sql, .inflight_max = 2, .row = mo_json,
                                 .done = recorded};

static void record(struct mo *m)
{
    enqueue(&recording, m);
}

/* ---- TEXT, COMPLAINT ------------------------------------------------------------------- */

static void submitted(const struct rb_case_result *r, int status, const char *err, void *arg)
{
    struct mo *m = arg;
    if (!r && m->state == MO_TEXT && (status == 409 || status == 422)) {
        /* A case of theirs awaits their answer (409), or this %I was stored before as
         * something else (422: an answer's retry): the look-up decides. */
        go(m, MO_LOOK_UP);
        return;
    }
    if (!r) {
        api->log(m->ctx, RB_LOG_WARN, "SMS %s from %s: no case (%d %s)", m->kannel_id,
                 m->phone, status, err ? err : "");
        /* 4xx: the text itself was refused; a retry cannot help. Otherwise let Kannel retry. */
        end(m, status >= 400 && status < 500 ? MO_REFUSED : MO_TRY_AGAIN);
        return;
    }
    /* The case (its text, and in its "submitted" event the SMS's origin: %I, sender, short
     * code), its idempotency key (%I) and the reply with the tracking number were committed
     * together: the SMS is stored, and a retry is recognised by the key. No sms_mo row: that
     * table keeps the texts that did not become a case (view sms_received: all of them). */
    api->log(m->ctx, RB_LOG_INFO, "SMS %s from %s: complaint %s%s", m->kannel_id, m->phone,
             r->tracking_no, r->replayed ? " (a retry; nothing new)" : "");
    end(m, MO_OK);
}

/* The idempotency hash of the MO (hex, 65 bytes): the same %I with another sender or text is
 * refused (422). An answer added to a case hashes "reply" first, so the key's hash tells
 * which of the two the first try became. */
static void mo_hash(const struct mo *m, int reply, char hex[2 * crypto_hash_sha256_BYTES + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    if (reply)
        crypto_hash_sha256_update(&st, (const unsigned char *)"reply", sizeof("reply"));
    crypto_hash_sha256_update(&st, (const unsigned char *)m->phone, strlen(m->phone) + 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)m->text, m->text_len);
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, 2 * sizeof(h) + 1, h, sizeof(h));
}

/* The MO as a complaint; unless_awaiting: not stored (409) while a case of the sender awaits
 * their answer (intake checks that in the statement that stores it). */
static void submit(struct mo *m, int unless_awaiting)
{
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    mo_hash(m, 0, hex);
    json_t *o = json_pack("{s:s, s:s, s:s?}", "kannel_id", m->kannel_id, "from", m->phone,
                          "to", m->to);
    char *origin = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!origin) /* cannot happen: three valid UTF-8 strings (the id and to are checked) */
        abort();

    struct rb_case_submission sub = {
        .size = sizeof(sub), .kind = "complaint", .text = m->text, .text_len = m->text_len,
        .channel = "sms", .language = m->lang, .phone = m->phone,
        .lat = __builtin_nan(""), .lon = __builtin_nan(""),
        .idem_scope = "sms_kannel", .idem_key = m->kannel_id, .idem_hash = hex,
        .reply_template = "sms.received", .reply_channel = "sms", .reply_to = m->phone,
        .citizen_id = m->citizen_id, /* the sender's citizen when known: no look-up by phone */
        .unless_awaiting = unless_awaiting, .origin = origin,
    };
    char why[256] = "";
    int rc = api->case_submit(m->ctx, &sub, submitted, m, why, sizeof(why));
    free(origin);
    if (rc == RB_EINVAL) {
        api->log(m->ctx, RB_LOG_WARN, "SMS %s from %s refused: %s", m->kannel_id, m->phone,
                 why);
        end(m, MO_REFUSED);
    } else if (rc != RB_OK) {
        end(m, MO_TRY_AGAIN);
    }
}

/* Most free texts are new complaints: one that names no case is stored at once, and looked
 * up only when that is refused (a case awaits the sender's answer, or a retry). */
static void new_text(struct mo *m)
{
    submit(m, 1);
}

static void as_complaint(struct mo *m)
{
    submit(m, 0);
}

/* ---- LOOK_UP --------------------------------------------------------------------------- */

/* What a free text is depends on the sender's cases (docs/sms.md, "Answering a question"):
 * whether this MO was stored before (sms_mo, or the idempotency key its case or answer was
 * committed with, and that key's hash), the sender's citizen, and the case awaiting their
 * answer: the one named (named: canonical; '' for a mistyped number, which matches none) or
 * else the most recently asked (SQL function rabta_sms_awaiting, migration 0037: the same
 * test intake makes for unless_awaiting).
 * Looked up for all the free texts ready together by one statement (a queue, as recording).
 *   $1 a JSON array of {i, phone, kannel_id, named (or null)}
 * Answers per input: i, seen, the key's case, the key's hash, the citizen, the case the text
 * answers (NULL: none), whether any case of theirs awaits an answer. */
static const char free_sql[] =
    "SELECT n.i, (SELECT true FROM sms_mo s WHERE s.kannel_id = n.kannel_id LIMIT 1)"
    "  IS NOT NULL,"
    "  k.case_id, k.request_hash, ci.id,"
    "  CASE WHEN n.named IS NULL OR w.tracking_no = n.named THEN w.tracking_no END,"
    "  w.id IS NOT NULL"
    /* Per input row, index lookups (LATERAL ... LIMIT 1), never a hash of a whole table:
     * with statistics lagging behind fast-growing tables the planner chose to scan all of
     * sms_mo and idempotency_keys for every batch (12 ms for two texts at 4,000 rows). */
    " FROM jsonb_to_recordset($1::jsonb) AS n(i int, phone text, kannel_id text, named text)"
    " LEFT JOIN LATERAL (SELECT k.case_id, k.request_hash"
    "   FROM rabta_idempotency_key('sms_kannel', n.kannel_id) k LIMIT 1) k ON true"
    " LEFT JOIN LATERAL (SELECT ci.id FROM rabta_citizen_by_phone(n.phone) ci LIMIT 1) ci"
    "   ON true"
    " LEFT JOIN LATERAL (SELECT a.id, a.tracking_no FROM rabta_sms_awaiting(n.phone) a"
    "  ORDER BY a.tracking_no = n.named DESC NULLS LAST, a.paused_at DESC, a.id DESC"
    "  LIMIT 1) w ON true"
    " ORDER BY n.i";

static void looked_up(struct mo *m, const struct rb_db_result *res, int row, const char *err)
{
    if (err) {
        api->log(m->ctx, RB_LOG_WARN, "SMS %s from %s not looked up: %s", m->kannel_id,
                 m->phone, err);
        end(m, MO_TRY_AGAIN);
        return;
    }
    const char *seen = api->db_value(res, row, 1), *key_case = api->db_value(res, row, 2);
    const char *key_hash = api->db_value(res, row, 3), *citizen = api->db_value(res, row, 4);
    const char *target = api->db_value(res, row, 5), *awaits = api->db_value(res, row, 6);
    if (seen && seen[0] == 't') {
        api->log(m->ctx, RB_LOG_INFO, "SMS %s from %s: a retry; nothing new", m->kannel_id,
                 m->phone);
        end(m, MO_OK);
        return;
    }
    if (key_case) { /* an earlier try was committed, its sms_mo row not (yet) */
        char hex[2 * crypto_hash_sha256_BYTES + 1];
        mo_hash(m, 1, hex);
        if (key_hash && strcmp(key_hash, hex) == 0) {
            m->cmd = RB_SMS_REPLY;
            m->case_id = atoll(key_case);
            go(m, MO_RECORD); /* no second confirmation: it was committed with the answer */
        } else {
            go(m, MO_COMPLAINT); /* the complaint's replay (or 400 for another text, same %I) */
        }
        return;
    }
    m->citizen_id = citizen ? atoll(citizen) : 0;
    if (citizen && target) {
        snprintf(m->tracking, sizeof(m->tracking), "%s", target);
        go(m, MO_ATTACH);
        return;
    }
    if (m->answer_off && awaits && awaits[0] == 't') {
        /* It names a case that is not one of theirs awaiting an answer (mistyped, someone
         * else's, or not waiting): the same answer whatever the reason, the text kept. */
        m->cmd = RB_SMS_REPLY;
        reply_tracking(m, "sms.reply_not_found", m->named);
        go(m, MO_RECORD);
        return;
    }
    go(m, MO_COMPLAINT);
}

static json_t *free_json(const struct mo *m, size_t i)
{
    char canon[32] = "";
    const char *why = NULL, *named = NULL;
    if (m->answer_off) /* a mistyped number names no case: '' matches none */
        named = api->tracking_parse(m->named, canon, sizeof(canon), &why) == RB_OK ? canon : "";
    return json_pack("{s:I, s:s, s:s, s:s?}", "i", (json_int_t)i, "phone", m->phone,
                     "kannel_id", m->kannel_id, "named", named);
}

static struct queue looking_up = {.sql = free_sql, .inflight_max = 4, .row = free_json,
                                  .done = looked_up};

static void look_up(struct mo *m)
{
    enqueue(&looking_up, m);
}

/* ---- ATTACH ---------------------------------------------------------------------------- */

static void attached(const struct rb_db_result *res, const char *err, void *arg)
{
    struct mo *m = arg;
    if (err) { /* nothing was committed: Kannel retries */
        api->log(m->ctx, RB_LOG_WARN, "SMS %s from %s: answer to %s not stored: %s",
                 m->kannel_id, m->phone, m->tracking, err);
        end(m, MO_TRY_AGAIN);
        return;
    }
    /* The confirmation, if any, was committed with the answer: never send it again. */
    free(m->reply);
    m->reply = NULL;
    if (api->db_ntuples(res) != 1) { /* cannot happen: the look-up saw the case was theirs */
        api->log(m->ctx, RB_LOG_ERROR, "SMS %s from %s: case %s is not this citizen's; the "
                 "text becomes a complaint", m->kannel_id, m->phone, m->tracking);
        m->cmd = RB_SMS_COMPLAINT;
        m->tracking[0] = '\0';
        m->template = NULL;
        go(m, MO_COMPLAINT);
        return;
    }
    const char *replayed = api->db_value(res, 0, 4);
    m->case_id = atoll(api->db_value(res, 0, 3));
    if (replayed && replayed[0] == 't') {
        /* Another try of this MO committed its answer first: index it, answer 200. */
        go(m, MO_RECORD);
        return;
    }
    /* The answer, its key (%I) and the confirmation are committed: Kannel can have its 200.
     * Its sms_mo row follows. */
    api->log(m->ctx, RB_LOG_INFO, "SMS %s from %s: reply %s (%s -> %s)", m->kannel_id,
             m->phone, m->tracking, api->db_value(res, 0, 0), api->db_value(res, 0, 1));
    answer(m, MO_OK);
    go(m, MO_INDEX);
}

/* Adds the text (after the number it named, if any) to case m->tracking as the answer of
 * citizen m->citizen_id, with the confirmation, in one statement (host API case_comment). */
static void attach(struct mo *m)
{
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    mo_hash(m, 1, hex);
    m->cmd = RB_SMS_REPLY;
    reply_tracking(m, "sms.replied", m->tracking); /* none if it does not render (logged) */
    const struct rb_case_comment c = {
        .size = sizeof(c), .tracking = m->tracking, .citizen_id = m->citizen_id,
        .text = m->text + m->answer_off, .channel = "sms",
        .idem_scope = "sms_kannel", .idem_key = m->kannel_id, .idem_hash = hex,
        .reply_body = m->reply, .reply_template = m->reply ? m->template : NULL,
        .reply_language = m->lang, .reply_channel = "sms", .reply_to = m->phone,
    };
    if (api->case_comment(m->ctx, &c, attached, m) != RB_OK)
        end(m, MO_TRY_AGAIN);
}

/* ---- STATUS, STATUS_CASE --------------------------------------------------------------- */

static void sender_found(const struct rb_db_result *res, const char *err, void *arg)
{
    struct mo *m = arg;
    if (err) {
        end(m, MO_TRY_AGAIN);
        return;
    }
    const char *id = api->db_ntuples(res) == 1 ? api->db_value(res, 0, 0) : NULL;
    m->citizen_id = id ? atoll(id) : 0;
    go(m, MO_STATUS_CASE);
}

/* The case the sender asks about: first their citizen id, to check the case is theirs. */
static void status(struct mo *m)
{
    const char *why = NULL;
    if (!m->arg[0] || api->tracking_parse(m->arg, m->tracking, sizeof(m->tracking), &why) !=
                          RB_OK) {
        snprintf(m->tracking, sizeof(m->tracking), "%.31s", m->arg[0] ? m->arg : "-");
        if (m->arg[0])
            reply_tracking(m, "sms.not_found", m->tracking);
        else
            reply_with(m, "sms.help", NULL);
        m->tracking[0] = '\0';
        go(m, MO_RECORD);
        return;
    }
    const char *params[1] = {m->phone};
    if (api->db_query_prepared(m->ctx, "SELECT id FROM rabta_citizen_by_phone($1)", 1, params,
                               sender_found, m) != RB_OK)
        end(m, MO_TRY_AGAIN);
}

static void status_found(const struct rb_case_status_info *st, const char *err, void *arg)
{
    struct mo *m = arg;
    if (!st && err) {
        end(m, MO_TRY_AGAIN);
        return;
    }
    /* Only the citizen who filed it learns anything; for everyone else it does not exist. */
    if (st && m->citizen_id > 0 && st->citizen_id == m->citizen_id) {
        char name[64], why[200];
        snprintf(name, sizeof(name), "status.%.40s", st->status);
        char *words = api->template_render(m->ctx, name, m->lang, NULL, why, sizeof(why));
        json_t *p = json_pack("{s:s, s:s}", "tracking", st->tracking_no, "status",
                              words ? words : st->status);
        char *params = json_dumps(p, 0);
        reply_with(m, "sms.status", params);
        free(params);
        json_decref(p);
        free(words);
    } else {
        reply_tracking(m, "sms.not_found", m->tracking);
    }
    go(m, MO_RECORD);
}

static void status_case(struct mo *m)
{
    if (api->case_status(m->ctx, m->tracking, status_found, m) != RB_OK)
        end(m, MO_TRY_AGAIN);
}

/* ---- RATING, RATE: "1" / "2", the answer to a resolve notice's request to rate --------- */

/* The sender's case waiting for a rating (resolved or answered, and its notice asked), the
 * newest first, and whether this MO was stored before (a retry: nothing more to do).
 * $1 phone  $2 kannel_id. */
static const char pending_sql[] =
    "SELECT EXISTS (SELECT 1 FROM sms_mo WHERE kannel_id = $2), p.id, p.tracking_no,"
    "  p.citizen_id, p.language"
    " FROM (SELECT 1) x LEFT JOIN LATERAL rabta_rating_pending($1) p ON true";

static void pending_found(const struct rb_db_result *res, const char *err, void *arg)
{
    struct mo *m = arg;
    if (err || api->db_ntuples(res) != 1) {
        end(m, MO_TRY_AGAIN);
        return;
    }
    const char *seen = api->db_value(res, 0, 0), *id = api->db_value(res, 0, 1);
    if (seen && seen[0] == 't') {
        api->log(m->ctx, RB_LOG_INFO, "SMS %s from %s: rating (a retry; nothing new)",
                 m->kannel_id, m->phone);
        end(m, MO_OK);
        return;
    }
    if (!id) { /* nothing to rate: say how the service works */
        reply_with(m, "sms.help", NULL);
        go(m, MO_RECORD);
        return;
    }
    m->case_id = atoll(id);
    snprintf(m->tracking, sizeof(m->tracking), "%s", api->db_value(res, 0, 2));
    m->citizen_id = atoll(api->db_value(res, 0, 3));
    const char *lang = api->db_value(res, 0, 4);
    m->lang = lang && strcmp(lang, "en") == 0 ? "en" : "ur";
    go(m, MO_RATE);
}

static void rating(struct mo *m)
{
    const char *params[2] = {m->phone, m->kannel_id};
    if (api->db_query_prepared(m->ctx, pending_sql, 2, params, pending_found, m) != RB_OK)
        end(m, MO_TRY_AGAIN);
}

static void rated(const struct rb_db_result *res, const char *err, void *arg)
{
    struct mo *m = arg;
    if (err) {
        end(m, MO_TRY_AGAIN);
        return;
    }
    const char *to = api->db_ntuples(res) == 1 ? api->db_value(res, 0, 2) : NULL;
    int late = !to && api->db_ntuples(res) == 1 && api->db_nfields(res) > 4 &&
               api->db_value(res, 0, 4); /* past the reopen window (case_rating.h) */
    if (late)
        reply_tracking(m, "sms.rating_closed", m->tracking);
    else if (!to)
        reply_with(m, "sms.help", NULL); /* no longer waiting for a rating */
    else
        reply_tracking(m, strcmp(to, "reopened") == 0 ? "sms.reopened" : "sms.rated",
                       m->tracking);
    go(m, MO_RECORD);
}

static void rate(struct mo *m)
{
    int satisfied = m->arg[0] == '1';
    /* The app's scale is 1-5: "1 satisfied" records 5, "2 unsatisfied" records 1. */
    if (api->case_rate(m->ctx, m->tracking, m->citizen_id, satisfied ? 5 : 1, satisfied, NULL,
                       rated, m) != RB_OK)
        end(m, MO_TRY_AGAIN);
}

/* ---- CLASSIFY -------------------------------------------------------------------------- */

static void classify(struct mo *m)
{
    m->cmd = rb_sms_command(m->text, m->text_len, m->arg, sizeof(m->arg), &m->lang);
    /* The flood limit: past it, texts are stored but make no case (STOP/START always work). */
    if (m->cmd != RB_SMS_STOP && m->cmd != RB_SMS_START) {
        enum rb_sms_flood f = rb_sms_flood_check(m->phone, api_now(), rb_sms_conf.flood_max,
                                                 rb_sms_conf.flood_window);
        if (f != RB_SMS_FLOOD_OK) {
            m->cmd = RB_SMS_FLOOD;
            if (f == RB_SMS_FLOOD_REPLY)
                reply_with(m, "sms.flood", NULL);
            go(m, MO_RECORD);
            return;
        }
    }
    go(m, m->cmd != RB_SMS_STOP && m->cmd != RB_SMS_START && RB_HOST_HAS(api, survey_answer)
              ? MO_SURVEY
              : MO_COMMAND);
}

/* The host's answer: taken, the survey stored the answer and queued its reply (the MO is
 * recorded as "survey"); else the text is handled as any other. */
static void survey_taken(int taken, const char *err, void *arg)
{
    struct mo *m = arg;
    if (err) {
        end(m, MO_TRY_AGAIN);
    } else if (taken) {
        m->cmd = RB_SMS_SURVEY;
        go(m, MO_RECORD);
    } else {
        go(m, MO_COMMAND);
    }
}

/* Proactive feedback (docs/feedback.md): a text from a phone that an outreach survey awaits
 * answers it (STOP and START excepted). Whether a survey awaits the phone (or took this very
 * SMS: a retry) is checked for all the MOs ready together by one statement (a queue, as
 * recording), through the published rabta_survey_awaiting; only those it finds go to the
 * host's survey_answer, one by one, which decides.
 *   $1 a JSON array of {i, phone, kannel_id}
 * Answers per input: i, whether a survey awaits (or took) it. */
static const char survey_sql[] =
    "SELECT n.i, s.id IS NOT NULL"
    " FROM jsonb_to_recordset($1::jsonb) AS n(i int, phone text, kannel_id text)"
    " LEFT JOIN LATERAL rabta_survey_awaiting(n.phone, n.kannel_id) s ON true"
    " ORDER BY n.i";

static void survey_checked(struct mo *m, const struct rb_db_result *res, int row,
                           const char *err)
{
    const char *awaits = res ? api->db_value(res, row, 1) : NULL;
    if (err) {
        api->log(m->ctx, RB_LOG_WARN, "SMS %s from %s: surveys not checked: %s", m->kannel_id,
                 m->phone, err);
        end(m, MO_TRY_AGAIN);
    } else if (!awaits || awaits[0] != 't') {
        go(m, MO_COMMAND);
    } else if (api->survey_answer(m->ctx, m->phone, m->text, m->text_len, m->kannel_id,
                                  survey_taken, m) != RB_OK) {
        end(m, MO_TRY_AGAIN);
    }
}

static json_t *survey_json(const struct mo *m, size_t i)
{
    return json_pack("{s:I, s:s, s:s}", "i", (json_int_t)i, "phone", m->phone, "kannel_id",
                     m->kannel_id);
}

static struct queue surveying = {.sql = survey_sql, .inflight_max = 4, .row = survey_json,
                                 .done = survey_checked};

static void survey(struct mo *m)
{
    enqueue(&surveying, m);
}

static void command(struct mo *m)
{
    switch (m->cmd) {
    case RB_SMS_COMPLAINT: /* one that starts with a tracking number is looked up first */
        m->answer_off = rb_sms_reply_prefix(m->text, m->text_len, m->named, sizeof(m->named));
        go(m, m->answer_off ? MO_LOOK_UP : MO_TEXT);
        return;
    case RB_SMS_STATUS:
        go(m, MO_STATUS);
        return;
    case RB_SMS_RATING:
        go(m, MO_RATING);
        return;
    case RB_SMS_HELP:
        reply_with(m, "sms.help", NULL);
        break;
    case RB_SMS_STOP:
        reply_with(m, "sms.stop", NULL);
        break;
    case RB_SMS_START:
        reply_with(m, "sms.start", NULL);
        break;
    case RB_SMS_FLOOD:
    case RB_SMS_REPLY:  /* decided later, never by the text alone */
    case RB_SMS_SURVEY: /* decided by survey_taken() */
        break;
    }
    go(m, MO_RECORD);
}

static void (*const enter[MO_INDEX + 1])(struct mo *m) = {
    [MO_CLASSIFY] = classify,       [MO_SURVEY] = survey,  [MO_COMMAND] = command,
    [MO_TEXT] = new_text,           [MO_LOOK_UP] = look_up,
    [MO_COMPLAINT] = as_complaint,  [MO_ATTACH] = attach,  [MO_STATUS] = status,
    [MO_STATUS_CASE] = status_case, [MO_RATING] = rating,  [MO_RATE] = rate,
    [MO_RECORD] = record,           [MO_INDEX] = record,
};

/* ---- the endpoint -------------------------------------------------------------------- */

static void bad(struct rb_plugin_ctx *ctx, struct rb_http_req *req, int code, const char *what,
                const char *from)
{
    api->log(ctx, RB_LOG_WARN, "SMS refused (%d): %s; from %s", code, what,
             from ? from : "(none)");
    api->reply(req, code, "text/plain", what, strlen(what));
}

void rb_sms_on_mo(struct rb_http_req *req, void *arg)
{
    struct rb_plugin_ctx *ctx = arg;
    if (!rb_sms_secret_ok(api->req_query(req, "secret"), rb_sms_conf.secret)) {
        api->reply(req, 403, "text/plain", "forbidden\n", 10);
        return;
    }
    int post = api->req_method(req) == RB_HTTP_POST;
    const char *from = api->req_query(req, "from");
    if (!from && post)
        from = api->req_header(req, "X-Kannel-From");
    const char *to = api->req_query(req, "to");
    if (!to && post)
        to = api->req_header(req, "X-Kannel-To");
    const char *id = api->req_query(req, "id");
    const char *text;
    size_t len;
    if (post) {
        text = api->req_body(req, &len);
    } else {
        text = api->req_query(req, "text");
        len = text ? strlen(text) : 0;
    }
    if (!id || !*id || strlen(id) > 100 || !rb_sms_field_valid(id, strlen(id)))
        return bad(ctx, req, 400, "missing or bad id (%I)\n", from);
    char phone[24];
    const char *why = NULL;
    if (!from || api->phone_normalize(from, phone, sizeof(phone), &why) != RB_OK)
        return bad(ctx, req, 400, "the sender is not a phone number\n", from);
    if (!text || len == 0)
        return bad(ctx, req, 400, "empty message\n", phone);
    if ((long long)len > rb_sms_conf.max_text)
        return bad(ctx, req, 400, "message too long\n", phone);
    if (!rb_sms_utf8_valid(text, len))
        return bad(ctx, req, 400, "message is not valid UTF-8\n", phone);

    struct mo *m = calloc(1, sizeof(*m));
    if (!m)
        abort();
    m->ctx = ctx;
    m->req = req;
    snprintf(m->phone, sizeof(m->phone), "%s", phone);
    /* Our short code as Kannel saw it (%P): only kept. One that is not a short line of text
     * is left out rather than refusing the citizen's SMS. */
    if (to && (strlen(to) > 32 || !rb_sms_field_valid(to, strlen(to)))) {
        api->log(ctx, RB_LOG_WARN, "SMS %.100s from %s: the receiving number (to) is not a "
                 "short line of text; not kept", id, phone);
        to = NULL;
    }
    m->to = to ? dup_n(to, strlen(to)) : NULL;
    m->kannel_id = dup_n(id, strlen(id));
    m->text = dup_n(text, len);
    m->text_len = len;
    go(m, MO_CLASSIFY);
}
