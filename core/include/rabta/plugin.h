/*
 * Rabta plugin ABI, version 1.
 *
 * A plugin is a shared object that exports exactly one symbol, RB_PLUGIN_ENTRY_SYMBOL
 * ("rabta_plugin_entry"), a function returning a pointer to a constant descriptor. The core
 * checks the descriptor's magic, ABI number and struct size before it calls anything else,
 * and refuses the file with one sentence naming the file and both versions otherwise.
 *
 * The plugin never links against core symbols: everything it may do goes through the host
 * API table handed to init(). The table only grows at the end; a plugin that wants an entry
 * added after ABI 1 checks api->size first (RB_HOST_HAS(api, member)).
 *
 * Rules for this header (it is the contract with every plugin ever built):
 *  - append only: never reorder, resize or remove a member; bump RB_PLUGIN_ABI when that is
 *    unavoidable;
 *  - no #ifdef inside a struct that crosses the boundary;
 *  - every struct that crosses starts with its size;
 *  - core objects are opaque handles with accessors.
 */
#ifndef RABTA_PLUGIN_H
#define RABTA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RB_PLUGIN_MAGIC 0x52424142u /* "RBAB" */
#define RB_PLUGIN_ABI 1u
#define RB_PLUGIN_ENTRY_SYMBOL "rabta_plugin_entry"

#if defined(__GNUC__)
#define RB_PLUGIN_EXPORT __attribute__((visibility("default")))
#define RB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RB_PLUGIN_EXPORT
#define RB_PRINTF(f, a)
#endif

/* Return codes shared by core and plugins. */
#define RB_OK 0
#define RB_ERR (-1)      /* generic failure; a message was logged */
#define RB_EAGAIN (-2)   /* would block; try again later */
#define RB_EINVAL (-3)   /* bad argument or bad input */
#define RB_ENOTFOUND (-4)
#define RB_EEXIST (-5)
#define RB_EUNAVAIL (-6) /* a dependency (database, gateway) is unavailable */

enum rb_plugin_kind {
    RB_PLUGIN_CHANNEL = 1,    /* a door citizens come through: app, sms, ivr, web */
    RB_PLUGIN_DEPARTMENT = 2, /* how a department receives its cases: inbox, webhook */
};

enum rb_log_level {
    RB_LOG_DEBUG = 0,
    RB_LOG_INFO = 1,
    RB_LOG_WARN = 2,
    RB_LOG_ERROR = 3,
};

/* HTTP methods, usable as a bit mask when registering a route. */
enum rb_http_method {
    RB_HTTP_GET = 1 << 0,
    RB_HTTP_POST = 1 << 1,
    RB_HTTP_PUT = 1 << 2,
    RB_HTTP_DELETE = 1 << 3,
    RB_HTTP_PATCH = 1 << 4,
    RB_HTTP_HEAD = 1 << 5,
    RB_HTTP_OPTIONS = 1 << 6,
};

/* Opaque handles. */
struct event_base;    /* libevent's loop (event_base below) */
struct rb_plugin_ctx; /* one per loaded plugin; valid from init() until after stop() */
struct rb_http_req;   /* one HTTP request; valid until it is answered */
struct rb_db_result;  /* a query result; borrowed, valid until the callback returns */
struct rb_job_run;    /* one run of a job; valid until job_finish is called */

/* What a job handler is told about the job it runs. Borrowed: valid until job_finish. */
struct rb_job_info {
    size_t size; /* sizeof(struct rb_job_info) as the core was built */
    long long id;
    const char *kind;
    const char *payload;   /* JSON object text */
    const char *dedup_key; /* may be NULL */
    int attempt;           /* 1 for the first run */
    int max_attempts;
};

/* Declarative configuration: the plugin describes its config block, the core parses it and
 * reports every error as file:line:column with the key. */
enum rb_conf_type {
    RB_CONF_STRING = 1,   /* char * (owned by the struct; freed by conf_free) */
    RB_CONF_INT = 2,      /* long long */
    RB_CONF_BOOL = 3,     /* int (0 or 1): true/false/yes/no/on/off */
    RB_CONF_DURATION = 4, /* double seconds: "90s", "5m", "2h", "3d", "250ms" or a number */
    RB_CONF_SIZE = 5,     /* size_t bytes: "64KiB", "2MiB", "1GiB" or a number */
    RB_CONF_DOUBLE = 6,   /* double */
    RB_CONF_ENUM = 7,     /* int: the index in the field's values of the value given
                             (struct rb_conf_field_v2 only) */
};

#define RB_CONF_REQUIRED 0x1u

struct rb_conf_field {
    const char *key;
    enum rb_conf_type type;
    size_t offset; /* offsetof(your struct, member) */
    unsigned flags;
    long long min; /* for INT and SIZE: inclusive bounds when min < max */
    long long max;
};

/* A plugin's own test of one value (struct rb_conf_field_v2): value points at the member just
 * stored (char ** for STRING, double * for DURATION, ...), block at the whole struct (the
 * members of the fields listed before this one are filled). Returns NULL when the value is
 * acceptable, else one sentence (a static string, or written into why) that the core reports
 * at the value's file:line:column after the key: 'key "rate": must be more than 0'. */
typedef const char *(*rb_conf_check_fn)(const void *value, const void *block, char *why,
                                        size_t whylen);

/* A field of conf_parse_v2's table: the members of struct rb_conf_field, then what the value
 * must be. struct rb_conf_field itself never changes (plugins built against it keep working
 * with conf_parse); conf_parse_v2 is told the size of one element, so this struct may grow
 * at its end and the core reads only what the plugin was built with. */
