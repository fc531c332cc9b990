/* open311 plugin: what its files share (docs/open311.md).
 *
 *   open311.c          routes (every path under /open311/ answers in Open311's shape),
 *                      discovery, services and service definitions, life
 *   open311_out.c      answers as JSON or XML, errors, dates and search windows
 *   open311_form.c     form bodies, the API key, field checks
 *   open311_attrs.c    service questions (from the services' YAML) and attribute[...] values
 *   open311_requests.c GET and POST requests
 *   open311_updates.c  GET and POST servicerequestupdates (mySociety's extension)
 *
 * Nothing here is exported (hidden visibility). Each file keeps its own copy of the host API
 * pointer, set by its *_init function from open311_init. */
#ifndef RB_OPEN311_H
#define RB_OPEN311_H

#include <stddef.h>

#include <jansson.h>
#include <rabta/plugin.h>

#define O311_WINDOW (90.0 * 86400.0) /* a search spans at most 90 days (the spec) */
#define O311_TEXT_MAX 5000           /* characters of an update's description (intake's limit) */
#define O311_NAME_MAX 100            /* bytes of first_name, last_name */
#define O311_URL_MAX 2048            /* bytes of one media_url */
#define O311_SHORT_MAX 64            /* bytes of account_id, device_id, update_id, status */

/* Open311 statuses of one of our case states (docs/open311.md, "Statuses"). */
struct o311_status {
    const char *rabta;    /* our state: "rejected" */
    const char *open311;  /* the spec's two: "open" or "closed" */
    const char *extended; /* FixMyStreet's extended status: "NO_FURTHER_ACTION" */
};
const struct o311_status *o311_status_of(const char *rabta);

enum o311_fmt { O311_JSON, O311_XML };

/* The plugin's block of rabta.yaml; every key is optional. */
struct o311_conf {
    char *base_url;        /* owned; discovery's endpoint url; default from the Host header */
    char *contact;         /* owned; discovery's contact */
    char *key_service;     /* owned; discovery's key_service (how to get an API key) */
    char *jurisdiction_id; /* owned; when set, a different jurisdiction_id is 404 */
    double key_cache;      /* seconds a good API key is trusted without asking the database */
};

/* API keys found good lately (open311_form.c): their SHA-256, name and until when. */
#define O311_KEY_SLOTS 64
#define O311_KEY_CACHE_DEFAULT 30.0
#define O311_KEY_CACHE_MAX 300.0
struct o311_key {
    unsigned char hash[32];
    char name[72];
    double until; /* monotonic seconds; 0: empty */
};

struct o311 {
    struct rb_plugin_ctx *ctx; /* borrowed */
    struct o311_conf conf;
    char changeset[32]; /* when the configuration (so the service list) was last loaded */
    json_t *questions;  /* owned: service id -> its Open311 attributes (checked at load) */
    json_t *services;   /* owned: o311_services_load's array; NULL until first used */
    struct o311_key keys[O311_KEY_SLOTS];
};

/* ---- open311_out.c ------------------------------------------------------------------------ */

void o311_out_init(const struct rb_host_api *host);
/* Answers with doc (stolen), rooted at root in XML. */
void o311_send(struct rb_http_req *req, int status, enum o311_fmt fmt, const char *root,
               json_t *doc);
/* The body of an error the server answers under /open311 (http_error_owner's writer):
 * Open311's error shape in the format of path's extension. */
int o311_error_writer(const char *path, int status, const char *message,
                      const char **ctype, char *buf, size_t cap, void *arg);
/* Open311's error shape, [{"code": status, "description": "..."}], in fmt. A status of 500
 * or more is the spec's "General Service Error": HTTP 400 with Retry-After: 1, the body's
 * code the status given (503, 504). */
void o311_error(struct rb_http_req *req, int status, enum o311_fmt fmt, const char *msgfmt, ...)
    RB_PRINTF(4, 5);
