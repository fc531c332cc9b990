/* rabtad: the command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"
#include "cli/cli_apikey.h"
#include "cli/cli_staff.h"
#include "config/config.h"
#include "lua/script.h"
#include "server/plugin.h"
#include "server/server.h"
#include "sla/sla_policy.h"

#define EXIT_USAGE 2

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
            "              [--phone P] [--email E] | list |\n"
            "              disable USERNAME | passwd USERNAME   (password on stdin)\n"
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

int main(int argc, char **argv)
{
    enum { OPT_STATE_DIR = 256, OPT_LISTEN, OPT_CHECK, OPT_STATE, OPT_LIMIT, OPT_DRY_RUN,
           OPT_STAFF };
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
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *state_dir = NULL, *listen = NULL;
    int check = 0, c;
    struct rb_cli_opts cli = {0};
    char *staff_opts[12];
    int n_staff_opts = 0, opt_index = 0;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:vh", opts, &opt_index)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case OPT_STATE_DIR:
            state_dir = optarg;
            break;
        case OPT_LISTEN:
            listen = optarg;
            break;
        case OPT_CHECK:
            check = 1;
            break;
        case OPT_STATE:
            cli.state = optarg;
            break;
        case OPT_DRY_RUN:
            cli.dry_run = optarg;
            break;
        case OPT_STAFF:
            if (n_staff_opts + 2 > (int)RB_ARRAY_LEN(staff_opts)) {
                fprintf(stderr, "rabtad: too many staff options\n");
                return EXIT_USAGE;
            }
            {
                static const char *const flags[] = {"--role", "--department", "--name",
                                                    "--districts", "--phone", "--email"};
                for (size_t i = 0; i < RB_ARRAY_LEN(flags); i++)
                    if (strcmp(flags[i] + 2, opts[opt_index].name) == 0)
                        staff_opts[n_staff_opts++] = (char *)flags[i];
            }
            staff_opts[n_staff_opts++] = optarg;
            break;
        case OPT_LIMIT: {
            char *end;
            cli.limit = strtol(optarg, &end, 10);
            if (*end || cli.limit <= 0 || cli.limit > 100000) {
                fprintf(stderr, "rabtad: --limit %s: expected a number from 1 to 100000\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
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
    const char *command = optind < argc ? argv[optind] : NULL;
    if (command && strcmp(command, "jobs") != 0 && strcmp(command, "route") != 0 &&
        strcmp(command, "apikey") != 0 && strcmp(command, "staff") != 0) {
        fprintf(stderr, "rabtad: unknown command \"%s\"\n", command);
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((!command || strcmp(command, "staff") != 0) && n_staff_opts) {
        fprintf(stderr, "rabtad: --role, --department, --name, --districts, --phone and --email "
                        "go with staff add\n");
        return EXIT_USAGE;
    }
    if (!command && (cli.state || cli.limit || cli.dry_run)) {
        fprintf(stderr, "rabtad: --state and --limit go with the jobs command, --dry-run with "
                        "route\n");
        return EXIT_USAGE;
    }
    if (!config_path) {
        fprintf(stderr, "rabtad: no configuration file given: use -c FILE (the sample is "
                        "config/rabta.yaml)\n");
        return EXIT_USAGE;
    }

    struct rb_server *srv = &rb_server;
    struct rb_errors errs;
    rb_errors_init(&errs);
    srv->config_path = config_path;
    srv->cfg = rb_config_load(config_path, &errs);
    char *addr = NULL;
    int port = 0;
    if (listen && parse_listen(listen, &addr, &port) != 0)
        rb_errors_add(&errs, "--listen %s: expected ADDRESS:PORT, e.g. 127.0.0.1:8080 or "
                             "[::1]:8080, with a port from 0 to 65535",
                      listen);
    if (check && srv->cfg) {
        struct rb_plugins *ps = rb_plugins_load(srv->cfg, &errs);
        rb_plugins_free(ps);
        /* Compiles the Lua rules and runs their self-tests, as a reload would. */
        rb_script_free(rb_script_load(srv->cfg->lua_dir, srv->cfg, &errs));
        if (srv->cfg->sla_file)
            rb_sla_free(rb_sla_load(srv->cfg->sla_file, srv->cfg, &errs));
    }
    if (errs.n || !srv->cfg) {
        rb_server_print_errors(&errs);
        fprintf(stderr, "rabtad: %zu error%s in the configuration\n", errs.n,
                errs.n == 1 ? "" : "s");
        rb_errors_free(&errs);
        rb_config_free(srv->cfg);
        free(addr);
        return EXIT_USAGE;
    }
    rb_errors_free(&errs);
    if (command) {
        rb_log_min_level = srv->cfg->log_level > RB_LOG_WARN ? srv->cfg->log_level : RB_LOG_WARN;
        srv->state_dir = rb_strdup(state_dir ? state_dir : srv->cfg->state_dir);
        int nargs = argc - optind - 1;
        char **args = argv + optind + 1;
        int rc;
        if (strcmp(command, "staff") == 0) {
            /* its words, then the options getopt took out of them */
            char **all = rb_calloc((size_t)(nargs + n_staff_opts + 1), sizeof(*all));
            memcpy(all, args, (size_t)nargs * sizeof(*all));
            memcpy(all + nargs, staff_opts, (size_t)n_staff_opts * sizeof(*all));
            rc = rb_cli_staff(srv, nargs + n_staff_opts, all);
            free(all);
        } else {
            rc = strcmp(command, "route") == 0    ? rb_cli_route(srv, &cli)
                 : strcmp(command, "apikey") == 0 ? rb_cli_apikey(srv, nargs, args)
                                                  : rb_cli_jobs(srv, nargs, args, &cli);
        }
        rb_config_free(srv->cfg);
        free(srv->state_dir);
        free(addr);
        return rc;
    }
    if (check) {
        printf("configuration OK: %s (%zu departments, %zu services, %zu districts, %zu "
               "plugins)\n",
               config_path, srv->cfg->n_departments, srv->cfg->n_services,
               srv->cfg->n_districts, srv->cfg->n_plugins);
        rb_config_free(srv->cfg);
        return 0;
    }

    rb_log_min_level = srv->cfg->log_level;
    srv->state_dir = rb_strdup(state_dir ? state_dir : srv->cfg->state_dir);
    srv->listen_addr = addr ? addr : rb_strdup(srv->cfg->server.addr);
    srv->listen_port = addr ? port : srv->cfg->server.port;

    int rc = rb_server_run(srv);

    rb_config_free(srv->cfg);
    free(srv->state_dir);
    free(srv->listen_addr);
    return rc;
}
