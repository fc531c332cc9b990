/* core/cli/: rabtad's subcommands that work on a config and its database (cli: jobs; cli_staff:
 * staff; cli_apikey: apikey). Calls: server (to open the database) and the folders below it.
 * core/main.c dispatches to it or to the server. */
/* Subcommands that work on the database of a config and state dir, whether or not a server is
 * running there: `rabtad jobs ...` (and, with later work, route, staff, apikey). */
#ifndef RB_CLI_H
#define RB_CLI_H

#include <libpq-fe.h>

struct rb_server;

/* Opens the database of srv's config (starting the embedded PostgreSQL if nothing runs it)
 * and applies migrations. A blocking connection, or NULL with the reason printed. */
PGconn *rb_cli_connect(struct rb_server *srv);

struct rb_cli_opts {
    const char *state;  /* jobs list --state */
    long limit;         /* jobs list --limit; 0: default */
    const char *dry_run; /* route --dry-run JSON */
};

/* args[0] is the subcommand's verb ("list", "retry", ...). Returns the exit code. */
int rb_cli_jobs(struct rb_server *srv, int nargs, char **args, const struct rb_cli_opts *o);

/* `rabtad route -c FILE --dry-run JSON`: prints the routing decision for one case (JSON with
 * service, kind, text, district, channel, language, lat, long, official) without storing
 * anything. Exit 0 with the decision (even a triage one, which says why), 2 on bad input. */
int rb_cli_route(struct rb_server *srv, const struct rb_cli_opts *o);

#endif
