/* rabtad: the command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"
#include "cli/cli_apikey.h"
#include "cli/cli_feedback.h"
#include "cli/cli_staff.h"
#include "config/config.h"
#include "lua/script.h"
#include "messages/sender.h"
#include "outreach/outreach_policy.h"
#include "server/plugin.h"
#include "server/server.h"
#include "sla/sla_policy.h"

#define EXIT_USAGE 2

enum {
    OPT_STATE_DIR = 256,
    OPT_LISTEN,
    OPT_CHECK,
    OPT_STATE,
    OPT_LIMIT,
    OPT_DRY_RUN,
    OPT_STAFF,
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: rabtad -c FILE [--state-dir DIR] [--listen ADDR:PORT]\n"
            "       rabtad --check -c FILE\n"
            "       rabtad jobs -c FILE [--state-dir DIR] [list [--state S] [--limit N] |\n"
            "                                             retry ID | cancel ID]\n"
            "       rabtad route -c FILE --dry-run JSON   print one routing decision\n"
            "       rabtad apikey -c FILE [--state-dir DIR] add NAME | list | revoke NAME\n"
            "       rabtad staff -c FILE [--state-dir DIR] add USERNAME --role R\n"
            "              [--department D] [--name NAME] [--districts a,b]\n"
            "              [--phone P] [--email E] [--office O] | list |\n"
            "              disable USERNAME | passwd USERNAME   (password on stdin)\n"
            "       rabtad offices -c FILE import FILE.csv | key OFFICE\n"
            "       rabtad officials -c FILE import FILE.csv\n"
            "       rabtad transactions -c FILE import FILE.csv\n"
            "       rabtad --version | --help\n"
            "\n"
            "Rabta, the one-window citizen relations server.\n"
            "\n"
            "  -c, --config FILE     rabta.yaml to use (required)\n"
            "      --state-dir DIR   where the embedded PostgreSQL and other state live\n"
            "                        (overrides state_dir in the config; default var/)\n"
            "      --listen ADDR:PORT  address to serve HTTP on (overrides server.listen)\n"
            "      --check           validate the configuration, its includes, plugins and\n"
            "                        Lua rules (with their self-tests);\n"
            "                        print every error; exit 2 on error, 0 if fine\n"
            "      --state S         jobs list: only jobs in state S (queued, running,\n"
            "                        failed, dead, cancelled)\n"
            "      --limit N         jobs list: at most N rows (default 50)\n"
            "  -v, --version         print the version and plugin ABI, and exit\n"
            "  -h, --help            print this help, and exit\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the configuration\n"
            "(a broken new configuration is refused and the old one stays in force).\n");
}

/* "127.0.0.1:8080", "[::1]:8080", "localhost:0". Returns 0 or -1. addr is new. */
static int parse_listen(const char *s, char **addr, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1])
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return -1;
    const char *a = s;
    size_t n = (size_t)(colon - s);
    if (a[0] == '[') {
        if (n < 3 || a[n - 1] != ']')
            return -1;
        a++;
        n -= 2;
    }
    *addr = rb_strndup(a, n);
    *port = (int)p;
    return 0;
}

/* What the command line asked for. */
struct args {
    const char *config_path, *state_dir, *listen, *command;
    int check;
    struct rb_cli_opts cli;
    char *staff_opts[14]; /* "--role" R ... : handed on to rb_cli_staff after its own words */
    int n_staff_opts;
    int nargs;   /* the command's words after its name */
    char **args; /* borrowed from argv */
};

