/* Staff roles, scope, passwords off the loop, session tokens. See staff.h. */
#include "staff/staff_account.h"

#include "base/token_cache.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/log.h"
#include "cases/citizen_auth.h" /* rb_auth_token_hash: the same SHA-256 bytea literal */
#include "config/config.h"
#include "db/db.h"

#define PROBE 8

static const char *const role_names[] = {"officer", "supervisor", "oversight", "admin", "agent"};

const char *rb_staff_role_str(enum rb_staff_role r)
{
    return (unsigned)r < RB_ARRAY_LEN(role_names) ? role_names[r] : NULL;
}

int rb_staff_role_from_str(const char *s, enum rb_staff_role *out)
{
    for (size_t i = 0; s && i < RB_ARRAY_LEN(role_names); i++)
        if (strcmp(s, role_names[i]) == 0) {
            *out = (enum rb_staff_role)i;
            return RB_OK;
        }
    return RB_EINVAL;
}

int rb_staff_set_districts(struct rb_staff_user *u, const char *csv)
{
    u->n_districts = 0;
    const char *p = csv ? csv : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 0) {
            if (u->n_districts == RB_STAFF_MAX_DISTRICTS || n >= sizeof(u->districts[0]))
                return RB_EINVAL;
            memcpy(u->districts[u->n_districts], p, n);
            u->districts[u->n_districts][n] = '\0';
            u->n_districts++;
        }
        p += n + (end ? 1 : 0);
    }
    return RB_OK;
}

/* Next word of s (blank-separated) into *w and *n; returns the rest, or NULL at the end. */
static const char *next_word(const char *s, const char **w, size_t *n)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    if (!*s)
        return NULL;
    *w = s;
    while (*s && !isspace((unsigned char)*s))
        s++;
    *n = (size_t)(s - *w);
    return s;
}

/* Equal word by word, ignoring case and how many blanks separate the words. */
static int same_words(const char *a, const char *b)
{
    for (;;) {
        const char *wa, *wb;
        size_t na = 0, nb = 0;
        const char *ra = next_word(a, &wa, &na), *rb = next_word(b, &wb, &nb);
        if (!ra || !rb)
            return !ra && !rb;
        if (na != nb || strncasecmp(wa, wb, na) != 0)
            return 0;
        a = ra;
        b = rb;
    }
}

int rb_staff_names_match(const char *official, const char *display_name, const char *username)
{
    const char *w;
    size_t n;
    if (!official || !next_word(official, &w, &n))
        return 0;
    if (display_name && next_word(display_name, &w, &n) && same_words(official, display_name))
        return 1;
    return username && *username && same_words(official, username);
}

int rb_staff_scoped(const struct rb_staff_user *u, char *out)
{
    int scoped = u->role == RB_STAFF_OFFICER || u->role == RB_STAFF_SUPERVISOR;
    out[0] = '\0';
    for (int i = 0; scoped && i < u->n_districts; i++) {
        if (i)
            strcat(out, ",");
        strcat(out, u->districts[i]);
    }
    return scoped;
}

int rb_staff_scope(const struct rb_staff_user *u, const char *department, const char *district,
                   const char *names_official, int write)
{
    switch (u->role) {
    case RB_STAFF_ADMIN:
        return RB_OK;
    case RB_STAFF_OVERSIGHT:
        return write ? RB_ESTAFF_DENIED : RB_OK;
    case RB_STAFF_OFFICER:
    case RB_STAFF_SUPERVISOR:
        break;
    default:
        return RB_ENOTFOUND;
    }
    if (!department || !u->department[0] || strcmp(department, u->department) != 0)
        return RB_ENOTFOUND;
    if (u->n_districts > 0) {
        int in = 0;
        for (int i = 0; district && i < u->n_districts && !in; i++)
            in = strcmp(district, u->districts[i]) == 0;
        if (!in)
            return RB_ENOTFOUND;
    }
    /* A complaint about an official never reaches that official. */
    if (rb_staff_names_match(names_official, u->display_name, u->username))
        return RB_ENOTFOUND;
    return RB_OK;
}

