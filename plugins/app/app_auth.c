/* app plugin: citizens sign in with a one-time code sent by SMS.
 *
 *   POST /api/v1/register {phone, language?}  → 202 {"expires_in": N}; the code goes out as SMS
 *   POST /api/v1/verify   {phone, code}       → 200 {"token", "expires_at"}
 *   POST /api/v1/logout   (Bearer token)      → 204
 *
 * Codes: 6 digits from randombytes_uniform, stored as SHA-256(salt || code) with a random
 * 16-byte salt per code (migrations/0004_citizen_auth.sql), never in clear — except in the SMS
 * itself, which is in `messages` for the SMS work to deliver. A new code retires the phone's
 * earlier ones. Every guess spends one of the code's attempts BEFORE it is compared (one UPDATE
 * ... RETURNING), so parallel guesses cannot get past the limit; the comparison is constant
 * time (sodium_memcmp).
 *
 * Tokens: 32 random bytes, base64url without padding (43 characters); citizen_tokens keeps the
 * SHA-256 of the token text, which is what the host's citizen_auth looks up.
 *
 * Privacy: register answers the same whether or not the phone belongs to a known citizen, and
 * verify looks at codes only, so neither reveals who is registered.
 *
 * Rate limits, per phone and per client address: a row per phone in citizen_otp_limits and
 * one per address (the TCP peer, an IPv6 client by its /64; X-Forwarded-For is not trusted) in
 * citizen_otp_address_limits hold the times of the latest codes; the statement that takes a
 * code locks both rows (SELECT ... FOR UPDATE, INSERT ... ON CONFLICT DO UPDATE) and appends
 * to them only while their limits allow, so concurrent requests are counted exactly, by every
 * process on the database. A refusal is 429 with Retry-After (docs/api.md). */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "app.h"

static const struct rb_host_api *api;
static const struct rb_app_conf *conf; /* borrowed from app.c */

#define SALT_BYTES 16
#define CODE_DIGITS 6
#define TOKEN_BYTES 32

/* ---- POST /api/v1/register ---------------------------------------------------------------- */

/* One statement (rabta_citizen_otp_issue, migration 0061: the schema contract of
 * docs/plugins.md), so the limits, the code, the SMS and the job that sends it commit together:
 *   $1 phone (E.164)   $2 language   $3 salt   $4 code hash   $5 SMS text   $6 code ttl (s)
 *   $7 attempts        $8 codes per window     $9 window (s)  $10 seconds between codes
 *   $11 client address (key)  $12 codes per address per window (0: no limit)
 *   $13 address window (s)    $14 this request's random token (see migrations/0016)
 *   $15 codes per phone per day (the phone's codes of the last 24 hours in citizen_otps,
 *       which keeps them a day past their expiry)
 * The phone's row is locked and checked first; only a request the phone allows is counted
 * against the address; only one the address allows too is counted against the phone (the
 * window arithmetic is rabta_rate_* of migrations/0016). Answers one row: issued (bool), the
 * limit that refused ("phone" or "address") and its retry_after (seconds): for the address,
 * from the row as the upsert left it (its newest version); for the phone, from the row as
 * locked, or, when another request created it after this statement began (not visible), as
 * if it held only codes of this very moment. In such a race a request the phone then
 * refuses may have been counted against its address. */
static const char register_sql[] =
    "SELECT issued, refused_by, retry_after FROM rabta_citizen_otp_issue($1, $2, $3::bytea,"
    "  $4::bytea, $5, $6::float8, $7::int, $8::int, $9::float8, $10::float8, $11, $12::int,"
    "  $13::float8, $14, $15::int)";

