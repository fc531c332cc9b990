/* core/config/: what the administrators' YAML says. The YAML reader (yaml_doc: a tree with
 * file:line:col on every node, the declarative field tables core and plugins use), the
 * configuration model built from it (config), time zones (tz), business calendars (calendar) and
 * quiet hours (quiet). Calls: base only. */
/* The server's configuration: rabta.yaml plus the departments, services and districts it
 * includes, as typed structs. Every error names file:line:column and the key.
 *
 * Relative paths inside rabta.yaml resolve against the directory that holds rabta.yaml. */
#ifndef RB_CONFIG_H
#define RB_CONFIG_H

#include <stddef.h>
#include "config/server_limits.h"
#include "config/yaml_doc.h"

struct rb_i18n {
    char *en; /* owned */
    char *ur; /* owned */
};

struct rb_district {
    char *id; /* owned; lowercase slug, e.g. "lahore" */
    struct rb_i18n name;
    char *division; /* owned; may be NULL */
};

/* A person named in the configuration (a department's head): at least a phone or an e-mail. */
struct rb_person {
    char *name;  /* owned; may be NULL */
    char *phone; /* owned; E.164; may be NULL */
    char *email; /* owned; may be NULL */
};

struct rb_department {
    char *id; /* owned; slug, e.g. "revenue" */
    struct rb_i18n name;
    char *plugin;     /* owned; the department plugin receiving its cases ("staff_inbox", ...) */
    char *duty_phone; /* owned; may be NULL */
    char *email;      /* owned; may be NULL */
    struct rb_person head; /* all NULL: no head named */
    const struct rb_node *plugin_config; /* borrowed from the config's documents; may be NULL */
    const char *file; /* borrowed; where it was defined, for messages */
    int line, col;
};

struct rb_service {
    char *id; /* owned; slug, e.g. "driving_licence" */
    struct rb_i18n name;
    char *department; /* owned; id of an existing department */
    int feedback;     /* 1: citizens are asked for feedback after using it (CFMP) */
    /* borrowed: the file's "questions" list, handed to plugins as it is (docs/open311.md) */
    const struct rb_node *questions;
    const char *file; /* borrowed */
    int line, col;
};

struct rb_plugin_conf {
    char *name; /* owned */
    char *path; /* owned; NULL: <plugin_dir>/<name>.so */
    int enabled;
    const struct rb_node *config; /* borrowed; the plugin's own block, may be NULL */
    const char *file;             /* borrowed */
    int line, col;
};

/* jobs: the runner of the durable queue in each process. */
struct rb_jobs_conf {
    long long concurrency; /* jobs running at once; default 256 */
    long long batch;       /* rows claimed per query; default 256 */
    double lease;          /* a run not finished after this is presumed lost; default 300 s */
    double backoff_base;   /* first retry after a failure; default 10 s, doubling */
    double backoff_max;    /* longest wait between retries; default 3600 s */
};

/* messages: outgoing messages (core/messages/message.c, docs/sms.md). */
struct rb_messages_conf {
    char *quiet_hours; /* owned; "21:00-08:00" (local, may cross midnight), or NULL: none */
    char *timezone;    /* owned; NULL: the SLA calendar's zone, else Asia/Karachi */
};

struct rb_config {
    char *file;     /* owned; path of rabta.yaml as given */
    char *base_dir; /* owned; its directory */

    struct {
        char *addr;            /* owned; default "127.0.0.1" */
        int port;              /* default 8080 */
        size_t max_body;       /* default 1 MiB */
        double shutdown_grace; /* seconds in-flight requests get at SIGTERM; default 10 */
        double request_timeout;/* seconds; default 30 */
        struct rb_server_limits limits; /* owned */
    } server;

    char *state_dir; /* owned; resolved; default "<base_dir>/../var" */

    struct {
        char *url;             /* owned; NULL: embedded PostgreSQL under state_dir */
        int pool_size;         /* default 4 */
        double connect_timeout;/* default 5 s */
        size_t max_queue;      /* queries waiting for a connection; default 10000 */
        char *pg_bindir;       /* owned; embedded only; NULL: search /usr/lib/postgresql */
    } database;

    int log_level;    /* RB_LOG_*; default info */
    char *triage_department; /* owned; cases no rule can route go here; default "bureau" */
    char *sla_file;   /* owned; resolved; NULL: no SLA deadlines */
    char *outreach_file; /* owned; resolved; NULL: no proactive feedback (docs/feedback.md) */
    struct rb_jobs_conf jobs;
    struct rb_messages_conf messages;
    char *lua_dir;    /* owned; resolved; default "<base_dir>/../lua" */
    char *migrations_dir; /* owned; resolved; default "<base_dir>/../migrations" */
    char *plugin_dir; /* owned; NULL: the build's plugin directory */
    char *plugin_migrations_dir; /* owned; resolved; default "<migrations_dir>/../plugins":
                                  * plugin NAME's tables are in <it>/NAME/migrations/ */

    struct rb_plugin_conf *plugins;
    size_t n_plugins;
    struct rb_department *departments;
    size_t n_departments;
    struct rb_service *services;
    size_t n_services;
    struct rb_district *districts;
    size_t n_districts;

    struct rb_doc **docs; /* owned; kept so that borrowed nodes stay valid */
    size_t n_docs;
};

/* Loads path and everything it includes. Returns a new config, or NULL with every error
 * found added to errs (it keeps going after the first error). Caller frees. */
struct rb_config *rb_config_load(const char *path, struct rb_errors *errs);
void rb_config_free(struct rb_config *cfg);

/* Lookups by id; NULL when absent. Borrowed. */
const struct rb_department *rb_config_department(const struct rb_config *cfg, const char *id);
const struct rb_service *rb_config_service(const struct rb_config *cfg, const char *id);
const struct rb_district *rb_config_district(const struct rb_config *cfg, const char *id);
const struct rb_plugin_conf *rb_config_plugin(const struct rb_config *cfg, const char *name);

#endif
