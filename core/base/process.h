/* The process: its one global, the server struct (STYLE.md: "one global at most"). Every
 * layer may read the components it holds; only core/server/ builds, swaps and frees them.
 * The components are opaque here: a file that uses one includes that component's header. */
#ifndef RB_PROCESS_H
#define RB_PROCESS_H

struct rb_config;
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
struct rb_senders;
struct rb_outreach;

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
    struct rb_outreach *outreach; /* owned; the outreach policies; replaced on reload */
    struct rb_pgembed *pg;      /* owned; NULL with an external database */
    char *conninfo;             /* owned */
    struct rb_plugins *plugins; /* owned */
    struct rb_senders *senders; /* owned: who sends each channel (messages/sender.h) */
    struct rb_rate_shared *rate_shared; /* owned: per-route rates counted by all processes */
    struct event *sig_term, *sig_int, *sig_hup, *shutdown_timer; /* owned */
    double started_at;          /* monotonic */
    double shutdown_deadline;   /* monotonic; 0 while running */
    int exit_code;
};

extern struct rb_server rb_server;

#endif