static void registered(const struct rb_db_result *res, const char *err, void *arg)
{
    struct rb_http_req *req = arg;
    if (err || api->db_ntuples(res) != 1) {
        api->reply_error(req, 503, "unavailable", "no code could be sent right now; try again "
                                                  "in a minute");
        return;
    }
    const char *issued = api->db_value(res, 0, 0);
    if (!issued || strcmp(issued, "t") != 0) {
        const char *by = api->db_value(res, 0, 1), *ra = api->db_value(res, 0, 2);
        int address = by && strcmp(by, "address") == 0, day = by && strcmp(by, "day") == 0;
        long long secs = ra ? atoll(ra) : 30;
        if (secs < 1)
            secs = 1;
        char header[24];
        snprintf(header, sizeof(header), "%lld", secs);
        api->reply_header(req, "Retry-After", header); /* also "retry_after" in the body */
        api->reply_error(req, 429, "rate_limited",
                         "too many codes were asked %s; try again in %lld second%s",
                         address ? "from this address"
                         : day   ? "for this phone today"
                                 : "for this phone",
                         secs,
                         secs == 1 ? "" : "s");
        return;
    }
    json_t *out = json_pack("{s:I}", "expires_in", (json_int_t)llround(conf->otp_ttl));
    rb_app_reply_json(req, 202, out);
}

/* The key of the per-address limit: the client's IPv4 address, or its IPv6 /64 (one
 * subscriber's network: a client may pick any address in it). */
static void address_key(const char *peer, char out[64])
{
    struct in6_addr a6;
    struct in_addr a4;
    char buf[INET6_ADDRSTRLEN];
    if (peer && strchr(peer, ':') && inet_pton(AF_INET6, peer, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            memcpy(&a4, &a6.s6_addr[12], 4);
            if (inet_ntop(AF_INET, &a4, buf, sizeof(buf))) {
                snprintf(out, 64, "%s", buf);
                return;
            }
        }
        memset(&a6.s6_addr[8], 0, 8);
        if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf))) {
            snprintf(out, 64, "%s/64", buf);
            return;
        }
    }
    snprintf(out, 64, "%.63s", peer && peer[0] ? peer : "unknown");
}

/* The SMS: template "otp" of lua/templates.lua in the citizen's language; the code in ASCII
 * digits. RB_OK, or RB_ERR when the template does not render (logged). */
static int sms_text(struct rb_plugin_ctx *ctx, char *out, size_t n, const char *language,
                    const char *code)
{
    char params[96], why[200];
    snprintf(params, sizeof(params), "{\"code\":\"%s\",\"minutes\":%ld}", code,
             (long)ceil(conf->otp_ttl / 60.0));
    char *text = api->template_render(ctx, "otp", language, params, why, sizeof(why));
    sodium_memzero(params, sizeof(params));
    if (!text) {
        api->log(ctx, RB_LOG_ERROR, "no one-time code SMS: %s", why);
        return RB_ERR;
    }
    snprintf(out, n, "%s", text);
    sodium_memzero(text, strlen(text));
    free(text);
    return RB_OK;
}

static void code_hash(const unsigned char salt[SALT_BYTES], const char *code,
                      unsigned char out[crypto_hash_sha256_BYTES])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, salt, SALT_BYTES);
    crypto_hash_sha256_update(&st, (const unsigned char *)code, strlen(code));
    crypto_hash_sha256_final(&st, out);
}

/* Normalises the "phone" field into e164, or answers 400/422 and returns -1. */
static int phone_field(struct rb_http_req *req, json_t *o, char e164[24])
{
    const char *phone, *why = NULL;
    if (rb_app_opt_str(req, o, "phone", &phone) != 0)
        return -1;
    if (!phone) {
        api->reply_error(req, 400, "missing_field", "field \"phone\" is required");
        return -1;
    }
    if (api->phone_normalize(phone, e164, 24, &why) != RB_OK) {
        api->reply_error(req, 422, "invalid_phone", "field \"phone\": %s",
                         why ? why : "not a phone number");
        return -1;
    }
    return 0;
}

