/* `rabtad apikey add NAME | list | revoke NAME` (see cli_apikey.h). Blocking libpq, as in
 * cli.c: there is no event loop here. */
#include "cli/cli_apikey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/log.h"
#include "cli/cli.h"
#include "server/server.h"

#define APIKEY_PREFIX "rbk_"
#define APIKEY_BYTES 32 /* of randomness: 256 bits */


/* Same rule as the api_keys.name CHECK: 1-64 of [A-Za-z0-9._@-]. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-") == n;
}

/* "\\x" + hex(SHA-256(key)): the bytea text form stored in api_keys.key_hash. */
static void key_hash_literal(const char *key, char out[2 + 64 + 1])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)key, strlen(key));
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, 64 + 1, d, sizeof(d));
}

int rb_cli_apikey_add(PGconn *conn, const char *name, const char *office)
{
    unsigned char raw[APIKEY_BYTES];
    char key[sizeof(APIKEY_PREFIX) + 64];
    char hash[2 + 64 + 1];
    randombytes_buf(raw, sizeof(raw));
    memcpy(key, APIKEY_PREFIX, sizeof(APIKEY_PREFIX) - 1);
    sodium_bin2base64(key + sizeof(APIKEY_PREFIX) - 1, sizeof(key) - (sizeof(APIKEY_PREFIX) - 1),
                      raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    key_hash_literal(key, hash);

    const char *params[3] = {name, hash, office};
    PGresult *res = PQexecParams(conn,
                                 "INSERT INTO api_keys (name, key_hash, office_id) "
                                 "VALUES ($1, $2::bytea, $3) "
                                 "ON CONFLICT (name) DO NOTHING RETURNING id",
                                 3, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "rabtad: apikey add %s failed: %s", name, PQresultErrorMessage(res));
        rc = 1;
    } else if (PQntuples(res) == 0) {
        fprintf(stderr, "rabtad: there is already an API key named \"%s\" (names are not "
                        "reused, even after revoke; choose another name)\n", name);
        rc = 1;
    } else {
        /* The key on stdout alone, so that scripts can capture it; the advice on stderr. */
        printf("%s\n", key);
        fflush(stdout);
        fprintf(stderr, "rabtad: API key \"%s\" created. It is shown only this once: only its "
                        "SHA-256 is stored. Give it to the client as api_key.\n", name);
    }
    sodium_memzero(key, sizeof(key));
    PQclear(res);
    return rc;
}

static int apikey_list(PGconn *conn)
{
    PGresult *res = PQexec(
        conn,
        "SELECT id, name, "
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "coalesce(to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-') "
        "FROM api_keys ORDER BY id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "rabtad: listing API keys failed: %s", PQresultErrorMessage(res));
        PQclear(res);
        return 1;
    }
    int w = 4;
    for (int r = 0; r < PQntuples(res); r++)
        if (PQgetlength(res, r, 1) > w)
            w = PQgetlength(res, r, 1);
    printf("%-6s  %-*s  %-20s  %s\n", "id", w, "name", "created_at", "revoked_at");
    for (int r = 0; r < PQntuples(res); r++)
        printf("%-6s  %-*s  %-20s  %s\n", PQgetvalue(res, r, 0), w, PQgetvalue(res, r, 1),
               PQgetvalue(res, r, 2), PQgetvalue(res, r, 3));
    PQclear(res);
    return 0;
}

static int apikey_revoke(PGconn *conn, const char *name)
{
    const char *params[1] = {name};
    PGresult *res = PQexecParams(conn,
                                 "UPDATE api_keys SET revoked_at = now() "
                                 "WHERE name = $1 AND revoked_at IS NULL RETURNING id",
                                 1, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "rabtad: apikey revoke %s failed: %s", name, PQresultErrorMessage(res));
        rc = 1;
    } else if (PQntuples(res) == 0) {
        PGresult *st = PQexecParams(conn, "SELECT 1 FROM api_keys WHERE name = $1", 1, NULL,
                                    params, NULL, NULL, 0);
        if (PQresultStatus(st) == PGRES_TUPLES_OK && PQntuples(st) == 1)
            fprintf(stderr, "rabtad: the API key \"%s\" is already revoked\n", name);
        else
            fprintf(stderr, "rabtad: there is no API key named \"%s\" (see apikey list)\n",
                    name);
        PQclear(st);
        rc = 1;
    } else {
        printf("API key \"%s\" revoked; running servers refuse it within the open311 "
               "plugin's api_key_cache (30 s by default)\n", name);
    }
    PQclear(res);
    return rc;
}

int rb_cli_apikey(struct rb_server *srv, int nargs, char **args)
{
    const char *verb = nargs > 0 ? args[0] : "list";
    int has_name = strcmp(verb, "add") == 0 || strcmp(verb, "revoke") == 0;
    if (has_name) {
        if (nargs != 2 || !valid_name(args[1])) {
            fprintf(stderr, "rabtad: usage: rabtad apikey -c FILE %s NAME (NAME: 1 to 64 "
                            "letters, digits or . _ @ -)\n", verb);
            return 2;
        }
    } else if (strcmp(verb, "list") == 0) {
        if (nargs > 1) {
            fprintf(stderr, "rabtad: apikey list takes no argument\n");
            return 2;
        }
    } else {
        fprintf(stderr, "rabtad: unknown apikey command \"%s\": use add NAME, list or revoke "
                        "NAME\n", verb);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "rabtad: libsodium failed to initialise\n");
        return 1;
    }
    PGconn *conn = rb_cli_connect(srv);
    if (!conn) {
        rb_server_cleanup(srv);
        return 1;
    }
    int rc;
    if (strcmp(verb, "add") == 0)
        rc = rb_cli_apikey_add(conn, args[1], NULL);
    else if (strcmp(verb, "revoke") == 0)
        rc = apikey_revoke(conn, args[1]);
    else
        rc = apikey_list(conn);
    PQfinish(conn);
    rb_server_cleanup(srv);
    return rc;
}