int rb_staff_may_assign(const struct rb_staff_user *u, const char *target_username)
{
    if (u->role == RB_STAFF_ADMIN || u->role == RB_STAFF_SUPERVISOR)
        return RB_OK;
    if (u->role == RB_STAFF_OFFICER && target_username &&
        strcmp(target_username, u->username) == 0)
        return RB_OK;
    return RB_ESTAFF_DENIED;
}

int rb_staff_email_check(const char *email)
{
    const char *at = email ? strchr(email, '@') : NULL;
    size_t n = email ? strlen(email) : 0;
    if (!at || at == email || !at[1] || strchr(at + 1, '@') || n > 254 ||
        strpbrk(email, " \t\r\n\v\f") || strchr(at + 1, '.') == NULL)
        return RB_EINVAL;
    return RB_OK;
}

int rb_staff_may_act_on_official(const struct rb_staff_user *u)
{
    return u->role == RB_STAFF_ADMIN || u->role == RB_STAFF_SUPERVISOR ? RB_OK
                                                                        : RB_ESTAFF_DENIED;
}

int rb_staff_username_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-") == n;
}

/* Every district of csv is configured. RB_OK or RB_EINVAL (why written). */
static int check_districts(const struct rb_config *cfg, const char *csv, const char *opt,
                           char *why, size_t whylen)
{
    struct rb_staff_user u;
    if (rb_staff_set_districts(&u, csv) != RB_OK || strpbrk(csv, "{}\"\\ ") != NULL) {
        snprintf(why, whylen, "%sdistricts is a comma-separated list of at most %d district ids",
                 opt, RB_STAFF_MAX_DISTRICTS);
        return RB_EINVAL;
    }
    for (int i = 0; i < u.n_districts; i++) {
        int found = 0;
        for (size_t d = 0; d < cfg->n_districts && !found; d++)
            found = strcmp(cfg->districts[d].id, u.districts[i]) == 0;
        if (!found) {
            snprintf(why, whylen, "there is no district \"%s\" in the configuration",
                     u.districts[i]);
            return RB_EINVAL;
        }
    }
    return RB_OK;
}

int rb_staff_account_check(const struct rb_config *cfg, struct rb_staff_account *a,
                           const char *opt, char *why, size_t whylen)
{
    enum rb_staff_role role;
    const char *pwhy = NULL;
    if (!a->role || rb_staff_role_from_str(a->role, &role) != RB_OK) {
        snprintf(why, whylen, "%srole is one of officer, supervisor, oversight, admin or agent",
                 opt);
        return RB_EINVAL;
    }
    int scoped = role == RB_STAFF_OFFICER || role == RB_STAFF_SUPERVISOR;
    if (scoped && !a->department)
        snprintf(why, whylen, "%s %s needs %sdepartment (one of config/departments)",
                 role == RB_STAFF_OFFICER ? "an" : "a", a->role, opt);
    else if (!scoped && (a->department || a->districts))
        snprintf(why, whylen, "the %s role covers every department: drop %sdepartment and "
                 "%sdistricts", a->role, opt, opt);
    else if (a->department && !rb_config_department(cfg, a->department))
        snprintf(why, whylen, "there is no department \"%s\" in the configuration",
                 a->department);
    else if (a->phone && rb_phone_normalize(a->phone, a->e164, &pwhy) != RB_OK)
        snprintf(why, whylen, "%sphone \"%s\" is not a phone number (it %s); write it such as "
                 "0300 1234567 or +92 300 1234567", opt, a->phone, pwhy ? pwhy : "is malformed");
    else if (a->email && rb_staff_email_check(a->email) != RB_OK)
        snprintf(why, whylen, "%semail \"%s\" is not an e-mail address such as "
                 "name@punjab.gov.pk", opt, a->email);
    else if (a->name && strlen(a->name) > 200)
        snprintf(why, whylen, "%sname has at most 200 characters", opt);
    else if (a->districts)
        return check_districts(cfg, a->districts, opt, why, whylen);
    else
        return RB_OK;
    return RB_EINVAL;
}

const char rb_staff_add_sql[] =
    "INSERT INTO staff (username, display_name, password_hash, role, department_id, districts,"
    " phone, email, office_id) VALUES ($1, $2, $3, $4, $5, $6::text[], $7, $8, $9)"
    " ON CONFLICT (username) DO NOTHING RETURNING id";