static void on_register(struct rb_http_req *req, void *arg)
{
    static const char *const fields[] = {"phone", "language", NULL};
    json_t *o = rb_app_body_object(req);
    if (!o)
        return;
    char phone[24];
    const char *language;
    if (rb_app_known_fields(req, o, fields) != 0 || phone_field(req, o, phone) != 0 ||
        rb_app_opt_str(req, o, "language", &language) != 0) {
        json_decref(o);
        return;
    }
    if (!language)
        language = "ur";
    if (strcmp(language, "ur") != 0 && strcmp(language, "en") != 0) {
        api->reply_error(req, 400, "invalid_field", "field \"language\": expected \"ur\" or "
                                                    "\"en\"");
        json_decref(o);
        return;
    }

    char code[CODE_DIGITS + 1];
    snprintf(code, sizeof(code), "%06u", (unsigned)randombytes_uniform(1000000));
    unsigned char salt[SALT_BYTES], hash[crypto_hash_sha256_BYTES];
    randombytes_buf(salt, sizeof(salt));
    code_hash(salt, code, hash);
    char salt_hex[2 * SALT_BYTES + 3], hash_hex[2 * sizeof(hash) + 3], text[512];
    rb_app_bytea(salt, sizeof(salt), salt_hex);
    rb_app_bytea(hash, sizeof(hash), hash_hex);
    int ok = sms_text(arg, text, sizeof(text), language, code);
    sodium_memzero(code, sizeof(code));
    if (ok != RB_OK) {
        api->reply_error(req, 503, "unavailable", "no code could be sent right now; try again "
                                                  "in a minute");
        json_decref(o);
        return;
    }

    char ttl[32], attempts[24], per[24], window[32], interval[32], addr[64], per_addr[24],
        addr_window[32], per_day[24];
    snprintf(ttl, sizeof(ttl), "%.3f", conf->otp_ttl);
    snprintf(attempts, sizeof(attempts), "%lld", conf->otp_attempts);
    snprintf(per, sizeof(per), "%lld", conf->otp_per_window);
    snprintf(window, sizeof(window), "%.3f", conf->otp_window);
    snprintf(interval, sizeof(interval), "%.3f", conf->otp_interval);
    address_key(api->req_peer(req), addr);
    unsigned char nonce[8];
    char token[2 * sizeof(nonce) + 3];
    randombytes_buf(nonce, sizeof(nonce));
    rb_app_bytea(nonce, sizeof(nonce), token);
    snprintf(per_addr, sizeof(per_addr), "%lld", conf->otp_per_address);
    snprintf(addr_window, sizeof(addr_window), "%.3f", conf->otp_address_window);
    snprintf(per_day, sizeof(per_day), "%lld", conf->otp_per_day);
    const char *params[15] = {phone,    language, salt_hex, hash_hex, text,
                              ttl,      attempts, per,      window,   interval,
                              addr,     per_addr, addr_window, token, per_day};
    int rc = api->db_query(arg, register_sql, 15, params, registered, req);
    sodium_memzero(text, sizeof(text));
    json_decref(o);
    if (rc != RB_OK)
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
}

/* ---- POST /api/v1/verify ------------------------------------------------------------------ */

/* Spends one attempt of the phone's newest live code and hands back what to compare with
 * (rabta_citizen_otp_attempt, migration 0061). */
static const char attempt_sql[] =
    "SELECT code_id, salt, code_hash, attempts_left FROM rabta_citizen_otp_attempt($1)";

/* The code was right: use it up, find or create the citizen, mark the phone verified and
 * store the token's hash (rabta_citizen_sign_in). $1 code id  $2 token hash  $3 ttl (s). */
static const char signin_sql[] =
    "SELECT to_char(expires_at AT TIME ZONE 'UTC', " RB_APP_TS ")"
    " FROM rabta_citizen_sign_in($1::bigint, $2::bytea, $3::float8)";

struct verifying {
    struct rb_plugin_ctx *ctx;
    struct rb_http_req *req;
    char code[CODE_DIGITS + 1];
    char token[64]; /* base64url of TOKEN_BYTES */
};

static void verifying_free(struct verifying *v)
{
    sodium_memzero(v, sizeof(*v));
    free(v);
}

static void no_code(struct rb_http_req *req)
{
    api->reply_error(req, 401, "code_invalid",
                     "there is no valid code for this phone: it expired, was already used or "
                     "had too many wrong attempts; ask for a new one");
}