struct rb_conf_field_v2 {
    const char *key;
    enum rb_conf_type type;
    size_t offset; /* offsetof(your struct, member) */
    unsigned flags;
    long long min; /* for INT and SIZE: inclusive bounds when min < max */
    long long max;
    /* ENUM: the allowed values, NULL-terminated; an error names them all. */
    const char *const *values;
    rb_conf_check_fn check; /* or NULL */
};

typedef void (*rb_plugin_http_fn)(struct rb_http_req *req, void *arg);
/* Writes an error answer's body for a path under a prefix the plugin owns (http_error_owner):
 * path (raw, no query), status and message (UTF-8, for the client) into buf, at most cap
 * bytes NUL-terminated; sets *content_type to a string that lives as long as the plugin.
 * Returns the body's length, or -1 to leave the answer in the core's JSON shape. Called on
 * the loop; must not block, answer a request, or keep path. */
typedef int (*rb_plugin_error_fn)(const char *path, int status, const char *message,
                                  const char **content_type, char *buf, size_t cap, void *arg);
/* res is NULL and err is set when the query failed or the database is unavailable. */
typedef void (*rb_plugin_db_fn)(const struct rb_db_result *res, const char *err, void *arg);
/* A new case from a channel. Strings are borrowed for the duration of case_submit only. */
struct rb_case_submission {
    size_t size;          /* sizeof(struct rb_case_submission) as the plugin was built */
    const char *kind;     /* "complaint", "feedback" or "information" */
    const char *service;  /* service id, or NULL */
    const char *district; /* district id, or NULL */
    const char *text;     /* UTF-8, text_len bytes */
    size_t text_len;
    const char *channel;  /* "app", "sms", "ivr", "web", "open311" */
    const char *language; /* "ur" or "en"; NULL: "ur" */
    const char *phone;    /* any accepted form, or NULL */
    const char *email;    /* or NULL */
    double lat, lon;      /* NAN when absent */
    int anonymous;
    int share_contact;
    const char *official; /* an official the complaint names, or NULL */
    int rating;           /* feedback 1-5, 0 none */
    const char *idem_scope, *idem_key, *idem_hash; /* idempotency, or NULL */
    /* A photo (decoded bytes), or NULL. Fields added after the first release of this struct:
     * the core reads them only when size says they are there. */
    const void *photo;
    size_t photo_len;
    const char *photo_type; /* "image/jpeg" or "image/png" */
    /* The citizen, when the channel has already identified them (a signed-in app user): the
     * case is linked to it without looking the phone up. 0: find or add by phone/email. */
    long long citizen_id;
    /* A reply committed with the case (NULL: none): template (lua/templates.lua) rendered
     * with {tracking} in the case's language, sent on reply_channel ("sms") to reply_to. */
    const char *reply_template, *reply_channel, *reply_to;
    /* 1: not stored when a case of this citizen (by phone) awaits their answer to an officer's
     * question sent by SMS to that phone; the callback then gets status 409 and the channel
     * decides (the SMS plugin attaches the text to that case). Checked in the statement that
     * stores the case, so a channel need not look first. */
    int unless_awaiting;
    /* How the submission arrived, as the channel wants it kept (e.g. the gateway's message id
     * and the number it was sent to): a JSON object of at most RB_CASE_ORIGIN_MAX bytes,
     * stored in the case's "submitted" event as data.origin; or NULL. */
    const char *origin;
    /* 1: phone and email are what the sender typed and nobody proved (an Open311 client's
     * reporter): the case is never joined to a citizen whose phone or email was verified (a
     * signed-in app user's account); the channel keeps such a contact on the case (origin). */
    int contact_unverified;
};
#define RB_CASE_ORIGIN_MAX 8192

/* What the channel learns once the case is stored (after COMMIT). Borrowed for the callback. */
struct rb_case_result {
    size_t size;
    long long id;
    const char *tracking_no;
    const char *status;
    const char *department;
    const char *category;
    const char *sla_policy;
    int priority;
    int triage;   /* the rules failed; the triage department has it */
    int replayed; /* the answer to an earlier request with the same idempotency key */
};

/* status 0: r is set. Otherwise an HTTP-like status (422, 503, ...) and err. Status 504: the
 * database stopped answering after the case was sent to it, so it may or may not have been
 * stored; the channel says so (a retry with the same idempotency key finds out, and never
 * stores it twice). */
#define RB_CASE_OUTCOME_UNKNOWN 504
/* A database error (err of a db_query callback) that starts with this: the statement had
 * reached the server when the connection was lost or timed out, so a write may have been
 * committed or not. The same for http_fetch: the whole request had been sent. */
#define RB_OUTCOME_UNKNOWN "outcome unknown: "
typedef void (*rb_plugin_case_fn)(const struct rb_case_result *r, int status, const char *err,
                                  void *arg);

/* A signed-in citizen. Borrowed for the callback. */
struct rb_citizen_info {
    size_t size;
    long long id;
    const char *phone; /* E.164, or NULL */
    const char *email; /* or NULL */
};

/* c NULL: the token is unknown, expired or revoked (err NULL) or the database failed (err). */
typedef void (*rb_plugin_citizen_fn)(const struct rb_citizen_info *c, const char *err,
                                     void *arg);

/* A case as the public may see it, plus what a channel needs to check who is asking.
 * Borrowed for the callback; absent values are "". */
struct rb_case_status_info {
    size_t size;
    long long citizen_id; /* 0: anonymous */
    const char *tracking_no, *kind, *status, *service, *department;
    const char *created_at, *updated_at, *resolve_due_at; /* ISO 8601 UTC */
    const char *phone_last4;
    /* Added later (check size): {"deadline", "time_left", "paused"} as JSON text. */
    const char *sla;
};

/* st NULL: no such case (err NULL) or the database failed (err). */
typedef void (*rb_plugin_case_status_fn)(const struct rb_case_status_info *st, const char *err,
                                         void *arg);

