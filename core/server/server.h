/* core/server/: the process itself. Start-up, reload and shutdown (server), loading plugins and
 * the host API table they get (plugin), handing cases to department plugins (deliver), /healthz,
 * /metrics and /api/v1/meta (status). Calls: every folder below; nothing below calls it. */
/* The server: start-up, reload and shutdown of the one process (its struct: base/process.h). */
#ifndef RB_SERVER_H
#define RB_SERVER_H

#include <libpq-fe.h>
#include "config/config.h"

#include "base/process.h"


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

/* The outreach policies of cfg (NULL without an outreach file), their surveys checked against
 * rules' lua/surveys.lua; errors added. */
struct rb_config;
struct rb_script;
struct rb_errors;
struct rb_outreach *rb_server_load_outreach(const struct rb_config *cfg, struct rb_script *rules,
                                            struct rb_errors *errs);

#endif
