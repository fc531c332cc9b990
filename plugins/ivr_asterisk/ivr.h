/* The IVR channel on Asterisk (docs/ivr.md): the plugin's shared state and the functions its
 * files offer one another.
 *
 *   ivr_asterisk.c  descriptor, init/start/stop/reload/check, logging glue
 *   ivr_conf.c      the YAML block and lua/ivr.lua (prompts, hotline menus, trunks, policies,
 *                   call scripts) with their checks and self-tests
 *   ivr_agi.c       FastAGI server            ivr_ami.c   AMI client     ivr_parse.c  wire
 *   ivr_hotline.c   inbound calls (agi://rabta:4573/hotline)
 *   ivr_call.c      outbound calls, the sender of channel "call": trunks, attempts,
 *                   outcomes, the script on the call, the answers handed back */
#ifndef RB_IVR_H
#define RB_IVR_H

#include <stddef.h>

#include <jansson.h>
#include <rabta/plugin.h>

struct rb_agi_conn;
struct rb_ami_msg;

extern const struct rb_host_api *rb_ivr_api;

/* The YAML block (docs/ivr.md "Configuration"). */
struct rb_ivr_conf {
    char *agi_listen;        /* "127.0.0.1:4573" */
    char *ami_host;          /* NULL: no outbound calls */
    long long ami_port;
    char *ami_username, *ami_secret;
    char *recordings_dir;    /* where rabtad reads recordings */
    char *asterisk_recordings_dir; /* the same directory as Asterisk names it; NULL: same */
    char *outbound_context;  /* dialplan context an answered outbound call enters */
    char *callerid;          /* caller ID on outbound calls, or NULL */
    double record_max, record_silence, key_timeout;
    long long menu_tries;
    long long max_recording;  /* bytes */
};

/* lua/ivr.lua, checked. data is the whole table (owned, shared by calls that hold a ref). */
struct rb_ivr_lua {
    json_t *data;     /* owned */
    const char *dir;  /* prompts.dir, borrowed from data */
};

struct rb_ivr {
    struct rb_plugin_ctx *ctx;
    struct rb_ivr_conf conf;
    struct rb_ivr_lua lua;
    struct event_base *base;
    struct rb_agi *agi;   /* owned */
    struct rb_ami *ami;   /* owned; NULL without ami_host */
    struct rb_ivr_calls *calls; /* owned: outbound state */
};

extern struct rb_ivr rb_ivr;

/* ---- ivr_conf.c ---- */
int rb_ivr_conf_parse(struct rb_plugin_ctx *ctx, struct rb_ivr_conf *out);
void rb_ivr_conf_free(struct rb_ivr_conf *c);
/* Loads and checks lua/ivr.lua (prompt catalogue, menus, scripts, self-tests) into out;
 * logs every problem. RB_OK or RB_EINVAL. */
int rb_ivr_lua_load(struct rb_plugin_ctx *ctx, struct rb_ivr_lua *out);
void rb_ivr_lua_free(struct rb_ivr_lua *l);
/* The prompt's file for STREAM FILE: "<dir>/<lang>/<name>" into buf. */
void rb_ivr_prompt(const struct rb_ivr_lua *l, const char *lang, const char *name, char *buf,
                   size_t len);
/* A script step's next step after key ('\0': no key before the time-out). *answer_out is set
 * to 1 when key is an answer to keep. Returns the next step id, or NULL when the question
 * should be asked again. "end" ends the script. */
const char *rb_ivr_step_next(const json_t *step, char key, int *answer_out);
const json_t *rb_ivr_script(const struct rb_ivr_lua *l, const char *name);
const json_t *rb_ivr_named(const struct rb_ivr_lua *l, const char *table, const char *name);
double rb_ivr_num(const json_t *obj, const char *key, double dflt);
const char *rb_ivr_str(const json_t *obj, const char *key, const char *dflt);

/* ---- ivr_hotline.c ---- */
void rb_ivr_hotline_start(struct rb_agi_conn *c);

/* ---- ivr_call.c ---- */
struct rb_ivr_calls *rb_ivr_calls_new(void);
void rb_ivr_calls_free(struct rb_ivr_calls *cs);
void rb_ivr_calls_ami_state(int up);
void rb_ivr_calls_ami_msg(const struct rb_ami_msg *m);
/* An outbound call's AGI session (agi://rabta:4573/call, agi_arg_1 the attempt id). */
void rb_ivr_call_session(struct rb_agi_conn *c);
/* Registers the plugin as the sender of channel "call" (only during init()): each send of a
 * call message is one attempt of its call, reported with message_done when it ends. The
 * message's data: {"script", "trunk", "reply_kind", "ref"} (docs/ivr.md); script
 * "survey:<name>" asks a survey of lua/surveys.lua with the prompts of survey_calls. */
int rb_ivr_call_register(struct rb_plugin_ctx *ctx);
size_t rb_ivr_calls_active(void);

#endif
