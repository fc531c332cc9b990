/* The server's life: start-up in order, signals, reload, graceful shutdown. */
#include "server/server.h"

#include <event2/event.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/metrics.h"
#include "cases/case_read.h"
#include "cases/citizen_auth.h"
#include "db/db.h"
#include "db/migrate.h"
#include "db/pgembed.h"
#include "intake/intake.h"
#include "jobs/jobs.h"
#include "lua/script.h"
#include "messages/escalation.h"
#include "messages/message.h"
#include "messages/notice.h"
#include "messages/sender.h"
#include "feedback/feedback_api.h"
#include "net/http.h"
#include "outreach/outreach.h"
#include "outreach/outreach_policy.h"
#include "server/deliver.h"
#include "server/plugin.h"
#include "server/rate_shared.h"
#include "server/status.h"
#include "sla/sla_close.h"
#include "sla/sla_engine.h"
#include "sla/sla_policy.h"
#include "staff/reports.h"
#include "staff/staff_api.h"
#include "staff/staff_admin.h"
#include "staff/staff_notify.h"

struct rb_server rb_server;

void rb_server_print_errors(const struct rb_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "%s\n", errs->msgs[i]);
}

int rb_server_open_database(struct rb_server *srv, char **err)
{
    const struct rb_config *cfg = srv->cfg;
    if (cfg->database.url && *cfg->database.url) {
        srv->conninfo = rb_strdup(cfg->database.url);
        return RB_OK;
    }
    srv->pg = rb_pgembed_start(srv->state_dir, cfg->database.pg_bindir, err);
    if (!srv->pg)
        return RB_ERR;
    srv->conninfo = rb_strdup(rb_pgembed_conninfo(srv->pg));
    return RB_OK;
}

int rb_server_migrate(struct rb_server *srv, PGconn **keep)
{
    const struct rb_config *cfg = srv->cfg;
    double deadline = rb_now_mono() + (cfg->database.connect_timeout > 30 ? cfg->database.connect_timeout : 30);
    char *err = NULL;
    PGconn *conn;
    for (;;) {
        conn = rb_db_connect_blocking(srv->conninfo, cfg->database.connect_timeout, &err);
        if (conn || rb_now_mono() > deadline)
            break;
        rb_warn("db", "database not reachable yet (%s); retrying", err);
        free(err);
        err = NULL;
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!conn) {
        rb_error("db", "cannot reach the database: %s", err);
        free(err);
        return RB_ERR;
    }
    /* Core's tables first, then each loaded plugin's own (plugins/<name>/migrations/). */
    size_t np = rb_plugins_count(srv->plugins);
    struct rb_migration_set *sets = rb_calloc(np + 1, sizeof(*sets));
    char **dirs = rb_calloc(np + 1, sizeof(*dirs));
    sets[0] = (struct rb_migration_set){.owner = "core", .dir = cfg->migrations_dir};
    for (size_t i = 0; i < np; i++) {
        const char *name = rb_plugins_name(srv->plugins, i);
        dirs[i] = rb_sprintf("%s/%s/migrations", cfg->plugin_migrations_dir, name);
        sets[i + 1] = (struct rb_migration_set){.owner = name, .dir = dirs[i]};
    }
    struct rb_errors errs;
    rb_errors_init(&errs);
    int n = rb_migrate_sets(conn, sets, np + 1, &errs);
    for (size_t i = 0; i < np; i++)
        free(dirs[i]);
    free(dirs);
    free(sets);
    if (keep && n >= 0)
        *keep = conn;
    else
        PQfinish(conn);
    for (size_t i = 0; i < errs.n; i++)
        rb_error("migrate", "%s", errs.msgs[i]);
    rb_errors_free(&errs);
    if (n < 0)
        return RB_ERR;
    if (n > 0)
        rb_info("migrate", "applied %d migration%s", n, n == 1 ? "" : "s");
    return RB_OK;
}

/* ---- signals ------------------------------------------------------------------------- */

/* The server block's limits into the HTTP server (at start and at every reload), and enough
 * file descriptors for max_connections + connection_reserve. */
