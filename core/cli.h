/* Subcommands that work on the database of a config and state dir, whether or not a server is
 * running there: `rabtad jobs ...` (and, with later work, route, staff, apikey). */
#ifndef RB_CLI_H
#define RB_CLI_H

struct rb_server;

struct rb_cli_opts {
    const char *state;  /* jobs list --state */
    long limit;         /* jobs list --limit; 0: default */
};

/* args[0] is the subcommand's verb ("list", "retry", ...). Returns the exit code. */
int rb_cli_jobs(struct rb_server *srv, int nargs, char **args, const struct rb_cli_opts *o);

#endif
