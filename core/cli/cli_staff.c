/* `rabtad staff add | list | disable | passwd` (see cli_staff.h). Blocking libpq, as in
 * cli_apikey.c: there is no event loop here. */
#include "cli/cli_staff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "base/log.h"
#include "base/phone.h"
#include "cli/cli.h"
#include "config/config.h"
#include "server/server.h"
#include "staff/staff_account.h"

#define PASSWORD_MIN RB_STAFF_PASSWORD_MIN


/* The password: one line from stdin, or (stdin a terminal or empty) a generated one, which
 * *generated says. RB_OK, or RB_EINVAL (printed). */
static int read_password(char *out, size_t size, int *generated)
{
    *generated = 0;
    out[0] = '\0';
    if (!isatty(STDIN_FILENO) && fgets(out, (int)size, stdin)) {
        size_t n = strlen(out);
        if (n == size - 1 && out[n - 1] != '\n') {
            fprintf(stderr, "rabtad: the password is longer than %d bytes\n",
                    RB_STAFF_PASSWORD_MAX);
            return RB_EINVAL;
        }
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
            out[--n] = '\0';
    }
    if (!out[0]) {
        rb_staff_password_new(out); /* size > RB_STAFF_GENERATED_LEN */
        *generated = 1;
        return RB_OK;
    }
    if (strlen(out) < PASSWORD_MIN) {
        fprintf(stderr, "rabtad: a password needs at least %d characters\n", PASSWORD_MIN);
        return RB_EINVAL;
    }
    return RB_OK;
}

static void show_generated(const char *username, const char *pw)
{
    printf("%s\n", pw);
    fflush(stdout);
    fprintf(stderr, "rabtad: generated password for \"%s\" printed above; it is shown only "
                    "this once (only its argon2id hash is stored)\n", username);
}


static int staff_add(PGconn *conn, const char *username, const struct rb_staff_account *o, char *pw,
                     int generated)
{
    char hash[crypto_pwhash_STRBYTES];
    if (rb_staff_hash_password(pw, hash) != RB_OK) {
        fprintf(stderr, "rabtad: hashing the password failed (out of memory?)\n");
        return 1;
    }
    char districts[RB_STAFF_MAX_DISTRICTS * 66 + 2];
    snprintf(districts, sizeof(districts), "{%s}", o->districts ? o->districts : "");
    const char *p[9] = {username, o->name ? o->name : "", hash, o->role, o->department,
                        districts, o->phone ? o->e164 : NULL, o->email, o->office};
    PGresult *res = PQexecParams(conn, rb_staff_add_sql, 9, NULL, p, NULL, NULL, 0);
    sodium_memzero(hash, sizeof(hash));
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "rabtad: staff add %s failed: %s", username, PQresultErrorMessage(res));
        rc = 1;
    } else if (PQntuples(res) == 0) {
        fprintf(stderr, "rabtad: there is already a staff member \"%s\" (use passwd to change "
                        "the password)\n", username);
        rc = 1;
    } else {
        if (generated)
            show_generated(username, pw);
        fprintf(stderr, "rabtad: staff \"%s\" added as %s%s%s\n", username, o->role,
                o->department ? " of " : "", o->department ? o->department : "");
    }
    PQclear(res);
    return rc;
}

static int staff_list(PGconn *conn)
{
    PGresult *res = PQexec(
        conn, "SELECT username, role, coalesce(department_id, '-'),"
              " coalesce(nullif(array_to_string(districts, ','), ''), '-'),"
              " CASE WHEN disabled_at IS NOT NULL THEN 'disabled'"
              "  WHEN locked_until > now() THEN 'locked'"
              "  WHEN password_hash IS NULL THEN 'no-password' ELSE 'active' END,"
              " display_name, coalesce(phone, '-'), coalesce(email, '-')"
              " FROM staff ORDER BY username");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "rabtad: listing staff failed: %s", PQresultErrorMessage(res));
        PQclear(res);
        return 1;
    }
    int w = 8;
    for (int r = 0; r < PQntuples(res); r++)
        if (PQgetlength(res, r, 0) > w)
            w = PQgetlength(res, r, 0);
    printf("%-*s  %-10s  %-24s  %-16s  %-11s  %-16s  %-24s  %s\n", w, "username", "role",
           "department", "districts", "state", "phone", "email", "name");
    for (int r = 0; r < PQntuples(res); r++)
        printf("%-*s  %-10s  %-24s  %-16s  %-11s  %-16s  %-24s  %s\n", w, PQgetvalue(res, r, 0),
               PQgetvalue(res, r, 1), PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
               PQgetvalue(res, r, 4), PQgetvalue(res, r, 6), PQgetvalue(res, r, 7),
               PQgetvalue(res, r, 5));
    PQclear(res);
    return 0;
}