/* Runs one job; must call api->job_finish(run, ...) exactly once, now or later. */
typedef void (*rb_plugin_job_fn)(struct rb_job_run *run, const struct rb_job_info *job, void *arg);

/* The answer to http_fetch. status: the HTTP status, or 0 when none came (err says why:
 * "connection refused or reset", "timed out", ...; err starts with RB_OUTCOME_UNKNOWN when the
 * whole request had been sent before the connection dropped or timed out: the receiver may
 * have acted on it, so a retry must let it recognise the request). body: borrowed for the callback,
 * NUL-terminated after len bytes, never NULL. */
typedef void (*rb_plugin_fetch_fn)(int status, const char *body, size_t len, const char *err,
                                   void *arg);
/* The answer to api_request: the HTTP status, content type and body. Borrowed for the call. */
typedef void (*rb_plugin_api_fn)(int status, const char *content_type, const char *body,
                                 size_t len, void *arg);

/* A case handed to a department (job kind "case.deliver": a new case, or one transferred to
 * the department). Borrowed: valid until the delivery function returns; copy what is kept. */
struct rb_delivery {
    size_t size;             /* sizeof(struct rb_delivery) as the core was built */
    long long case_id;       /* for case_event */
    long long event_id;      /* the 'routed' or 'transfer' event that asked for it */
    const char *event;       /* "routed" or "transfer" */
    const char *tracking_no;
    const char *department;  /* the department the case goes to (one of this plugin's) */
    /* The case as the department may see it, a JSON object: tracking_no, kind, status,
     * service, category, priority, text, district, lat, long, language, channel, created_at,
     * ack_due_at, resolve_due_at, department, event, event_id, contact_hidden and citizen
     * ({phone, email, name}, or null when the case is anonymous or names an official and the
     * citizen did not agree to share it). */
    const char *case_json;
};

/* Delivers one case; must call api->job_finish(run, ...) exactly once, now or later: ok, or a
 * failure that the jobs queue retries with exponential back-off (permanent = 1 gives up; the
 * plugin decides after how many attempts, the queue allows up to 100). */
typedef void (*rb_plugin_deliver_fn)(struct rb_job_run *run, const struct rb_job_info *job,
                                     const struct rb_delivery *d, void *arg);

/* The outcome of case_act. Borrowed for the callback. status: 200 applied; 400 the step needs
 * text; 404 no such case with that department; 409 the step is not allowed now (error is the
 * sentence, e.g. "cannot resolve a case that is already with a department"), or the case
 * changed at the same moment; 503 the database failed. */
struct rb_case_act_result {
    size_t size;
    int status;
    long long case_id;       /* 0 when not found */
    const char *from_status; /* "" when not found */
    const char *to_status;   /* "" unless applied */
    const char *error;       /* NULL when applied */
};
typedef void (*rb_plugin_case_act_fn)(const struct rb_case_act_result *r, void *arg);
/* One outgoing message for message_queue. Strings are borrowed for the call. */
struct rb_message_out {
    size_t size;             /* sizeof(struct rb_message_out) as the plugin was built */
    const char *template;    /* a template of lua/templates.lua, e.g. "sms.received" */
    const char *language;    /* "ur" or "en" */
    const char *params_json; /* a JSON object with the template's {placeholders}, or NULL */
    const char *channel;     /* a channel with a sender (message_sender): "sms", "email" */
    const char *to;          /* E.164 phone for sms, an address for email */
    long long case_id, citizen_id; /* 0: none (citizen: found by phone) */
    long long event_id;      /* 0: none; else at most one message per case event, template
                                and address (a retried job writes it once) */
    int notice;              /* 1: not sent to a citizen who sent STOP */
    int urgent;              /* 1: sent at once even in quiet hours (answers, codes) */
    /* Added later (the core reads it only when size says it is there): a template whose
     * rendering is the subject, for channels that have one (e-mail), or NULL. */
    const char *subject_template;
    /* Added later (read only when size says it is there): what the channel's sender needs
     * beyond the address and the text, as a JSON object of at most RB_MESSAGE_DATA_MAX bytes
     * (a call: {"script", "trunk", "reply_kind", "ref"}, docs/ivr.md), or NULL. Stored with
     * the message and handed to the sender as rb_message_info.data_json. */
    const char *data_json;
};
#define RB_MESSAGE_DATA_MAX 8192

/* Senders (message_sender): the plugin that sends a channel's messages gets each of its
 * send jobs as one call with the message, and reports the outcome with message_done. */
struct rb_message_send; /* one send; valid until message_done is called */

/* The message to send. Borrowed: valid until message_done. */
struct rb_message_info {
    size_t size;          /* sizeof(struct rb_message_info) as the core was built */
    long long id;         /* messages.id: e.g. for a delivery report's reference */
    const char *channel;  /* the channel the plugin registered */
    const char *to;       /* the address: E.164 phone for sms, an e-mail address, ... */
    const char *body;     /* UTF-8 text */
    const char *subject;  /* UTF-8, or NULL (channels without subjects) */
    const char *language; /* "ur", "en" or NULL */
    int notice;           /* a notice (opted-out citizens were already left out by the core) */
    int urgent;           /* an answer or a code (quiet hours were already waited out) */
    int attempt;          /* 1 for the first try */
    int max_attempts;     /* after this many, a retry becomes a failure */
    long long case_id;    /* 0: none */
    /* Added later (check size, or offsetof: a core built before it has none): the message's
     * data as its queuer gave it (rb_message_out.data_json), a JSON object, or NULL. */
    const char *data_json;
};

enum rb_send_outcome {
    RB_SEND_SENT = 1,   /* handed over (the gateway accepted it) */
    RB_SEND_FAILED = 2, /* refused for good (a bad address, bad credentials): not retried */
    RB_SEND_RETRY = 3,  /* not now (the relay is down, overloaded): try again later */
};