static const struct option opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"check", no_argument, NULL, OPT_CHECK},
    {"state", required_argument, NULL, OPT_STATE},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"dry-run", required_argument, NULL, OPT_DRY_RUN},
    /* staff add: handed on to rb_cli_staff as "--role R" ... after its own words */
    {"role", required_argument, NULL, OPT_STAFF},
    {"department", required_argument, NULL, OPT_STAFF},
    {"name", required_argument, NULL, OPT_STAFF},
    {"districts", required_argument, NULL, OPT_STAFF},
    {"phone", required_argument, NULL, OPT_STAFF},
    {"email", required_argument, NULL, OPT_STAFF},
    {"office", required_argument, NULL, OPT_STAFF},
    {"version", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The options of `staff add`, kept for rb_cli_staff with their values. */
static const char *const staff_flags[] = {"--role",  "--department", "--name", "--districts",
                                          "--phone", "--email",      "--office"};

static int keep_staff_opt(struct args *a, const char *name, char *value)
{
    if (a->n_staff_opts + 2 > (int)RB_ARRAY_LEN(a->staff_opts)) {
        fprintf(stderr, "rabtad: too many staff options\n");
        return -1;
    }
    for (size_t i = 0; i < RB_ARRAY_LEN(staff_flags); i++)
        if (strcmp(staff_flags[i] + 2, name) == 0)
            a->staff_opts[a->n_staff_opts++] = (char *)staff_flags[i];
    a->staff_opts[a->n_staff_opts++] = value;
    return 0;
}

/* One option. Returns -1 to go on, else the exit code main returns now. */
static int take_option(struct args *a, int c, int opt_index, char **argv)
{
    switch (c) {
    case 'c':
        a->config_path = optarg;
        return -1;
    case OPT_STATE_DIR:
        a->state_dir = optarg;
        return -1;
    case OPT_LISTEN:
        a->listen = optarg;
        return -1;
    case OPT_CHECK:
        a->check = 1;
        return -1;
    case OPT_STATE:
        a->cli.state = optarg;
        return -1;
    case OPT_DRY_RUN:
        a->cli.dry_run = optarg;
        return -1;
    case OPT_STAFF:
        return keep_staff_opt(a, opts[opt_index].name, optarg) == 0 ? -1 : EXIT_USAGE;
    case OPT_LIMIT: {
        char *end;
        a->cli.limit = strtol(optarg, &end, 10);
        if (*end || a->cli.limit <= 0 || a->cli.limit > 100000) {
            fprintf(stderr, "rabtad: --limit %s: expected a number from 1 to 100000\n", optarg);
            return EXIT_USAGE;
        }
        return -1;
    }
    case 'v':
        printf("rabtad %s (plugin ABI %u)\n", RB_VERSION, RB_PLUGIN_ABI);
        return 0;
    case 'h':
        usage(stdout);
        return 0;
    case ':':
        fprintf(stderr, "rabtad: option %s needs a value\n", argv[optind - 1]);
        usage(stderr);
        return EXIT_USAGE;
    default:
        fprintf(stderr, "rabtad: unknown option %s\n", argv[optind - 1]);
        usage(stderr);
        return EXIT_USAGE;
    }
}

static const char *const commands[] = {"jobs",    "route",     "apikey",      "staff",
                                       "offices", "officials", "transactions"};

/* Options, the command and their combinations. Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct args *a)
{
    int c, opt_index = 0, rc;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:vh", opts, &opt_index)) != -1)
        if ((rc = take_option(a, c, opt_index, argv)) >= 0)
            return rc;
    a->command = optind < argc ? argv[optind] : NULL;
    a->nargs = optind < argc ? argc - optind - 1 : 0;
    a->args = argv + optind + 1;
    size_t k = 0;
    while (a->command && k < RB_ARRAY_LEN(commands) && strcmp(a->command, commands[k]) != 0)
        k++;
    if (a->command && k == RB_ARRAY_LEN(commands)) {
        fprintf(stderr, "rabtad: unknown command \"%s\"\n", a->command);
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((!a->command || strcmp(a->command, "staff") != 0) && a->n_staff_opts) {
        fprintf(stderr, "rabtad: --role, --department, --name, --districts, --phone, --email "
                        "and --office go with staff add\n");
        return EXIT_USAGE;
    }
    if (!a->command && (a->cli.state || a->cli.limit || a->cli.dry_run)) {
        fprintf(stderr, "rabtad: --state and --limit go with the jobs command, --dry-run with "
                        "route\n");
        return EXIT_USAGE;
    }
    if (!a->config_path) {
        fprintf(stderr, "rabtad: no configuration file given: use -c FILE (the sample is "
                        "config/rabta.yaml)\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* --check: the plugins load and accept their config, the Lua rules compile and pass their
 * self-tests, the SLA file loads, as a reload would do. Adds to errs. */
static void check_more(struct rb_server *srv, struct rb_errors *errs)
{
    const struct rb_config *cfg = srv->cfg;
    struct rb_plugins *ps = rb_plugins_load(cfg, errs);
    /* The Lua rules compile and pass their self-tests, as a reload would; plugins may check
     * their own Lua (the IVR menus) against them. */
    srv->rules = rb_script_load(cfg->lua_dir, cfg, errs);
    srv->senders = rb_senders_new();
    if (ps && srv->rules) /* each plugin's configuration; their channels' senders */
        rb_plugins_check(ps, srv, errs);
    rb_outreach_free(rb_server_load_outreach(cfg, srv->rules, errs));
    if (cfg->sla_file)
        srv->sla = rb_sla_load(cfg->sla_file, cfg, errs);
    if (ps) /* every channel the configuration uses has a sender */
        rb_sender_check_config(srv, srv->sla, errs);
    rb_sla_free(srv->sla);
    srv->sla = NULL;
    rb_plugins_free(ps);
    rb_script_free(srv->rules);
    srv->rules = NULL;
    rb_senders_free(srv->senders);
    srv->senders = NULL;
}

/* A subcommand on the loaded configuration. Returns its exit code. */
static int run_command(struct rb_server *srv, const struct args *a)
{
    rb_log_min_level = srv->cfg->log_level > RB_LOG_WARN ? srv->cfg->log_level : RB_LOG_WARN;
    srv->state_dir = rb_strdup(a->state_dir ? a->state_dir : srv->cfg->state_dir);
    int rc;
    if (strcmp(a->command, "staff") == 0) {
        /* its words, then the options getopt took out of them */
        char **all = rb_calloc((size_t)(a->nargs + a->n_staff_opts + 1), sizeof(*all));
        memcpy(all, a->args, (size_t)a->nargs * sizeof(*all));
        memcpy(all + a->nargs, a->staff_opts, (size_t)a->n_staff_opts * sizeof(*all));
        rc = rb_cli_staff(srv, a->nargs + a->n_staff_opts, all);
        free(all);
    } else if (strcmp(a->command, "route") == 0) {
        rc = rb_cli_route(srv, &a->cli);
    } else if (strcmp(a->command, "apikey") == 0) {
        rc = rb_cli_apikey(srv, a->nargs, a->args);
    } else if (strcmp(a->command, "offices") == 0) {
        rc = rb_cli_offices(srv, a->nargs, a->args);
    } else if (strcmp(a->command, "officials") == 0) {
        rc = rb_cli_officials(srv, a->nargs, a->args);
    } else if (strcmp(a->command, "transactions") == 0) {
        rc = rb_cli_transactions(srv, a->nargs, a->args);
    } else {
        rc = rb_cli_jobs(srv, a->nargs, a->args, &a->cli);
    }
    free(srv->state_dir);
    return rc;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;

    struct rb_server *srv = &rb_server;
    struct rb_errors errs;
    rb_errors_init(&errs);
    srv->config_path = a.config_path;
    srv->cfg = rb_config_load(a.config_path, &errs);
    char *addr = NULL;
    int port = 0;
    if (a.listen && parse_listen(a.listen, &addr, &port) != 0)
        rb_errors_add(&errs, "--listen %s: expected ADDRESS:PORT, e.g. 127.0.0.1:8080 or "
                             "[::1]:8080, with a port from 0 to 65535",
                      a.listen);
    if (a.check && srv->cfg)
        check_more(srv, &errs);
    if (errs.n || !srv->cfg) {
        rb_server_print_errors(&errs);
        fprintf(stderr, "rabtad: %zu error%s in the configuration\n", errs.n,
                errs.n == 1 ? "" : "s");
        rc = EXIT_USAGE;
    } else if (a.command) {
        rc = run_command(srv, &a);
    } else if (a.check) {
        printf("configuration OK: %s (%zu departments, %zu services, %zu districts, %zu "
               "plugins)\n",
               a.config_path, srv->cfg->n_departments, srv->cfg->n_services,
               srv->cfg->n_districts, srv->cfg->n_plugins);
        rc = 0;
    } else {
        rb_log_min_level = srv->cfg->log_level;
        srv->state_dir = rb_strdup(a.state_dir ? a.state_dir : srv->cfg->state_dir);
        srv->listen_addr = addr ? addr : rb_strdup(srv->cfg->server.addr);
        srv->listen_port = addr ? port : srv->cfg->server.port;
        addr = NULL;
        rc = rb_server_run(srv);
        rb_log_flush(); /* the counts of repeated warnings held back */
        free(srv->state_dir);
        free(srv->listen_addr);
    }
    rb_errors_free(&errs);
    rb_config_free(srv->cfg);
    free(addr);
    return rc;
}