static void signed_in(const struct rb_db_result *res, const char *err, void *arg)
{
    struct verifying *v = arg;
    if (err) {
        api->reply_error(v->req, 503, "unavailable", "you could not be signed in right now; "
                                                     "try again");
    } else if (api->db_ntuples(res) != 1) {
        no_code(v->req); /* used or expired between the two statements */
    } else {
        json_t *out = json_pack("{s:s, s:s}", "token", v->token, "expires_at",
                                api->db_value(res, 0, 0));
        rb_app_reply_json(v->req, 200, out);
    }
    verifying_free(v);
}

static void attempted(const struct rb_db_result *res, const char *err, void *arg)
{
    struct verifying *v = arg;
    if (err) {
        api->reply_error(v->req, 503, "unavailable", "the code cannot be checked right now; "
                                                     "try again");
        verifying_free(v);
        return;
    }
    if (api->db_ntuples(res) != 1) {
        no_code(v->req);
        verifying_free(v);
        return;
    }
    unsigned char salt[SALT_BYTES], want[crypto_hash_sha256_BYTES], got[sizeof(want)];
    size_t salt_len = 0, want_len = 0;
    const char *salt_hex = api->db_value(res, 0, 1), *want_hex = api->db_value(res, 0, 2);
    if (!salt_hex || !want_hex || strncmp(salt_hex, "\\x", 2) != 0 ||
        strncmp(want_hex, "\\x", 2) != 0 ||
        sodium_hex2bin(salt, sizeof(salt), salt_hex + 2, strlen(salt_hex + 2), NULL, &salt_len,
                       NULL) != 0 ||
        sodium_hex2bin(want, sizeof(want), want_hex + 2, strlen(want_hex + 2), NULL, &want_len,
                       NULL) != 0 ||
        salt_len != sizeof(salt) || want_len != sizeof(want)) {
        api->log(v->ctx, RB_LOG_ERROR, "citizen_otps row %s has a malformed salt or hash",
                 api->db_value(res, 0, 0));
        api->reply_error(v->req, 500, "internal_error", "the code cannot be checked");
        verifying_free(v);
        return;
    }
    code_hash(salt, v->code, got);
    int match = sodium_memcmp(got, want, sizeof(want)) == 0;
    sodium_memzero(got, sizeof(got));
    if (!match) {
        long left = atol(api->db_value(res, 0, 3));
        if (left > 0)
            api->reply_error(v->req, 401, "wrong_code",
                             "the code is wrong; %ld attempt%s left", left,
                             left == 1 ? "" : "s");
        else
            api->reply_error(v->req, 401, "wrong_code",
                             "the code is wrong and may not be tried again; ask for a new one");
        verifying_free(v);
        return;
    }

    unsigned char raw[TOKEN_BYTES], th[crypto_hash_sha256_BYTES];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(v->token, sizeof(v->token), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    crypto_hash_sha256(th, (const unsigned char *)v->token, strlen(v->token));
    char th_hex[2 * sizeof(th) + 3], ttl[32];
    rb_app_bytea(th, sizeof(th), th_hex);
    snprintf(ttl, sizeof(ttl), "%.3f", conf->token_ttl);
    const char *params[3] = {api->db_value(res, 0, 0), th_hex, ttl};
    if (api->db_query(v->ctx, signin_sql, 3, params, signed_in, v) != RB_OK) {
        api->reply_error(v->req, 503, "unavailable", "the server is overloaded; try again");
        verifying_free(v);
    }
}

/* The code as typed: 6 digits, ASCII or Urdu/Arabic-Indic (folded to ASCII), spaces ignored.
 * 0, or -1 when it is not a 6-digit code. */
static int parse_code(const char *in, char out[CODE_DIGITS + 1])
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = 0;
    while (*s) {
        int d = -1;
        if (*s >= '0' && *s <= '9') {
            d = *s - '0';
            s++;
        } else if (*s == ' ' || *s == '-') {
            s++;
            continue;
        } else if (s[0] == 0xD9 && s[1] >= 0xA0 && s[1] <= 0xA9) { /* U+0660..0669 */
            d = s[1] - 0xA0;
            s += 2;
        } else if (s[0] == 0xDB && s[1] >= 0xB0 && s[1] <= 0xB9) { /* U+06F0..06F9 */
            d = s[1] - 0xB0;
            s += 2;
        } else {
            return -1;
        }
        if (n == CODE_DIGITS)
            return -1;
        out[n++] = (char)('0' + d);
    }
    out[n] = '\0';
    return n == CODE_DIGITS ? 0 : -1;
}