/* Sends one message; must call api->message_done(send, ...) exactly once, now or later. */
typedef void (*rb_plugin_send_fn)(struct rb_message_send *send, const struct rb_message_info *m,
                                  void *arg);

/* A department's settings (department_info). */
struct rb_department_info {
    size_t size;            /* set by the plugin: sizeof(struct rb_department_info) */
    const char *id;
    const char *name_en, *name_ur;
    const char *duty_phone; /* the duty officer's phone in E.164 (normalised at load), or NULL */
    const char *email;      /* or NULL */
};

/* id: the stored message (0: a duplicate of that event's message with the same template and
 * address); err set on failure. */
typedef void (*rb_plugin_message_fn)(long long id, const char *err, void *arg);

/* A citizen's comment on their own case, for case_comment. Strings are borrowed for the
 * call. */
struct rb_case_comment {
    size_t size;          /* sizeof(struct rb_case_comment) as the plugin was built */
    const char *tracking; /* canonical (tracking_parse) */
    long long citizen_id; /* only that citizen's case */
    const char *text;     /* UTF-8, NUL-terminated: the comment (the reply) */
    const char *channel;  /* where it came from ("app", "sms"): the event's data */
    /* Idempotency (all three, or NULL): the key is stored with the comment; a request with a
     * key already stored writes nothing and answers replayed (scopes are shared with
     * case_submit: one key names one request, whichever of the two it became). */
    const char *idem_scope, *idem_key, *idem_hash;
    /* A confirmation committed with the comment (NULL: none): body already rendered, its
     * template name and language, sent on reply_channel ("sms") to reply_to. */
    const char *reply_body, *reply_template, *reply_language, *reply_channel, *reply_to;
};

struct rb_host_api {
    size_t size; /* sizeof(struct rb_host_api) as the core was built */
    uint32_t abi;

    /* Logging: one JSON line, tagged with the plugin's name. */
    void (*log)(struct rb_plugin_ctx *ctx, enum rb_log_level level, const char *fmt, ...)
        RB_PRINTF(3, 4);

    /* Configuration: parse the plugin's own block of rabta.yaml into out. Returns RB_OK or
     * RB_EINVAL after logging every error with file:line:column. */
    int (*conf_parse)(struct rb_plugin_ctx *ctx, const struct rb_conf_field *fields,
                      size_t nfields, void *out);
    /* Frees the strings conf_parse stored in out. */
    void (*conf_free)(const struct rb_conf_field *fields, size_t nfields, void *out);

    /* HTTP: pattern is a path with ":name" segments ("/api/v1/cases/:id"); methods is a mask
     * of rb_http_method. Only during init(). */
    int (*http_route)(struct rb_plugin_ctx *ctx, unsigned methods, const char *pattern,
                      rb_plugin_http_fn fn, void *arg);
    enum rb_http_method (*req_method)(struct rb_http_req *req);
    const char *(*req_path)(struct rb_http_req *req);
    /* A ":name" path parameter, or NULL. Borrowed. */
    const char *(*req_param)(struct rb_http_req *req, const char *name);
    /* A query-string argument (decoded), or NULL. Borrowed. */
    const char *(*req_query)(struct rb_http_req *req, const char *name);
    const char *(*req_header)(struct rb_http_req *req, const char *name);
    /* The request body; *len receives its length. Borrowed, not NUL-terminated. */
    const char *(*req_body)(struct rb_http_req *req, size_t *len);
    /* Answer: body is copied. content_type NULL means application/json. */
    void (*reply)(struct rb_http_req *req, int status, const char *content_type,
                  const char *body, size_t len);
    /* Answer with the one JSON error shape: {"error":{"code":..,"message":..}}. */
    void (*reply_error)(struct rb_http_req *req, int status, const char *code, const char *fmt,
                        ...) RB_PRINTF(4, 5);

    /* Database: one parameterised statement on the pool. */
    int (*db_query)(struct rb_plugin_ctx *ctx, const char *sql, int nparams,
                    const char *const *params, rb_plugin_db_fn fn, void *arg);
    int (*db_ntuples)(const struct rb_db_result *res);
    int (*db_nfields)(const struct rb_db_result *res);
    const char *(*db_value)(const struct rb_db_result *res, int row, int col); /* NULL if NULL */

    /* Jobs: durable deferred work. payload_json may be NULL; dedup_key NULL for none.
     * The job is stored asynchronously; fn (may be NULL) learns the outcome. */
    int (*job_enqueue)(struct rb_plugin_ctx *ctx, const char *kind, const char *payload_json,
                       double delay_seconds, const char *dedup_key, rb_plugin_db_fn fn,
                       void *arg);

    /* Private data the plugin attaches to its context. */
    void (*set_data)(struct rb_plugin_ctx *ctx, void *data);
    void *(*get_data)(struct rb_plugin_ctx *ctx);

    /* Jobs: handle every job of kind (e.g. "message.send"). Only during init(). */
    int (*job_register)(struct rb_plugin_ctx *ctx, const char *kind, rb_plugin_job_fn fn,
                        void *arg);
    /* Ends a run: ok 1 on success; else error (copied), retry_after seconds (< 0: the
     * back-off schedule), permanent 1 to give up now (the job becomes dead). */
    void (*job_finish)(struct rb_job_run *run, int ok, const char *error, double retry_after,
                       int permanent);

