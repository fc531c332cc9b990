/* `rabtad apikey ...`: API keys for machine clients (the Open311 plugin's api_key). A key is
 * shown once, when it is made; the database keeps only its SHA-256 (migrations/0005). */
#ifndef RB_CLI_APIKEY_H
#define RB_CLI_APIKEY_H

struct rb_server;

/* args[0] is the verb:
 *   add NAME     makes a key, prints it once on stdout, stores only its hash
 *   list         names, creation and revocation times (never keys or hashes)
 *   revoke NAME  the key stops working at once (servers check the database on every use)
 * srv has cfg and state_dir set; this opens the database (starting the embedded PostgreSQL
 * if needed), applies migrations, and cleans srv up (rb_server_cleanup) before returning.
 * Returns the process exit code: 0 done, 1 failed, 2 usage. */
int rb_cli_apikey(struct rb_server *srv, int nargs, char **args);

#include <libpq-fe.h>
/* Makes key NAME (valid name) on an open connection, bound to office (NULL: none; an office's
 * key submits that office's transactions only), prints it once on stdout. 0 or 1. */
int rb_cli_apikey_add(PGconn *conn, const char *name, const char *office);

#endif
