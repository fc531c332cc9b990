/* The server: the one global of the process. Everything else is passed explicitly. */
#ifndef RB_SERVER_H
#define RB_SERVER_H

#include <libpq-fe.h>
#include "config.h"

struct event_base;
struct event;
struct rb_http;
struct rb_db;
struct rb_metrics;
struct rb_pgembed;
struct rb_plugins;
struct rb_jobs;
struct rb_script;
struct rb_intake;
struct rb_auth;
struct rb_case_read;
struct rb_sla;
struct rb_sla_engine;

struct rb_server {
    struct event_base *base;    /* owned */
    struct rb_config *cfg;      /* owned; replaced as a whole on reload */
    const char *config_path;    /* borrowed from argv */
    char *state_dir;            /* owned; --state-dir or the config's */
    char *listen_addr;          /* owned; --listen or the config's */
    int listen_port;
    struct rb_metrics *metrics; /* owned */
    struct rb_http *http;       /* owned */
    struct rb_db *db;           /* owned */
    struct rb_jobs *jobs;       /* owned: the job runner of this process */
    struct rb_script *rules;    /* owned: compiled Lua rules; replaced as a whole on reload */
    struct rb_intake *intake;   /* owned */
    struct rb_auth *auth;       /* owned: citizens' tokens */
    struct rb_case_read *case_read; /* owned: batched status look-ups */
    struct rb_sla *sla;         /* owned; NULL without an sla file; replaced on reload */
    struct rb_sla_engine *sla_engine; /* owned */
    struct rb_pgembed *pg;      /* owned; NULL with an external database */
    char *conninfo;             /* owned */
    struct rb_plugins *plugins; /* owned */
    struct event *sig_term, *sig_int, *sig_hup, *shutdown_timer; /* owned */
    double started_at;          /* monotonic */
    double shutdown_deadline;   /* monotonic; 0 while running */
    int exit_code;
};

extern struct rb_server rb_server;

/* Runs the server on srv->cfg until SIGTERM/SIGINT. Returns the process exit code: 0 after a
 * clean stop, 1 when start-up failed, 2 for a configuration the plugins refused. */
int rb_server_run(struct rb_server *srv);
/* SIGHUP: loads the configuration again and swaps it in only if it is entirely valid. */
int rb_server_reload(struct rb_server *srv);
/* Sets srv->conninfo from database.url, or starts the embedded PostgreSQL (srv->pg). */
int rb_server_open_database(struct rb_server *srv, char **err);
void rb_server_print_errors(const struct rb_errors *errs);
/* Start-up only: connects (retrying for up to 30 s while the database comes up) and applies
 * the migrations. With keep, the blocking connection is handed to the caller (a CLI command);
 * otherwise it is closed. RB_OK or RB_ERR (logged). */
int rb_server_migrate(struct rb_server *srv, PGconn **keep);
/* Frees whatever of the server was built, stopping the embedded PostgreSQL if we started it. */
void rb_server_cleanup(struct rb_server *srv);

#endif