    /* Cases: validate, route, number and store a new case; fn is called after COMMIT.
     * RB_OK; RB_EINVAL with why set (nothing stored, fn not called); RB_EAGAIN overloaded. */
    int (*case_submit)(struct rb_plugin_ctx *ctx, const struct rb_case_submission *sub,
                       rb_plugin_case_fn fn, void *arg, char *why, size_t whylen);
    /* Tracking numbers: canonical form of what a citizen typed into out (>= 24 bytes).
     * RB_OK, or RB_EINVAL with why ("mistyped" vs "not a tracking number"). */
    int (*tracking_parse)(const char *in, char *out, size_t outlen, const char **why);
    /* Phone numbers to E.164 into out (>= 17 bytes). RB_OK or RB_EINVAL with why. */
    int (*phone_normalize)(const char *in, char *out, size_t outlen, const char **why);

    /* The configured services as a JSON array of {"id", "name_en", "name_ur", "department",
     * "department_name_en", "department_name_ur", "feedback"}, and when the service's file has
     * a "questions" list, "questions" (that list as JSON, every scalar a string) and
     * "questions_at" ("file:line:col" of the list). Owned by the core: valid until the next
     * call from this plugin or the next reload. */
    const char *(*services_json)(struct rb_plugin_ctx *ctx);

    /* Citizens' bearer tokens (the text after "Bearer "), resolved through a short-lived
     * cache. fn is called exactly once, possibly before this returns. RB_OK; RB_EINVAL for
     * a malformed token and RB_EAGAIN when overloaded (fn not called). */
    int (*citizen_auth)(struct rb_plugin_ctx *ctx, const char *token, rb_plugin_citizen_fn fn,
                        void *arg);
    /* After revoking a token in the database: forget it in this process's cache at once. */
    void (*citizen_forget)(struct rb_plugin_ctx *ctx, const char *token);

    /* A case's public status by canonical tracking number (from tracking_parse); look-ups
     * arriving together share one query. RB_OK (fn called later), RB_EINVAL, RB_EAGAIN. */
    int (*case_status)(struct rb_plugin_ctx *ctx, const char *tracking,
                       rb_plugin_case_status_fn fn, void *arg);

    /* HTTP, continued: add a response header before answering (e.g. Retry-After), and the
     * client's address (the TCP peer; proxies' headers are not trusted). Borrowed. */
    void (*reply_header)(struct rb_http_req *req, const char *name, const char *value);
    const char *(*req_peer)(struct rb_http_req *req);

    /* HTTP client on the loop: method is one rb_http_method, url "http://host[:port]/..."
     * (copied), headers NULL or a NULL-terminated array of "Name: value" (copied), body/len
     * (copied), timeout seconds for the connect and each read/write (<= 0: 30 s). fn is
     * called exactly once and never before this returns; requests still in flight when the
     * plugin is unloaded are cancelled without a call. RB_OK or RB_EINVAL (fn not called). */
    int (*http_fetch)(struct rb_plugin_ctx *ctx, enum rb_http_method method, const char *url,
                      const char *const *headers, const char *body, size_t len,
                      double timeout, rb_plugin_fetch_fn fn, void *arg);

    /* ---- departments (appended; check RB_HOST_HAS(api, case_event)) ---- */

    /* Registers the plugin's delivery function: every case handed to a department whose file
     * names this plugin (plugin: NAME) is a "case.deliver" job run handed to fn. Without it
     * those jobs finish at once. Only during init(). RB_OK or RB_EINVAL. */
    int (*department_deliver)(struct rb_plugin_ctx *ctx, rb_plugin_deliver_fn fn, void *arg);
    /* The i-th (from 0) configured department that uses this plugin, or NULL past the last.
     * Borrowed: valid until the next reload. */
    const char *(*department_id)(struct rb_plugin_ctx *ctx, size_t i);
    /* Parses the "config:" block of that department's file into out, as conf_parse (errors
     * logged with file:line:column; an absent block is an empty map). RB_OK, RB_EINVAL, or
     * RB_ENOTFOUND when no such department uses this plugin. */
    int (*department_conf_parse)(struct rb_plugin_ctx *ctx, const char *department,
                                 const struct rb_conf_field *fields, size_t nfields, void *out);
    /* Applies a step of the case state machine for a department's own system, through the
     * same code as the staff API: action "acknowledge", "start", "resolve" (text: what was
     * done), "reject" (text: why) or "answer" (text: the answer, sent to the citizen).
     * tracking canonical (tracking_parse); department non-NULL: only a case with that
     * department (otherwise 404). The case event is written with actor_type "department",
     * actor_id the plugin's name, and data_json (a JSON object or NULL). fn is called exactly
     * once, never before this returns. RB_OK; RB_EINVAL (unknown action or malformed
     * tracking/data; fn not called); RB_EAGAIN. */
    int (*case_act)(struct rb_plugin_ctx *ctx, const char *tracking, const char *department,
                    const char *action, const char *text, const char *data_json,
                    rb_plugin_case_act_fn fn, void *arg);
    /* Appends an event to a case's timeline (actor_type "department", actor_id the plugin's
     * name): event must be "<plugin name>.<what>" in [a-z0-9_.] (at most 64 bytes), so a
     * plugin can neither forge nor trigger the core's own events; note NULL or text,
     * data_json a JSON object or NULL. The event is internal (data.internal = true): staff
     * see it, the citizen's timeline does not. fn (may be NULL) gets the row {id} or err. RB_OK or
     * RB_EINVAL (fn not called); RB_EAGAIN. */
    int (*case_event)(struct rb_plugin_ctx *ctx, long long case_id, const char *event,
                      const char *note, const char *data_json, rb_plugin_db_fn fn, void *arg);
    /* Messages (lua/templates.lua, docs/sms.md). Renders template name in language ("ur",
     * "en") with the values of params_json (an object, or NULL). Returns a new string
     * (caller frees with free()), or NULL with why set. */
    char *(*template_render)(struct rb_plugin_ctx *ctx, const char *name, const char *language,
                             const char *params_json, char *why, size_t whylen);
    /* Renders and stores one outgoing message: its messages row and 'message.send.<channel>'
     * job in one statement (SQL rabta_message_queue), the job due after quiet hours unless
     * urgent. RB_OK (fn called later, once); RB_EINVAL with why (fn not called), also for a
     * channel no loaded plugin sends; RB_EAGAIN/RB_EUNAVAIL (fn not called). */
    int (*message_queue)(struct rb_plugin_ctx *ctx, const struct rb_message_out *m,
                         rb_plugin_message_fn fn, void *arg, char *why, size_t whylen);
    /* Seconds until the configured quiet hours (messages.quiet_hours) end; 0 outside them. */
    double (*quiet_wait)(struct rb_plugin_ctx *ctx);
    /* A citizen's rating of their case (tracking: canonical), as one statement: satisfied
     * closes a resolved/answered case; unsatisfied reopens it (a complaint or information
     * request) and writes 'escalation.requested'. fn gets one row (kind, status before,
     * status after or NULL when refused, escalation level, and — when refused because the
     * reopen window (close.reopen_window of the SLA file) has passed — the window's end as
     * ISO 8601 UTC, else NULL), or no row when the case is not the citizen's. comment may be
     * NULL. Returns as db_query. */
    int (*case_rate)(struct rb_plugin_ctx *ctx, const char *tracking, long long citizen_id,
                     int rating, int satisfied, const char *comment, rb_plugin_db_fn fn,
                     void *arg);