/* Runs sql ($1 username, optional $2) that updates one staff row and revokes its tokens. */
static int staff_update(PGconn *conn, const char *what, const char *sql, const char *username,
                        const char *arg2)
{
    const char *p[2] = {username, arg2};
    PGresult *res = PQexecParams(conn, sql, arg2 ? 2 : 1, NULL, p, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "rabtad: staff %s %s failed: %s", what, username,
                PQresultErrorMessage(res));
        rc = 1;
    } else if (PQntuples(res) == 0) {
        fprintf(stderr, "rabtad: there is no staff member \"%s\" (see staff list)\n", username);
        rc = 1;
    }
    PQclear(res);
    return rc;
}

static int staff_disable(PGconn *conn, const char *username)
{
    int rc = staff_update(conn, "disable", rb_staff_disable_sql, username, NULL);
    if (rc == 0)
        printf("staff \"%s\" disabled; their sessions are revoked\n", username);
    return rc;
}

static int staff_passwd(PGconn *conn, const char *username, char *pw, int generated)
{
    char hash[crypto_pwhash_STRBYTES];
    if (rb_staff_hash_password(pw, hash) != RB_OK) {
        fprintf(stderr, "rabtad: hashing the password failed (out of memory?)\n");
        return 1;
    }
    int rc = staff_update(conn, "passwd", rb_staff_passwd_sql, username, hash);
    sodium_memzero(hash, sizeof(hash));
    if (rc == 0) {
        if (generated)
            show_generated(username, pw);
        fprintf(stderr, "rabtad: password of \"%s\" changed; their sessions are revoked\n",
                username);
    }
    return rc;
}

/* Parses add's options. RB_OK or RB_EINVAL (printed). */
static int parse_add(struct rb_server *srv, int nargs, char **args, struct rb_staff_account *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 2; i < nargs; i += 2) {
        const char *k = args[i], *v = i + 1 < nargs ? args[i + 1] : NULL;
        const char **slot = strcmp(k, "--role") == 0         ? &o->role
                            : strcmp(k, "--department") == 0 ? &o->department
                            : strcmp(k, "--name") == 0       ? &o->name
                            : strcmp(k, "--districts") == 0  ? &o->districts
                            : strcmp(k, "--phone") == 0      ? &o->phone
                            : strcmp(k, "--email") == 0      ? &o->email
                            : strcmp(k, "--office") == 0     ? &o->office
                                                             : NULL;
        if (!slot) {
            fprintf(stderr, "rabtad: staff add: unknown option %s\n", k);
            return RB_EINVAL;
        }
        if (!v) {
            fprintf(stderr, "rabtad: staff add: %s needs a value\n", k);
            return RB_EINVAL;
        }
        *slot = v;
    }
    char why[512];
    if (rb_staff_account_check(srv->cfg, o, "--", why, sizeof(why)) != RB_OK) {
        fprintf(stderr, "rabtad: %s\n", why);
        return RB_EINVAL;
    }
    return RB_OK;
}

int rb_cli_staff(struct rb_server *srv, int nargs, char **args)
{
    const char *verb = nargs > 0 ? args[0] : "list";
    struct rb_staff_account ao;
    if (strcmp(verb, "add") == 0 || strcmp(verb, "disable") == 0 ||
        strcmp(verb, "passwd") == 0) {
        if (nargs < 2 || !rb_staff_username_ok(args[1])) {
            fprintf(stderr, "rabtad: usage: rabtad staff -c FILE %s USERNAME%s (USERNAME: 1 to "
                            "64 letters, digits or . _ @ -)\n",
                    verb, strcmp(verb, "add") == 0 ? " --role R [--department D] [--name N] [--phone P] [--email E]"
                                                   : "");
            return 2;
        }
        if (strcmp(verb, "add") == 0 ? parse_add(srv, nargs, args, &ao) != RB_OK : nargs != 2) {
            if (strcmp(verb, "add") != 0)
                fprintf(stderr, "rabtad: staff %s takes only USERNAME\n", verb);
            return 2;
        }
    } else if (strcmp(verb, "list") == 0) {
        if (nargs > 1) {
            fprintf(stderr, "rabtad: staff list takes no argument\n");
            return 2;
        }
    } else {
        fprintf(stderr, "rabtad: unknown staff command \"%s\": use add, list, disable or "
                        "passwd\n", verb);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "rabtad: libsodium failed to initialise\n");
        return 1;
    }
    char pw[RB_STAFF_PASSWORD_MAX + 2];
    int generated = 0;
    if ((strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0) &&
        read_password(pw, sizeof(pw), &generated) != RB_OK)
        return 2;
    PGconn *conn = rb_cli_connect(srv);
    int rc = 1;
    if (conn) {
        if (strcmp(verb, "add") == 0)
            rc = staff_add(conn, args[1], &ao, pw, generated);
        else if (strcmp(verb, "disable") == 0)
            rc = staff_disable(conn, args[1]);
        else if (strcmp(verb, "passwd") == 0)
            rc = staff_passwd(conn, args[1], pw, generated);
        else
            rc = staff_list(conn);
        PQfinish(conn);
    }
    sodium_memzero(pw, sizeof(pw));
    rb_server_cleanup(srv);
    return rc;
}
