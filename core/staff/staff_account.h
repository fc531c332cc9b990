/* Staff: roles and the scope rule (who may see and change which case), argon2id passwords
 * verified off the event loop, and session tokens with a bounded cache.
 *
 * Roles: officer and supervisor work their own department's cases (optionally only some of
 * its districts); oversight reads every department and changes nothing; admin does anything.
 * A case outside someone's scope does not exist for them (404): the answer reveals nothing.
 *
 * Passwords are libsodium crypto_pwhash_str strings (argon2id, OPSLIMIT/MEMLIMIT
 * INTERACTIVE). Verifying one costs tens of milliseconds and 64 MiB, so it runs on a small
 * pool of worker threads; the result comes back on the loop through a pipe the loop watches.
 *
 * Tokens are 32 random bytes in base64url (43 characters); the database keeps their SHA-256
 * (staff_tokens). Like core/cases/citizen_auth.c, a resolved token is cached for at most
 * RB_STAFF_CACHE_TTL seconds, so a token revoked or an account disabled by another process
 * stops working here within that time; rb_staff_forget takes effect at once. */
#ifndef RB_STAFF_H
#define RB_STAFF_H

#include <sodium.h>

#include "base/common.h"
#include "base/phone.h"

struct event_base;
struct rb_config;
struct rb_db;
struct rb_staff;

#define RB_ESTAFF_DENIED (-50) /* in scope, but this role may not do this (403) */

#define RB_STAFF_TOKEN_LEN 43 /* base64url of 32 bytes, no padding */
#define RB_STAFF_TOKEN_TTL (12 * 3600)
#define RB_STAFF_CACHE_TTL 30.0
#define RB_STAFF_CACHE_SLOTS 4096u
#define RB_STAFF_MAX_DISTRICTS 16
#define RB_STAFF_LOCK_FAILURES 5    /* failed sign-ins in a row that lock an account */
#define RB_STAFF_LOCK_SECONDS (15 * 60)
#define RB_STAFF_PW_THREADS 2
#define RB_STAFF_PW_QUEUE 64        /* verifications queued or running; more: RB_EAGAIN */
#define RB_STAFF_PASSWORD_MAX 1024

/* agent: calls citizens of the outreach sample (docs/feedback.md); sees no case. */
enum rb_staff_role {
    RB_STAFF_OFFICER,
    RB_STAFF_SUPERVISOR,
    RB_STAFF_OVERSIGHT,
    RB_STAFF_ADMIN,
    RB_STAFF_AGENT
};

struct rb_staff_user {
    long long id;
    char username[65];
    char display_name[201];
    enum rb_staff_role role;
    char department[65];    /* "" for oversight and admin */
    int n_districts;        /* 0: all districts of the department */
    char districts[RB_STAFF_MAX_DISTRICTS][65];
    char office[65];        /* "" unless they work at an office (submits its transactions) */
};

/* "officer", ... ; NULL out of range. Static strings. */
const char *rb_staff_role_str(enum rb_staff_role r);
/* RB_OK or RB_EINVAL (out untouched). */
int rb_staff_role_from_str(const char *s, enum rb_staff_role *out);

/* Fills u->districts from a comma-separated list ("lahore,kasur"; "" for none). Names past
 * RB_STAFF_MAX_DISTRICTS or longer than 64 bytes are RB_EINVAL. */
int rb_staff_set_districts(struct rb_staff_user *u, const char *csv);

/* The scope of an officer or supervisor for a SQL filter: 1 with their districts as "a,b"
 * in out ("" for all of their department's), 0 (out "") for the roles that see every
 * department. out must hold RB_STAFF_DISTRICTS_CSV bytes. */
#define RB_STAFF_DISTRICTS_CSV (RB_STAFF_MAX_DISTRICTS * 66)
int rb_staff_scoped(const struct rb_staff_user *u, char *out);

/* Does `official` (the name a complaint gives) name this person? Compares, ignoring case and
 * surrounding or repeated blanks, with the display name and with the username. 0 for an
 * empty or NULL official. */
int rb_staff_names_match(const char *official, const char *display_name, const char *username);

/* The scope rule for one case (department, district and named official as stored; NULLs
 * allowed). write: the request would change the case. RB_OK, RB_ENOTFOUND (answer 404: out of
 * scope, or the case names this very officer or supervisor), or RB_ESTAFF_DENIED (answer 403:
 * oversight trying to change something). */
int rb_staff_scope(const struct rb_staff_user *u, const char *department, const char *district,
                   const char *names_official, int write);

/* Role rules finer than scope (the case is already in scope):
 * assigning a case to someone else and recording an action against an official are for
 * supervisors and admins; an officer may assign a case to themself. RB_OK or
 * RB_ESTAFF_DENIED. */
int rb_staff_may_assign(const struct rb_staff_user *u, const char *target_username);
int rb_staff_may_act_on_official(const struct rb_staff_user *u);