const char rb_staff_disable_sql[] =
    "WITH s AS (UPDATE staff SET disabled_at = coalesce(disabled_at, now())"
    "  WHERE username = $1 RETURNING id),"
    " t AS (UPDATE staff_tokens SET revoked_at = now() FROM s"
    "  WHERE staff_tokens.staff_id = s.id AND revoked_at IS NULL)"
    " SELECT id FROM s";
const char rb_staff_passwd_sql[] =
    "WITH s AS (UPDATE staff SET password_hash = $2, failed_logins = 0,"
    "  locked_until = NULL WHERE username = $1 RETURNING id),"
    " a AS (DELETE FROM staff_login_attempts WHERE username = $1),"
    " t AS (UPDATE staff_tokens SET revoked_at = now() FROM s"
    "  WHERE staff_tokens.staff_id = s.id AND revoked_at IS NULL)"
    " SELECT id FROM s";

int rb_staff_hash_password(const char *password, char out[crypto_pwhash_STRBYTES])
{
    if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return RB_ERR;
    return RB_OK;
}

void rb_staff_token_new(char out[RB_STAFF_TOKEN_LEN + 1])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, RB_STAFF_TOKEN_LEN + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

void rb_staff_password_new(char out[RB_STAFF_GENERATED_LEN + 1])
{
    char tok[RB_STAFF_TOKEN_LEN + 1];
    rb_staff_token_new(tok);
    memcpy(out, tok, RB_STAFF_GENERATED_LEN);
    out[RB_STAFF_GENERATED_LEN] = '\0';
    sodium_memzero(tok, sizeof(tok));
}

/* ---- password pool ------------------------------------------------------------------------ */

struct pw_job {
    struct pw_job *next;
    char hash[crypto_pwhash_STRBYTES];
    char *password; /* owned; wiped before free */
    size_t password_len;
    int ok;
    rb_staff_verify_fn fn;  /* a verification, or */
    rb_staff_hash_fn hfn;   /* a hash (into hash) */
    void *arg;
};

struct rb_staff {
    struct event_base *base; /* borrowed */
    struct rb_db *db;        /* borrowed */
    char dummy[crypto_pwhash_STRBYTES];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pw_job *todo, **todo_tail; /* owned; guarded by mu */
    struct pw_job *done;              /* owned; guarded by mu */
    int pending;                      /* queued or running; loop thread only */
    int stopping;                     /* guarded by mu */
    pthread_t threads[RB_STAFF_PW_THREADS];
    int n_threads;
    int pipe_rd, pipe_wr;
    struct event *wake; /* owned */

    struct rb_token_cache *cache; /* owned: token -> user, RB_STAFF_CACHE_SLOTS */
};

static void free_job(struct pw_job *j)
{
    sodium_memzero(j->hash, sizeof(j->hash));
    if (j->password) {
        sodium_memzero(j->password, j->password_len);
        free(j->password);
    }
    free(j);
}

static void *pw_worker(void *arg)
{
    struct rb_staff *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->todo && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping)
            break;
        struct pw_job *j = s->todo;
        s->todo = j->next;
        if (!s->todo)
            s->todo_tail = &s->todo;
        pthread_mutex_unlock(&s->mu);

        if (j->hfn)
            j->ok = crypto_pwhash_str(j->hash, j->password, j->password_len,
                                      crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                      crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0;
        else
            j->ok = crypto_pwhash_str_verify(j->hash, j->password, j->password_len) == 0;
        sodium_memzero(j->password, j->password_len);

        pthread_mutex_lock(&s->mu);
        j->next = s->done;
        s->done = j;
        char b = 1;
        /* The pipe is non-blocking: when full, a wake-up is pending anyway. */
        ssize_t w = write(s->pipe_wr, &b, 1);
        (void)w;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct rb_staff *s = arg;
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&s->mu);
    struct pw_job *list = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->mu);
    while (list) {
        struct pw_job *j = list;
        list = j->next;
        s->pending--;
        if (j->hfn)
            j->hfn(j->ok ? j->hash : NULL, j->arg);
        else
            j->fn(j->ok, j->arg);
        free_job(j);
    }
}