static void apply_http_limits(struct rb_http *http, const struct rb_config *cfg)
{
    const struct rb_server_limits *sl = &cfg->server.limits;
    rb_http_set_max_body(http, cfg->server.max_body);
    rb_http_set_timeout(http, cfg->server.request_timeout);
    struct rb_http_limits lim = {sl->max_header_size,
                                 sl->max_headers,
                                 sl->header_timeout,
                                 sl->body_timeout,
                                 sl->keepalive_timeout,
                                 (size_t)sl->max_connections,
                                 (size_t)sl->connection_reserve,
                                 sl->max_pending_bytes};
    rb_http_set_limits(http, &lim);
    struct rb_http_route_limit *rl = rb_calloc(sl->n_routes ? sl->n_routes : 1, sizeof(*rl));
    for (size_t i = 0; i < sl->n_routes; i++)
        rl[i] = (struct rb_http_route_limit){sl->routes[i].route, sl->routes[i].max_body,
                                             sl->routes[i].per_second, sl->routes[i].burst,
                                             sl->routes[i].anonymous_only};
    rb_http_set_route_limits(http, rl, sl->n_routes);
    free(rl);
    rb_http_set_trusted_proxies(http, sl->trusted_proxies, sl->n_trusted_proxies);
    /* Connections, database, log, plugins' sockets: leave 128 descriptors for the rest. */
    struct rlimit r;
    rlim_t want = (rlim_t)(sl->max_connections + sl->connection_reserve + 128);
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < want) {
        r.rlim_cur = r.rlim_max == RLIM_INFINITY || r.rlim_max >= want ? want : r.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur < want)
            rb_warn("http", "only %llu file descriptors are allowed; server.max_connections "
                            "%lld + connection_reserve %lld needs about %llu",
                    (unsigned long long)r.rlim_cur, sl->max_connections,
                    sl->connection_reserve, (unsigned long long)want);
    }
}

static void shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
    struct rb_server *srv = arg;
    (void)fd;
    (void)what;
    size_t left = rb_http_inflight(srv->http) + rb_jobs_pending(srv->jobs) +
                  rb_intake_pending(srv->intake);
    if (left == 0) {
        /* The last answers are queued, not yet written: the loop runs a little longer so
         * their bytes reach the sockets before the connections are closed. */
        struct timeval flush = {0, 100 * 1000};
        event_del(srv->shutdown_timer);
        event_base_loopexit(srv->base, &flush);
    } else if (rb_now_mono() >= srv->shutdown_deadline) {
        rb_warn(NULL, "shutdown grace period over with %zu request%s or job%s unfinished; "
                      "exiting (unfinished jobs run again after their lease)",
                left, left == 1 ? "" : "s", left == 1 ? "" : "s");
        event_base_loopexit(srv->base, NULL);
    }
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct rb_server *srv = arg;
    (void)what;
    if (srv->shutdown_deadline > 0) {
        rb_warn(NULL, "second %s: exiting now", sig == SIGINT ? "SIGINT" : "SIGTERM");
        event_base_loopbreak(srv->base);
        return;
    }
    rb_info(NULL, "%s received: no longer accepting connections, finishing %zu request%s",
            sig == SIGINT ? "SIGINT" : "SIGTERM", rb_http_inflight(srv->http),
            rb_http_inflight(srv->http) == 1 ? "" : "s");
    srv->shutdown_deadline = rb_now_mono() + srv->cfg->server.shutdown_grace;
    rb_http_stop_accepting(srv->http);
    rb_jobs_stop(srv->jobs);
    struct timeval tv = {0, 20 * 1000};
    srv->shutdown_timer = event_new(srv->base, -1, EV_PERSIST, shutdown_tick, srv);
    event_add(srv->shutdown_timer, &tv);
    shutdown_tick(-1, 0, srv);
}