    /* ---- appended after case_rate; check RB_HOST_HAS(api, department_info) ---- */

    /* The settings of a department that uses this plugin, from its file: out->size must be set
     * by the plugin (sizeof(struct rb_department_info) as it was built); the core fills what
     * fits. Strings borrowed: valid until the next reload. RB_OK; RB_EINVAL (out too small);
     * RB_ENOTFOUND when no such department uses this plugin. */
    int (*department_info)(struct rb_plugin_ctx *ctx, const char *department,
                           struct rb_department_info *out);
    /* A citizen's comment on their own case (core/cases/case_comment.c), as one statement: the
     * 'comment' event and, when the case is awaiting the citizen, their reply: status
     * in_progress and a 'citizen_reply' event (the SLA clock resumes). fn gets one row
     * (status before, status after, the comment's time as ISO 8601 UTC, case id, replayed
     * "t"/"f"), or no row when the case is not the citizen's. RB_EINVAL (fn not called) for a
     * missing field; otherwise as db_query. */
    int (*case_comment)(struct rb_plugin_ctx *ctx, const struct rb_case_comment *c,
                        rb_plugin_db_fn fn, void *arg);

    /* ---- appended after case_comment; check RB_HOST_HAS(api, department_wants) ---- */

    /* Says which of this plugin's departments want their NEW cases delivered (called by
     * intake for every case, on the loop: must be quick, no I/O). Without it every one does.
     * A department that does not want them gets no "case.deliver" job for a new case (a
     * transferred case is always delivered). Only during init(). RB_OK or RB_EINVAL. */
    int (*department_wants)(struct rb_plugin_ctx *ctx,
                            int (*wants)(struct rb_plugin_ctx *ctx, const char *department,
                                         void *arg),
                            void *arg);

    /* ---- appended after department_wants; check RB_HOST_HAS(api, db_query_prepared) ---- */

    /* Paces this plugin's job kind (registered with job_register): at most `rate` runs start
     * a second, in bursts of at most `burst`, across all processes on the database (they
     * share the kind's schedule; give them the same pace). Runs wait for their turn in
     * the host, claimed at most a second ahead, so a long queue (an SMS gateway's rate) costs
     * nothing while it waits. During init() or reload(). RB_OK or RB_EINVAL. */
    int (*job_pace)(struct rb_plugin_ctx *ctx, const char *kind, double rate, int burst);
    /* As db_query, for a hot statement whose text never varies (a static string): each pool
     * connection parses it once and then only binds and executes it. Not for SQL built at run
     * time, nor for queries whose best plan depends on the parameters' values. */
    int (*db_query_prepared)(struct rb_plugin_ctx *ctx, const char *sql, int nparams,
                             const char *const *params, rb_plugin_db_fn fn, void *arg);

    /* ---- appended after db_query_prepared; check RB_HOST_HAS(api, conf_free_v2) ---- */

    /* As conf_parse (department NULL) or department_conf_parse (that department's "config:"
     * block), with a table of struct rb_conf_field_v2 whose one element is field_size bytes
     * (RB_CONF_PARSE_V2 passes it): ENUM values and check hooks are reported, like every
     * other error, at the node's file:line:column. At `rabtad --check` the errors are part of
     * the check's list. RB_OK, RB_EINVAL (errors reported), RB_ENOTFOUND (no such department
     * uses this plugin). Strings stored in out are freed with conf_free_v2. */
    int (*conf_parse_v2)(struct rb_plugin_ctx *ctx, const char *department,
                         const struct rb_conf_field_v2 *fields, size_t nfields,
                         size_t field_size, void *out);
    void (*conf_free_v2)(const struct rb_conf_field_v2 *fields, size_t nfields,
                         size_t field_size, void *out);

    /* ---- appended after conf_free_v2; check RB_HOST_HAS(api, event_base) ---- */

    /* The event loop (a libevent struct event_base *) for a plugin that speaks its own
     * protocol over sockets (the IVR plugin's FastAGI server and AMI client). Events the plugin
     * adds must be freed by its stop(). NULL outside a running server (--check). */
    struct event_base *(*event_base)(struct rb_plugin_ctx *ctx);
    /* The value of lua/NAME.lua in the current rules set (what require("NAME") returns in the
     * sandbox; run once per rules set) as JSON text: tables with keys 1..n are arrays, tables
     * with names objects; functions are refused. For settings administrators keep in Lua
     * (IVR menus and call scripts). Returns a new string (caller frees with free()), or NULL
     * with why ("lua/ivr.lua:12: ..."). Usable in init(), check(), reload() and later. */
    char *(*lua_data)(struct rb_plugin_ctx *ctx, const char *name, char *why, size_t whylen);