struct rb_staff *rb_staff_new(struct event_base *base, struct rb_db *db)
{
    if (sodium_init() < 0) {
        rb_error("staff", "libsodium failed to initialise");
        return NULL;
    }
    struct rb_staff *s = rb_calloc(1, sizeof(*s));
    s->base = base;
    s->db = db;
    s->todo_tail = &s->todo;
    s->pipe_rd = s->pipe_wr = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->cache = rb_token_cache_new(RB_STAFF_CACHE_SLOTS, sizeof(struct rb_staff_user));

    /* Unknown users are verified against this, so they cost what a wrong password costs. */
    char pw[RB_STAFF_TOKEN_LEN + 1];
    rb_staff_token_new(pw);
    if (rb_staff_hash_password(pw, s->dummy) != RB_OK) {
        sodium_memzero(pw, sizeof(pw));
        rb_error("staff", "cannot compute the dummy password hash (out of memory?)");
        rb_staff_free(s);
        return NULL;
    }
    sodium_memzero(pw, sizeof(pw));
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        rb_error("staff", "pipe: %s", strerror(errno));
        rb_staff_free(s);
        return NULL;
    }
    s->pipe_rd = fds[0];
    s->pipe_wr = fds[1];
    s->wake = event_new(base, s->pipe_rd, EV_READ | EV_PERSIST, on_wake, s);
    if (!s->wake || event_add(s->wake, NULL) != 0)
        rb_fatal("cannot watch the password pool's pipe");
    for (int i = 0; i < RB_STAFF_PW_THREADS; i++) {
        int rc = pthread_create(&s->threads[i], NULL, pw_worker, s);
        if (rc != 0) {
            rb_error("staff", "cannot start a password thread: %s", strerror(rc));
            rb_staff_free(s);
            return NULL;
        }
        s->n_threads++;
    }
    return s;
}

void rb_staff_free(struct rb_staff *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    for (struct pw_job *j = s->todo, *next; j; j = next) {
        next = j->next;
        free_job(j);
    }
    for (struct pw_job *j = s->done, *next; j; j = next) {
        next = j->next;
        free_job(j);
    }
    if (s->wake)
        event_free(s->wake);
    if (s->pipe_rd >= 0)
        close(s->pipe_rd);
    if (s->pipe_wr >= 0)
        close(s->pipe_wr);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    rb_token_cache_free(s->cache);
    free(s);
}

/* A new job for password (copied), or NULL with *rc set when it cannot be queued. */
static struct pw_job *job_new(struct rb_staff *s, const char *password, void *arg, int *rc)
{
    size_t n = strlen(password);
    *rc = n > RB_STAFF_PASSWORD_MAX ? RB_EINVAL
          : s->pending >= RB_STAFF_PW_QUEUE ? RB_EAGAIN
                                             : RB_OK;
    if (*rc != RB_OK)
        return NULL;
    struct pw_job *j = rb_calloc(1, sizeof(*j));
    j->password = rb_malloc(n + 1);
    memcpy(j->password, password, n + 1);
    j->password_len = n;
    j->arg = arg;
    return j;
}