/* Plugins are loaded once: a reload may change their config blocks, not the set of them. */
static int same_plugins(const struct rb_config *a, const struct rb_config *b, struct rb_errors *e)
{
    int same = a->n_plugins == b->n_plugins;
    for (size_t i = 0; same && i < a->n_plugins; i++) {
        const struct rb_plugin_conf *x = &a->plugins[i], *y = &b->plugins[i];
        same = strcmp(x->name, y->name) == 0 && x->enabled == y->enabled &&
               ((!x->path && !y->path) || (x->path && y->path && strcmp(x->path, y->path) == 0));
    }
    if (!same)
        rb_errors_add(e, "%s: the plugins list changed; plugins are loaded once, so restart "
                         "rabtad to change them",
                      b->file);
    return same;
}

struct rb_outreach *rb_server_load_outreach(const struct rb_config *cfg, struct rb_script *rules,
                                            struct rb_errors *errs)
{
    if (!cfg->outreach_file)
        return NULL;
    struct rb_outreach *o = rb_outreach_load(cfg->outreach_file, cfg, errs);
    if (o && rules)
        rb_outreach_check_surveys(o, rules, errs);
    return o;
}

int rb_server_reload(struct rb_server *srv)
{
    struct rb_errors errs;
    rb_errors_init(&errs);
    struct rb_config *cfg = rb_config_load(srv->config_path, &errs);
    struct rb_script *rules = NULL;
    struct rb_sla *sla = NULL;
    struct rb_outreach *outreach = NULL;
    if (cfg) {
        same_plugins(srv->cfg, cfg, &errs);
        /* A fresh Lua state: compiled and self-tested before anything is swapped. */
        rules = rb_script_load(cfg->lua_dir, cfg, &errs);
        if (cfg->sla_file)
            sla = rb_sla_load(cfg->sla_file, cfg, &errs);
        rb_sender_check_config(srv, sla, &errs);
        outreach = rb_server_load_outreach(cfg, rules, &errs);
    }
    if (errs.n) {
        for (size_t i = 0; i < errs.n; i++)
            rb_error("reload", "%s", errs.msgs[i]);
        rb_error("reload", "reload refused: %zu error%s in %s; the previous configuration stays "
                           "in force",
                 errs.n, errs.n == 1 ? "" : "s", srv->config_path);
        rb_errors_free(&errs);
        rb_script_free(rules);
        rb_sla_free(sla);
        rb_outreach_free(outreach);
        rb_config_free(cfg);
        return RB_ERR;
    }
    rb_errors_free(&errs);
    if (strcmp(cfg->server.addr, srv->cfg->server.addr) != 0 ||
        cfg->server.port != srv->cfg->server.port)
        rb_warn("reload", "server.listen changed; it takes effect at the next restart");
    if ((cfg->database.url == NULL) != (srv->cfg->database.url == NULL) ||
        (cfg->database.url && strcmp(cfg->database.url, srv->cfg->database.url) != 0))
        rb_warn("reload", "database settings changed; they take effect at the next restart");
    struct rb_config *old = srv->cfg;
    struct rb_script *old_rules = srv->rules;
    struct rb_sla *old_sla = srv->sla;
    struct rb_outreach *old_outreach = srv->outreach;
    srv->outreach = outreach;
    srv->cfg = cfg;
    srv->rules = rules;
    srv->sla = sla;
    rb_intake_set_rules(srv->intake, cfg, rules, sla);
    rb_sla_engine_set(srv->sla_engine, sla);
    rb_script_free(old_rules);
    rb_sla_free(old_sla);
    rb_outreach_free(old_outreach);
    rb_log_min_level = cfg->log_level;
    apply_http_limits(srv->http, cfg);
    rb_plugins_reload(srv->plugins, cfg);
    rb_config_free(old);
    rb_info("reload", "configuration reloaded from %s", srv->config_path);
    return RB_OK;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    rb_server_reload(arg);
}

/* ---- start and stop ---------------------------------------------------------------------- */