/* A staff member's e-mail address as the staff.email CHECK takes it: one @ with text on
 * both sides, no blanks, at most 254 bytes. RB_OK or RB_EINVAL. */
int rb_staff_email_check(const char *email);

/* A new account as the CLI (rabtad staff add) and the staff API (POST /api/v1/staff/accounts)
 * take it; NULL for what is not given. All borrowed. */
struct rb_staff_account {
    const char *username, *role, *department, *name, *districts, *phone, *email, *office;
    char e164[RB_PHONE_MAX]; /* filled by rb_staff_account_check: the phone as E.164 */
};
#define RB_STAFF_PASSWORD_MIN 8
/* Same rule as the staff.username CHECK: 1-64 of [A-Za-z0-9._@-]. 1 or 0. */
int rb_staff_username_ok(const char *s);
/* Checks a new account against the rules and the configuration (role, a department for the
 * scoped roles and none for the others, known department and districts, phone, e-mail, name
 * length) and normalises the phone into a->e164. opt prefixes each field's name in the
 * message ("--" for the CLI's options, "" for the API's fields). RB_OK, or RB_EINVAL with
 * one sentence in why. */
int rb_staff_account_check(const struct rb_config *cfg, struct rb_staff_account *a,
                           const char *opt, char *why, size_t whylen);
/* The statements that change accounts, shared by the CLI and the staff API.
 * add: $1 username $2 display name $3 hash $4 role $5 department $6 districts ("{a,b}")
 *      $7 phone $8 email $9 office; a row (id) unless the username is taken.
 * disable: $1 username; a row unless there is no such account; revokes its tokens.
 * passwd: $1 username $2 hash; a row unless there is no such account; clears the lock and
 *      the failed sign-ins, revokes its tokens. */
extern const char rb_staff_add_sql[], rb_staff_disable_sql[], rb_staff_passwd_sql[];

/* Blocking (CLI only): hashes password into out. RB_OK or RB_ERR (out of memory in argon2). */
int rb_staff_hash_password(const char *password, char out[crypto_pwhash_STRBYTES]);

/* A new random password to show once: 20 characters of base64url (120 bits). */
#define RB_STAFF_GENERATED_LEN 20
void rb_staff_password_new(char out[RB_STAFF_GENERATED_LEN + 1]);

/* A new random token (RB_STAFF_TOKEN_LEN characters and a NUL). */
void rb_staff_token_new(char out[RB_STAFF_TOKEN_LEN + 1]);

/* ---- the loop side: password pool and token cache ---- */

/* base and db are borrowed. Starts the worker threads and computes the dummy hash that
 * unknown users are verified against. NULL if threads or the pipe cannot be made (logged). */
struct rb_staff *rb_staff_new(struct event_base *base, struct rb_db *db);
/* Stops and joins the workers; verifications still queued are dropped without their
 * callback. */
void rb_staff_free(struct rb_staff *s);

/* ok: 1 if password matches hash. Called on the loop, exactly once, never from inside
 * rb_staff_verify. */
typedef void (*rb_staff_verify_fn)(int ok, void *arg);
/* hash NULL: verify against the dummy hash (always ok = 0, same cost). Both strings are
 * copied (the password copy is wiped after use). RB_OK, RB_EAGAIN (queue full: fn not
 * called), RB_EINVAL (password too long: fn not called). */
int rb_staff_verify(struct rb_staff *s, const char *hash, const char *password,
                    rb_staff_verify_fn fn, void *arg);
/* hash: the argon2id string of the password, or NULL (out of memory in argon2). Borrowed
 * for the call; wiped after it. */
typedef void (*rb_staff_hash_fn)(const char *hash, void *arg);
/* Hashes a password on the pool's threads (it costs what a verification costs). fn is called
 * on the loop exactly once, never from inside this. RB_OK, RB_EAGAIN (queue full), RB_EINVAL
 * (too long): fn not called. */
int rb_staff_hash(struct rb_staff *s, const char *password, rb_staff_hash_fn fn, void *arg);
/* Verifications queued or running. */
int rb_staff_pending(const struct rb_staff *s);

/* u is NULL when the token is unknown, expired, revoked or its account disabled (err NULL),
 * or on a database failure (err set). u is borrowed for the callback. */
typedef void (*rb_staff_auth_fn)(const struct rb_staff_user *u, const char *err, void *arg);
/* Resolves a bearer token. fn is called exactly once, possibly before this returns (cache
 * hit). RB_OK, RB_EINVAL (malformed: fn not called), RB_EAGAIN (database queue full). */
int rb_staff_auth(struct rb_staff *s, const char *token, rb_staff_auth_fn fn, void *arg);
/* Drops a token from the cache (after revoking it in the database). */
void rb_staff_forget(struct rb_staff *s, const char *token);
/* Drops every cached token of one account (after disabling it or revoking its tokens in the
 * database), so that it stops working on this process at once. */
void rb_staff_forget_user(struct rb_staff *s, long long staff_id);

#endif