static void job_queue(struct rb_staff *s, struct pw_job *j)
{
    s->pending++;
    pthread_mutex_lock(&s->mu);
    *s->todo_tail = j;
    s->todo_tail = &j->next;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int rb_staff_hash(struct rb_staff *s, const char *password, rb_staff_hash_fn fn, void *arg)
{
    int rc;
    struct pw_job *j = job_new(s, password, arg, &rc);
    if (j) {
        j->hfn = fn;
        job_queue(s, j);
    }
    return rc;
}

int rb_staff_verify(struct rb_staff *s, const char *hash, const char *password,
                    rb_staff_verify_fn fn, void *arg)
{
    int rc;
    struct pw_job *j = job_new(s, password, arg, &rc);
    if (!j)
        return rc;
    const char *h = hash && *hash ? hash : s->dummy;
    if (strlen(h) >= sizeof(j->hash))
        h = s->dummy; /* not a libsodium string: fails like a wrong password */
    memcpy(j->hash, h, strlen(h) + 1);
    j->fn = fn;
    job_queue(s, j);
    return RB_OK;
}

int rb_staff_pending(const struct rb_staff *s)
{
    return s->pending;
}

/* ---- token cache -------------------------------------------------------------------------- */

/* A scoped role (officer, supervisor) without a department sees nothing: its token is not
 * valid (the schema forbids such an enabled account too, migration 0048). */
static const char token_sql[] =
    "SELECT s.id, s.username, s.display_name, s.role, coalesce(s.department_id, ''),"
    "  array_to_string(s.districts, ','), extract(epoch from t.expires_at - now()),"
    "  coalesce(s.office_id, '')"
    " FROM staff_tokens t JOIN staff s ON s.id = t.staff_id"
    " WHERE t.token_hash = $1::bytea AND t.expires_at > now() AND t.revoked_at IS NULL"
    "  AND s.disabled_at IS NULL"
    "  AND (s.role NOT IN ('officer', 'supervisor') OR coalesce(s.department_id, '') <> '')";

struct lookup {
    struct rb_staff *s;
    unsigned char key[crypto_hash_sha256_BYTES];
    rb_staff_auth_fn fn;
    void *arg;
};

static void looked_up(PGresult *res, const char *err, void *arg)
{
    struct lookup *l = arg;
    struct rb_staff_user u;
    memset(&u, 0, sizeof(u));
    if (err) {
        l->fn(NULL, err, l->arg);
    } else if (PQntuples(res) != 1 ||
               rb_staff_role_from_str(PQgetvalue(res, 0, 3), &u.role) != RB_OK ||
               rb_staff_set_districts(&u, PQgetvalue(res, 0, 5)) != RB_OK) {
        l->fn(NULL, NULL, l->arg);
    } else {
        u.id = atoll(PQgetvalue(res, 0, 0));
        snprintf(u.username, sizeof(u.username), "%s", PQgetvalue(res, 0, 1));
        snprintf(u.display_name, sizeof(u.display_name), "%s", PQgetvalue(res, 0, 2));
        snprintf(u.department, sizeof(u.department), "%s", PQgetvalue(res, 0, 4));
        snprintf(u.office, sizeof(u.office), "%s", PQgetvalue(res, 0, 7));
        double left = atof(PQgetvalue(res, 0, 6));
        rb_token_cache_put(l->s->cache, l->key, &u,
                    rb_now_mono() + (left < RB_STAFF_CACHE_TTL ? left : RB_STAFF_CACHE_TTL));
        l->fn(&u, NULL, l->arg);
    }
    free(l);
}

static int valid_token(const char *t)
{
    return t && strlen(t) == RB_STAFF_TOKEN_LEN &&
           strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
               RB_STAFF_TOKEN_LEN;
}

int rb_staff_auth(struct rb_staff *s, const char *token, rb_staff_auth_fn fn, void *arg)
{
    if (!valid_token(token))
        return RB_EINVAL;
    unsigned char key[RB_TOKEN_KEY_BYTES];
    rb_token_cache_key(token, key);
    struct rb_staff_user u;
    if (rb_token_cache_get(s->cache, key, rb_now_mono(), &u)) {
        fn(&u, NULL, arg);
        return RB_OK;
    }
    struct lookup *l = rb_malloc(sizeof(*l));
    l->s = s;
    memcpy(l->key, key, sizeof(key));
    l->fn = fn;
    l->arg = arg;
    char hash[2 + 64 + 1];
    rb_auth_token_hash(token, hash);
    const char *params[1] = {hash};
    int rc = rb_db_query_prepared(s->db, token_sql, 1, params, looked_up, l);
    if (rc != RB_OK)
        free(l);
    return rc;
}

void rb_staff_forget(struct rb_staff *s, const char *token)
{
    if (!token)
        return;
    unsigned char key[RB_TOKEN_KEY_BYTES];
    rb_token_cache_key(token, key);
    rb_token_cache_del(s->cache, key);
}

static int same_user(const void *value, void *arg)
{
    return ((const struct rb_staff_user *)value)->id == *(const long long *)arg;
}

void rb_staff_forget_user(struct rb_staff *s, long long staff_id)
{
    rb_token_cache_del_if(s->cache, same_user, &staff_id);
}