void rb_server_cleanup(struct rb_server *srv)
{
    /* The pool goes first: it fails queries still pending, and their callbacks may still
     * touch requests, jobs and plugins, which therefore outlive it. */
    rb_db_free(srv->db);
    srv->db = NULL;
    rb_intake_free(srv->intake);
    srv->intake = NULL;
    rb_auth_free(srv->auth);
    srv->auth = NULL;
    rb_staff_api_free(); /* joins the password threads before the loop goes */
    rb_case_read_free(srv->case_read);
    srv->case_read = NULL;
    rb_plugins_stop(srv->plugins);
    rb_jobs_free(srv->jobs);
    srv->jobs = NULL;
    rb_rate_shared_free(srv->rate_shared);
    srv->rate_shared = NULL;
    struct event **evs[] = {&srv->sig_term, &srv->sig_int, &srv->sig_hup, &srv->shutdown_timer};
    for (size_t i = 0; i < RB_ARRAY_LEN(evs); i++)
        if (*evs[i]) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    rb_http_free(srv->http);
    srv->http = NULL;
    if (srv->pg) {
        rb_pgembed_stop(srv->pg);
        srv->pg = NULL;
    }
    rb_plugins_free(srv->plugins);
    srv->plugins = NULL;
    rb_senders_free(srv->senders);
    srv->senders = NULL;
    rb_script_free(srv->rules);
    srv->rules = NULL;
    rb_message_cleanup();
    rb_sla_engine_free(srv->sla_engine);
    srv->sla_engine = NULL;
    rb_sla_free(srv->sla);
    srv->sla = NULL;
    rb_outreach_free(srv->outreach);
    srv->outreach = NULL;
    rb_metrics_free(srv->metrics);
    srv->metrics = NULL;
    if (srv->base)
        event_base_free(srv->base);
    srv->base = NULL;
    free(srv->conninfo);
    srv->conninfo = NULL;
}

static double intake_quiet_wait(void *arg)
{
    return rb_message_quiet_wait(arg);
}

static int intake_channel_ok(void *arg, const char *channel)
{
    return rb_sender_has(arg, channel);
}

static int intake_wants_delivery(void *arg, const char *department)
{
    struct rb_server *srv = arg;
    const struct rb_department *d = rb_config_department(srv->cfg, department);
    return d && d->plugin && rb_plugins_wants_delivery(srv->plugins, d->plugin, d->id);
}

/* The core's job kinds and the senders' registry (filled by the plugins' init()). */
static void register_jobs(struct rb_server *srv)
{
    srv->sla_engine = rb_sla_engine_new(srv->db, srv->metrics, srv->sla);
    rb_sla_engine_register(srv->sla_engine, srv->jobs);
    rb_deliver_register(srv); /* case.deliver: cases to their department's plugin */
    rb_notice_register(srv);
    srv->senders = rb_senders_new();
    rb_escalation_register(srv); /* sla.notify: the people an escalation names */
    rb_sla_close_register(srv);  /* case.autoclose: waits for the citizen that end */
    rb_outreach_register(srv);   /* outreach.step: proactive feedback */
}

