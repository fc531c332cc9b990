/* `rabtad staff ...`: staff accounts, from the command line, whether or not a server runs on
 * the same database. Passwords are read from stdin (one line) and stored as argon2id only. */
#ifndef RB_CLI_STAFF_H
#define RB_CLI_STAFF_H

struct rb_server;

/* args[0] is the verb:
 *   add USERNAME --role R [--department D] [--name "Full Name"] [--districts a,b]
 *                      password from stdin; with stdin empty (or a terminal) a random one
 *                      is made and printed once on stdout
 *   list               username, role, department, districts, state (never hashes)
 *   disable USERNAME   the account can no longer sign in; its tokens are revoked at once
 *                      (servers notice within RB_STAFF_CACHE_TTL seconds)
 *   passwd USERNAME    new password from stdin (or generated, as for add); clears a lock-out
 *                      and revokes the account's tokens
 * Roles: officer and supervisor need --department (a configured one); oversight and admin
 * take none. srv has cfg and state_dir set; this opens the database (starting the embedded
 * PostgreSQL if needed), applies migrations and cleans srv up before returning.
 * Returns the process exit code: 0 done, 1 failed, 2 usage. */
int rb_cli_staff(struct rb_server *srv, int nargs, char **args);

#endif