    /* ---- appended after lua_data; check RB_HOST_HAS(api, message_done) ---- */

    /* Registers the plugin as the sender of channel (a name of [a-z0-9_], e.g. "sms",
     * "email", "call"): every message queued for that channel becomes a job of kind
     * "message.send.<channel>" handed to fn (pace it with job_pace on that kind). The core
     * loads the message, skips one already sent, leaves out notices to citizens who opted out
     * and waits out quiet hours for what is not urgent, then calls fn; the plugin reports
     * with message_done and never writes the messages table. Until message_done the send's
     * job stays this process's (its lease is renewed), however long the send takes (a call):
     * no other process sends the message meanwhile. One sender per channel: a
     * second plugin registering the same channel is refused (RB_EEXIST, logged with both
     * names), which stops the start. Only during init(). RB_OK, RB_EINVAL, RB_EEXIST. */
    int (*message_sender)(struct rb_plugin_ctx *ctx, const char *channel, rb_plugin_send_fn fn,
                          void *arg);
    /* The outcome of one send: RB_SEND_SENT (gateway_ref: the gateway's id for the message,
     * or NULL), RB_SEND_FAILED (error says why; not retried) or RB_SEND_RETRY (error says
     * why; again after retry_after seconds, < 0: the queue's back-off; past max_attempts the
     * message fails). The core records it in the message (status, sent_at, last_error,
     * attempts) and ends the job. send is invalid afterwards. */
    void (*message_done)(struct rb_message_send *send, enum rb_send_outcome outcome,
                         double retry_after, const char *error, const char *gateway_ref);

    /* ---- appended after message_done; check RB_HOST_HAS(api, districts_json) ---- */

    /* Runs a request through the server's own HTTP API (a path under /api/: the staff API with
     * its sign-in limits and scope rules, reports, the citizens' API), as if it had come over
     * HTTP from the client of `from` (its address is the peer; NULL: none), and hands the
     * answer to fn instead of a socket. uri is the path and query, headers NULL or a
     * NULL-terminated array of "Name: value" (e.g. "Authorization: Bearer T"), body/len
     * copied. fn is called exactly once, possibly before this returns; content_type and body
     * are borrowed for the call. A front end renders the same answers the API gives, so the
     * rules live in one place. RB_OK; RB_EINVAL (not under /api/, malformed; fn not called). */
    int (*api_request)(struct rb_plugin_ctx *ctx, struct rb_http_req *from,
                       enum rb_http_method method, const char *uri, const char *const *headers,
                       const char *body, size_t len, rb_plugin_api_fn fn, void *arg);
    /* The configured districts as a JSON array of {"id", "name_en", "name_ur", "division"}
     * (division absent when the file has none). Owned by the core: valid until the next call
     * from this plugin or the next reload. */
    const char *(*districts_json)(struct rb_plugin_ctx *ctx);

    /* ---- appended after districts_json; check RB_HOST_HAS(api, rate_limit) ---- */

    /* Answers a failed database call (err as the db callbacks give it): a data exception
     * (SQLSTATE class 22: invalid UTF-8, out of range) is 400, anything else 503 with
     * Retry-After; the database's text is logged with the request id, never sent. what says
     * what failed, for the client. */
    void (*reply_db_error)(struct rb_http_req *req, const char *err, const char *what);
    /* A rate limit on any key (a tracking number, a phone), counted per process in the same
     * table as the per-client-address limits, apart for each plugin: per_second on average,
     * burst at once. take 0 only looks. Returns 0 when allowed, else the seconds to wait. */
    double (*rate_limit)(struct rb_plugin_ctx *ctx, const char *key, double per_second,
                         int burst, int take);

    /* ---- appended after rate_limit; check RB_HOST_HAS(api, http_fetch_ca) ---- */

    /* As http_fetch; an https:// url's server must present a certificate that ca_file (a PEM
     * file of CA certificates; NULL: the system's trusted CAs) vouches for, issued to the
     * url's host name or IP address; else fn gets status 0 and err "TLS: ...". RB_EINVAL also
     * when ca_file cannot be read. (http_fetch itself takes https:// with the system's CAs.) */
    int (*http_fetch_ca)(struct rb_plugin_ctx *ctx, enum rb_http_method method, const char *url,
                         const char *const *headers, const char *body, size_t len,
                         double timeout, const char *ca_file, rb_plugin_fetch_fn fn, void *arg);

    /* ---- appended after http_fetch_ca; check RB_HOST_HAS(api, survey_call_result) ---- */

    /* Proactive feedback (docs/feedback.md). A text from phone (E.164), len bytes of UTF-8,
     * that may answer an outreach survey waiting for this phone's SMS answer: fn(taken, err,
     * arg) exactly once, never before this returns. taken 1: the survey took it (it stored the
     * answer and queued its own reply: answer nothing more); 0: no survey waits for this
     * phone, go on as usual. ref: the gateway's id of the text (a retry with the same ref is
     * taken again without answering twice; may be NULL). RB_OK or RB_EAGAIN (fn not called). */
    int (*survey_answer)(struct rb_plugin_ctx *ctx, const char *phone, const char *text,
                         size_t len, const char *ref,
                         void (*fn)(int taken, const char *err, void *arg), void *arg);
    /* The result of a feedback call, the message (channel "call") the plugin placed (the IVR
     * plugin hands it back as the job its data's reply_kind names, survey.call_result, which
     * core records with the same code as this entry).
     * answers_json: an object of question id -> the keypad digits (or a recording's
     * reference for a free question), NULL or {} when nobody answered; disposition NULL
     * (derived from the answers), or "refusal", "non_contact" (not answered, busy) or
     * "unknown" (the number cannot be called). A call without answers moves the survey on to
     * its next channel (SMS). fn(found, err, arg) once: found 0 when no survey waits for that
     * call's answers. RB_OK; RB_EINVAL (bad disposition or answers); RB_EAGAIN. */
    int (*survey_call_result)(struct rb_plugin_ctx *ctx, long long message_id,
                              const char *answers_json, const char *disposition,
                              void (*fn)(int found, const char *err, void *arg), void *arg);