int rb_server_run(struct rb_server *srv)
{
    const struct rb_config *cfg = srv->cfg;
    struct rb_errors errs;
    char *err = NULL;

    srv->started_at = rb_now_mono();
    signal(SIGPIPE, SIG_IGN);

    rb_errors_init(&errs);
    srv->plugins = rb_plugins_load(cfg, &errs);
    if (!srv->plugins) {
        for (size_t i = 0; i < errs.n; i++)
            rb_error("plugins", "%s", errs.msgs[i]);
        rb_errors_free(&errs);
        return 2;
    }
    rb_errors_free(&errs);

    rb_errors_init(&errs);
    srv->rules = rb_script_load(cfg->lua_dir, cfg, &errs);
    if (cfg->sla_file)
        srv->sla = rb_sla_load(cfg->sla_file, cfg, &errs);
    srv->outreach = rb_server_load_outreach(cfg, srv->rules, &errs);
    if (!srv->rules || errs.n) {
        for (size_t i = 0; i < errs.n; i++)
            rb_error("config", "%s", errs.msgs[i]);
        rb_errors_free(&errs);
        rb_server_cleanup(srv);
        return 2;
    }
    rb_errors_free(&errs);
    srv->base = event_base_new();
    if (!srv->base)
        rb_fatal("cannot create the event loop");

    if (rb_server_open_database(srv, &err) != RB_OK) {
        rb_error("db", "%s", err);
        free(err);
        rb_server_cleanup(srv);
        return 1;
    }
    if (rb_server_migrate(srv, NULL) != RB_OK) {
        rb_server_cleanup(srv);
        return 1;
    }

    srv->metrics = rb_metrics_new();
    srv->http = rb_http_new(srv->base, srv->metrics);
    apply_http_limits(srv->http, cfg);
    srv->db = rb_db_new(srv->base, srv->conninfo, cfg->database.pool_size, cfg->database.max_queue);
    if (!srv->db || rb_db_start(srv->db) != RB_OK) {
        rb_error("db", "cannot start the database pool");
        rb_server_cleanup(srv);
        return 1;
    }
    struct rb_jobs_options jo = {
        .concurrency = (int)cfg->jobs.concurrency,
        .batch = (int)cfg->jobs.batch,
        .lease = cfg->jobs.lease,
        .backoff_base = cfg->jobs.backoff_base,
        .backoff_max = cfg->jobs.backoff_max,
    };
    srv->jobs = rb_jobs_new(srv->base, srv->db, srv->metrics, &jo);
    srv->auth = rb_auth_new(srv->base, srv->db);
    srv->case_read = rb_case_read_new(srv->base, srv->db);
    srv->intake = rb_intake_new(srv->base, srv->db, srv->metrics, srv->cfg, srv->rules, srv->sla);
    rb_intake_set_quiet_wait(srv->intake, intake_quiet_wait, srv);
    rb_intake_set_wants_delivery(srv->intake, intake_wants_delivery, srv);
    rb_intake_set_channel_ok(srv->intake, intake_channel_ok, srv);
    register_jobs(srv);
    srv->rate_shared = rb_rate_shared_new(srv);
    if (!srv->rate_shared || rb_status_init(srv) != RB_OK || rb_staff_api_init(srv) != RB_OK ||
        rb_reports_init(srv) != RB_OK || rb_staff_notify_init(srv) != RB_OK ||
        rb_staff_admin_init(srv) != RB_OK ||
        rb_feedback_api_init(srv) != RB_OK ||
        rb_plugins_init(srv->plugins, srv) != RB_OK) {
        rb_server_cleanup(srv);
        return 1;
    }
    rb_errors_init(&errs);
    rb_sender_check_config(srv, srv->sla, &errs);
    for (size_t i = 0; i < errs.n; i++) /* --check refuses these; a running server warns */
        rb_warn("config", "%s", errs.msgs[i]);
    rb_errors_free(&errs);
    if (rb_http_listen(srv->http, srv->listen_addr, srv->listen_port) != RB_OK) {
        rb_server_cleanup(srv);
        return 1;
    }
    if (rb_plugins_start(srv->plugins) != RB_OK || rb_jobs_start(srv->jobs) != RB_OK) {
        rb_server_cleanup(srv);
        return 1;
    }

    srv->sig_term = evsignal_new(srv->base, SIGTERM, on_stop_signal, srv);
    srv->sig_int = evsignal_new(srv->base, SIGINT, on_stop_signal, srv);
    srv->sig_hup = evsignal_new(srv->base, SIGHUP, on_hup, srv);
    event_add(srv->sig_term, NULL);
    event_add(srv->sig_int, NULL);
    event_add(srv->sig_hup, NULL);

    const char *host = srv->listen_addr;
    int v6 = strchr(host, ':') != NULL;
    rb_info(NULL, "rabtad %s ready: listening on http://%s%s%s:%d/ (database: %s)", RB_VERSION,
            v6 ? "[" : "", host, v6 ? "]" : "", rb_http_bound_port(srv->http),
            srv->pg ? "embedded" : "external");

    printf("rabtad is serving http://%s%s%s:%d/ (Ctrl-C stops it)\n", v6 ? "[" : "", host,
           v6 ? "]" : "", rb_http_bound_port(srv->http));
    fflush(stdout);
    event_base_dispatch(srv->base);

    rb_info(NULL, "stopping");
    rb_server_cleanup(srv);
    rb_info(NULL, "stopped");
    return srv->exit_code;
}
