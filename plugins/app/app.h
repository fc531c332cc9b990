/* app plugin: what its files share (app.c, app_util.c, app_auth.c, app_citizen.c).
 *
 * The plugin sees only the host API (rabta/plugin.h); nothing here is exported (the plugin is
 * built with hidden visibility). Each file keeps its own copy of the host API pointer, set by
 * its *_init function from app_init. */
#ifndef RB_APP_H
#define RB_APP_H

#include <stddef.h>

#include <jansson.h>
#include <rabta/plugin.h>

/* Limits of the citizen sign-in, from the plugin's "config:" block (docs/api.md). */
struct rb_app_conf {
    double otp_ttl;           /* seconds a code lives (300) */
    long long otp_attempts;   /* guesses per code (5) */
    long long otp_per_window; /* codes per phone per otp_window (3) */
    double otp_window;        /* seconds (900) */
    double otp_interval;      /* seconds between two codes to one phone (30) */
    long long otp_per_day;    /* codes per phone in 24 hours (10) */
    long long otp_per_address;  /* codes per client address per otp_address_window (60);
                                   0: no per-address limit */
    double otp_address_window;  /* seconds (600) */
    double token_ttl;         /* seconds a sign-in token lives (30 days) */
    size_t photo_max;         /* bytes of one photo, decoded (512 KiB); server.max_body must
                                 allow its base64 (4/3 of it) plus the case */
    long long status_guesses; /* wrong phone digits per tracking number per hour (10), then
                                 429 until the hour allows more; 0: no limit */
};

/* The longest text a citizen may send in one comment (code points), as intake's case text. */
#define RB_APP_TEXT_MAX 5000

/* Timestamps leave the server as ISO 8601 UTC with seconds: to_char(x AT TIME ZONE 'UTC',
 * RB_APP_TS). A SQL fragment. */
#define RB_APP_TS "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

/* ---- app_util.c --------------------------------------------------------------------------- */

void rb_app_util_init(const struct rb_host_api *host);

/* Answers with body serialised compactly; body is stolen. */
void rb_app_reply_json(struct rb_http_req *req, int status, json_t *body);

/* A write whose database outcome is unknown (the statement reached the database, then the
 * connection was lost or timed out): 503 outcome_unknown saying that `what` may or may not
 * have been saved, then `retry` (a sentence on how to retry safely). */
void rb_app_outcome_unknown(struct rb_http_req *req, const char *what, const char *retry);

/* 503 for a failed write: outcome_unknown when err says so, else "nothing was saved". */
void rb_app_write_failed(struct rb_http_req *req, const char *what, const char *err);

/* A case's SLA as every API shows it, from the JSON text rabta_sla_view() gives
 * ({"deadline", "time_left", "paused"}; docs/api.md); null for NULL or text that is not an
 * object. Returns a new reference. */
json_t *rb_app_sla_json(const char *text);
/* For answers written without building a JSON tree: append to out[*len..cap) and advance
 * *len; 0, or -1 when it does not fit (*len is then left as it was). rb_app_json_str writes s
 * as a JSON string (quoted, escaped), or null for NULL; rb_app_json_raw writes s as it is. */
int rb_app_json_str(char *out, size_t cap, size_t *len, const char *s);
int rb_app_json_raw(char *out, size_t cap, size_t *len, const char *s);

/* Parses the request body as a JSON object, or answers 400/415 and returns NULL. Returns a new
 * reference; caller decrefs. */
json_t *rb_app_body_object(struct rb_http_req *req);

/* 0 when every key of o is in allowed (NULL-terminated); else answers 400 unknown_field and
 * returns -1. */
int rb_app_known_fields(struct rb_http_req *req, json_t *o, const char *const *allowed);

/* Optional fields: absent or null leaves the default (NULL, 0, NAN). -1 (after answering 400
 * invalid_field) on a wrong type. Strings are borrowed from o. */
int rb_app_opt_str(struct rb_http_req *req, json_t *o, const char *key, const char **out);
int rb_app_opt_bool(struct rb_http_req *req, json_t *o, const char *key, int *out);
int rb_app_opt_num(struct rb_http_req *req, json_t *o, const char *key, double *out);

/* Checks text a citizen typed, by intake's rules: strict UTF-8, no NUL or control characters
 * except tab and newline, no bidirectional overrides or noncharacters, something visible,
 * at most max code points. 0, or -1 with *why set to a static phrase that reads after a
 * field name ("is too long (5003 characters; at most 5000)" is built by the caller). */
int rb_app_text_check(const char *s, size_t len, size_t max, size_t *chars, const char **why);
/* rb_app_text_check of field's text with max RB_APP_TEXT_MAX: 0, or -1 after answering 422
 * invalid_text with a sentence naming field. */
int rb_app_text_field(struct rb_http_req *req, const char *field, const char *text);

/* The bearer token of the request (text after "Bearer "), or NULL when there is no
 * Authorization header. *malformed is set to 1 when the header is there but not a bearer
 * token. Borrowed from the request. */
const char *rb_app_bearer(struct rb_http_req *req, int *malformed);

/* Runs fn(req, citizen_id, arg) for a signed-in citizen, or answers 401 (no token, malformed,
 * unknown, expired, revoked) or 503 itself. fn is called at most once, possibly before this
 * returns. */
typedef void (*rb_app_authed_fn)(struct rb_http_req *req, long long citizen_id, void *arg);
void rb_app_authenticate(struct rb_plugin_ctx *ctx, struct rb_http_req *req,
                         rb_app_authed_fn fn, void *arg);

/* "\\x" + lower-case hex of n bytes (a bytea literal for a query parameter) into out, which
 * must hold 2 * n + 3 bytes. */
void rb_app_bytea(const unsigned char *in, size_t n, char *out);

/* ---- app_auth.c: POST /api/v1/register, /verify, /logout ---------------------------------- */

int rb_app_auth_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host,
                     const struct rb_app_conf *conf /* borrowed; lives as long as the plugin */);

/* ---- app_citizen.c: my cases, timeline, comments, rating ---------------------------------- */

int rb_app_citizen_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host);

#endif