    /* ---- appended after survey_call_result; check RB_HOST_HAS(api, survey_walk) ---- */

    /* A survey of lua/surveys.lua (docs/feedback.md) as a caller answers it by phone: the IVR
     * asks it when a call message's data names script "survey:<name>". given_json: an object
     * of question id -> what the caller gave (the keypad digits, or a recording's reference
     * for a free question), or NULL for none yet. Returns a new JSON text (caller frees with
     * free()): {"answers": what the given answers mean, "done": true when the survey reached
     * its end, "next": the question to ask now {"question", "prompt", "answers": [the digits
     * allowed], "free"} or absent, "invalid": the id of a given answer the survey does not
     * allow, or absent}. survey NULL: {"surveys": {NAME: {"first", "questions": [{"question",
     * "prompt", "answers", "free"}, ...]}}} (a plugin's checks of its prompts). language "ur"
     * or "en". NULL with why ("no survey ...", "lua/surveys.lua:12: ..."). Runs the rules on
     * the loop (their time budget applies); usable in check(), init() and later. */
    char *(*survey_walk)(struct rb_plugin_ctx *ctx, const char *survey, const char *language,
                         const char *given_json, char *why, size_t whylen);

    /* ---- appended after survey_walk; check RB_HOST_HAS(api, http_error_owner) ---- */

    /* Makes the plugin the writer of every error answer under prefix ("/open311": the path
     * and everything below it), including those the server gives before any route runs: a
     * body over server.max_body (413), a head over server.max_header_size whose request
     * line's path arrived (431), a path of more than 32 segments (404), a malformed query
     * string (400), rate limits (429), overload (503), a slow client (408), and reply_error /
     * reply_db_error on such a path. Status codes and headers (Retry-After, Allow) stay the
     * server's; the body is fn's. Only during init(). RB_OK; RB_EINVAL (prefix must start
     * with "/" and not end with one); RB_EEXIST (another plugin owns that prefix). */
    int (*http_error_owner)(struct rb_plugin_ctx *ctx, const char *prefix,
                            rb_plugin_error_fn fn, void *arg);

    /* New entries go here, at the end, never above. */
};

#define RB_HOST_HAS(api, member)                                                              \
    ((api)->size >= offsetof(struct rb_host_api, member) + sizeof((api)->member))

/* conf_parse_v2 / conf_free_v2 on a static array of struct rb_conf_field_v2. */
#define RB_CONF_PARSE_V2(api, ctx, department, fields, out)                                   \
    (api)->conf_parse_v2((ctx), (department), (fields), sizeof(fields) / sizeof((fields)[0]), \
                         sizeof((fields)[0]), (out))
#define RB_CONF_FREE_V2(api, fields, out)                                                     \
    (api)->conf_free_v2((fields), sizeof(fields) / sizeof((fields)[0]), sizeof((fields)[0]), \
                        (out))

struct rb_plugin {
    uint32_t magic; /* RB_PLUGIN_MAGIC */
    uint32_t abi;   /* RB_PLUGIN_ABI */
    size_t size;    /* sizeof(struct rb_plugin) */
    const char *name;
    enum rb_plugin_kind kind;
    const char *version;
    const char *description;

    /* Called once after loading. Register routes, parse config. RB_OK or an error code. */
    int (*init)(struct rb_plugin_ctx *ctx, const struct rb_host_api *api);
    /* Called once the database is reachable and the server is about to listen. May be NULL. */
    int (*start)(struct rb_plugin_ctx *ctx);
    /* Called at shutdown; free everything. May be NULL. */
    void (*stop)(struct rb_plugin_ctx *ctx);
    /* Called after a successful configuration reload (SIGHUP). May be NULL. */
    int (*reload)(struct rb_plugin_ctx *ctx);
    /* Appended (a descriptor without it, RB_PLUGIN_SIZE_V1 bytes, is still accepted): called
     * by `rabtad --check` instead of init(): parse and check the plugin's configuration and
     * Lua (conf_parse, services_json, lua_data work; nothing may be registered or started).
     * Log each problem and return RB_EINVAL. May be NULL. */
    int (*check)(struct rb_plugin_ctx *ctx, const struct rb_host_api *api);
};
/* The size of the first release of struct rb_plugin (before check). */
#define RB_PLUGIN_SIZE_V1 offsetof(struct rb_plugin, check)

typedef const struct rb_plugin *(*rb_plugin_entry_fn)(void);

/* In a plugin:  RB_PLUGIN_DEFINE(my_descriptor) */
#define RB_PLUGIN_DEFINE(desc)                                                                \
    RB_PLUGIN_EXPORT const struct rb_plugin *rabta_plugin_entry(void);                        \
    RB_PLUGIN_EXPORT const struct rb_plugin *rabta_plugin_entry(void) { return &(desc); }

#define RB_PLUGIN_HEADER                                                                      \
    .magic = RB_PLUGIN_MAGIC, .abi = RB_PLUGIN_ABI, .size = sizeof(struct rb_plugin)

#ifdef __cplusplus
}
#endif
#endif