/* "abc.json" -> "abc" in base, O311_JSON. -1 for another or no suffix, or an empty name. */
int o311_split_format(const char *file, char *base, size_t cap, enum o311_fmt *fmt);
/* The format a path asks for: .xml -> XML, anything else JSON. */
enum o311_fmt o311_path_format(struct rb_http_req *req);
/* 1 (after answering 404) when given names a jurisdiction other than the configured one. */
int o311_wrong_jurisdiction(struct o311 *o, struct rb_http_req *req, const char *given,
                            enum o311_fmt fmt);
/* ISO 8601 / W3C datetime to seconds since the epoch (docs/open311.md). 0 or -1. */
int o311_parse_datetime(const char *s, double *out);
/* The window of a search from the query's start_date and end_date (at most 90 days; defaults
 * as docs/open311.md says). 0, or -1 after answering 400. */
int o311_window(struct rb_http_req *req, enum o311_fmt fmt, double *start, double *end);
/* "2024-05-01T04:30:00Z" of a timestamptz, as a SQL fragment around column x. */
#define O311_TS(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* ---- open311_form.c ----------------------------------------------------------------------- */

struct o311_form {
    char **kv; /* owned: key, value, key, value, ... (decoded, NUL-terminated, UTF-8) */
    size_t n;  /* pairs */
};
const char *o311_form_get(const struct o311_form *f, const char *key);

/* A POST in progress: its form, and the API key's name once checked. */
struct o311_post;
typedef void (*o311_post_fn)(struct o311_post *p);
struct o311_post {
    struct o311 *o;
    struct rb_http_req *req;
    enum o311_fmt fmt;
    struct o311_form form; /* owned */
    char key_name[72];
    unsigned char key_hash[32]; /* SHA-256 of the API key */
    char *text;   /* owned; what the handler builds (the case text) */
    char *origin; /* owned; JSON text the handler builds */
    o311_post_fn next; /* called once the key is good */
};
void o311_form_init(const struct rb_host_api *host);
/* Checks the content type, parses the form and checks api_key (403 unless valid: in the
 * database, or found valid there less than conf.key_cache seconds ago); then calls fn, which owns p (free with o311_post_free). Answers itself on
 * every failure. */
void o311_post_start(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                     o311_post_fn fn);
void o311_post_free(struct o311_post *p);
/* Text a person typed: no control characters other than tab, CR and LF (none at all when
 * one_line), at most max code points (UTF-8 is checked when the form is read). 0 or -1. */
int o311_text_ok(const char *s, size_t max, int one_line);
/* The extras a POST may carry about its reporter and media, as a new JSON object:
 * first_name, last_name, media_url (the first; media_urls when more than one), account_id,
 * device_id. NULL after answering 400. */
json_t *o311_extras(struct o311_post *p);

/* ---- open311_attrs.c ---------------------------------------------------------------------- */

void o311_attrs_init(const struct rb_host_api *host);
/* The services' questions as Open311 attributes, checked: a new object (service id -> array)
 * or NULL after logging every error with file:line:col. */
json_t *o311_questions_load(struct o311 *o);
/* The attribute[...] fields of form, checked against the service's attributes (defs: an
 * array, may be NULL): a new object {code: value or [values]}, or NULL with why set. */
json_t *o311_attributes_read(json_t *defs, const struct o311_form *form, char *why,
                             size_t whylen);

/* ---- open311_requests.c ------------------------------------------------------------------- */

void o311_requests_init(const struct rb_host_api *host);
/* The configured services: a new reference to the array read from the host once per
 * configuration (o->services; a reload clears it), or NULL. Read-only. */
json_t *o311_services_load(struct o311 *o);
json_t *o311_service_find(json_t *svcs, const char *code);
const char *o311_str_of(json_t *o, const char *key);
int o311_plain_code(const char *s);
/* GET requests (base unused: the endpoint table's shape) and POST requests, after the key. */
void o311_requests_list(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                        const char *base);
void o311_request_submit(struct o311_post *p);
void o311_on_request_one(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                         const char *base);
void o311_on_token(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                   const char *base);

/* ---- open311_updates.c -------------------------------------------------------------------- */

void o311_updates_init(const struct rb_host_api *host);
void o311_updates_list(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                       const char *base);
void o311_update_submit(struct o311_post *p);

#endif