static void on_verify(struct rb_http_req *req, void *arg)
{
    static const char *const fields[] = {"phone", "code", NULL};
    json_t *o = rb_app_body_object(req);
    if (!o)
        return;
    char phone[24];
    const char *code;
    if (rb_app_known_fields(req, o, fields) != 0 || phone_field(req, o, phone) != 0 ||
        rb_app_opt_str(req, o, "code", &code) != 0) {
        json_decref(o);
        return;
    }
    if (!code) {
        api->reply_error(req, 400, "missing_field", "field \"code\" is required");
        json_decref(o);
        return;
    }
    struct verifying *v = calloc(1, sizeof(*v));
    if (!v) {
        api->reply_error(req, 503, "unavailable", "out of memory");
        json_decref(o);
        return;
    }
    v->ctx = arg;
    v->req = req;
    int bad = parse_code(code, v->code);
    json_decref(o);
    if (bad) {
        /* Not a guess at all: costs no attempt. */
        api->reply_error(req, 400, "invalid_field",
                         "field \"code\": expected the %d digits from the SMS", CODE_DIGITS);
        verifying_free(v);
        return;
    }
    const char *params[1] = {phone};
    if (api->db_query(v->ctx, attempt_sql, 1, params, attempted, v) != RB_OK) {
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
        verifying_free(v);
    }
}

/* ---- POST /api/v1/logout ------------------------------------------------------------------ */

static const char logout_sql[] =
    "SELECT revoked FROM rabta_citizen_sign_out($1::bytea)";

struct logging_out {
    struct rb_plugin_ctx *ctx;
    struct rb_http_req *req;
    char *token; /* owned */
};

static void logged_out(const struct rb_db_result *res, const char *err, void *arg)
{
    struct logging_out *l = arg;
    if (err) {
        api->reply_error(l->req, 503, "unavailable", "you could not be signed out right now; "
                                                     "try again");
    } else {
        /* Forget it here even if it was already revoked elsewhere. */
        api->citizen_forget(l->ctx, l->token);
        if (api->db_ntuples(res) == 1)
            api->reply(l->req, 204, NULL, "", 0);
        else
            api->reply_error(l->req, 401, "unauthorized",
                             "your sign-in has expired or is not valid");
    }
    sodium_memzero(l->token, strlen(l->token));
    free(l->token);
    free(l);
}

static void on_logout(struct rb_http_req *req, void *arg)
{
    int malformed;
    const char *token = rb_app_bearer(req, &malformed);
    if (!token) {
        api->reply_error(req, 401, "unauthorized", "expected Authorization: Bearer <token>");
        return;
    }
    struct logging_out *l = calloc(1, sizeof(*l));
    char *copy = strdup(token);
    if (!l || !copy) {
        free(l);
        free(copy);
        api->reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    l->ctx = arg;
    l->req = req;
    l->token = copy;
    unsigned char th[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(th, (const unsigned char *)token, strlen(token));
    char th_hex[2 * sizeof(th) + 3];
    rb_app_bytea(th, sizeof(th), th_hex);
    const char *params[1] = {th_hex};
    if (api->db_query(l->ctx, logout_sql, 1, params, logged_out, l) != RB_OK) {
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
        free(l->token);
        free(l);
    }
}

int rb_app_auth_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host,
                     const struct rb_app_conf *c)
{
    api = host;
    conf = c;
    if (api->http_route(ctx, RB_HTTP_POST, "/api/v1/register", on_register, ctx) != RB_OK ||
        api->http_route(ctx, RB_HTTP_POST, "/api/v1/verify", on_verify, ctx) != RB_OK ||
        api->http_route(ctx, RB_HTTP_POST, "/api/v1/logout", on_logout, ctx) != RB_OK)
        return RB_ERR;
    return RB_OK;
}
