/* Loading plugins: dlopen each plugin rabta.yaml names, check magic, ABI number and struct
 * size before calling anything, and hand each its host API table. Plugins are loaded once and
 * never unloaded while the process runs; reload re-reads YAML and Lua only. */
#ifndef RB_PLUGIN_LOADER_H
#define RB_PLUGIN_LOADER_H

#include <rabta/plugin.h>
#include "config/config.h"
#include "config/yaml_doc.h"

struct rb_plugins;
struct rb_server;

/* Opens and checks every enabled plugin of cfg. Returns a new set, or NULL with one sentence
 * per refused file in errs ("plugins/x.so was built for plugin ABI 2, this rabtad speaks
 * ABI 1: rebuild the plugin against this version"). */
struct rb_plugins *rb_plugins_load(const struct rb_config *cfg, struct rb_errors *errs);
/* Opens one file and checks it (used by the loader and by the ABI tests). On success returns
 * the descriptor and stores the dlopen handle in *handle. */
const struct rb_plugin *rb_plugin_open(const char *path, void **handle, struct rb_errors *errs);

int rb_plugins_init(struct rb_plugins *ps, struct rb_server *srv);   /* calls every init() */
/* rabtad --check: each plugin checks its configuration (and Lua) without serving: one with a
 * check() entry (descriptor RB_PLUGIN_SIZE_V2) has it called; any other has init() called
 * (then stop()) with the routes, job handlers and paces it registers made inert. Its
 * configuration errors and the sentences it logs as errors go to errs; the senders it
 * registers go to srv->senders, so that the configuration's channels can be checked. RB_OK or RB_EINVAL. */
int rb_plugins_check(struct rb_plugins *ps, struct rb_server *srv, struct rb_errors *errs);
int rb_plugins_start(struct rb_plugins *ps);                          /* calls every start() */
void rb_plugins_reload(struct rb_plugins *ps, const struct rb_config *cfg);
void rb_plugins_stop(struct rb_plugins *ps);                          /* calls every stop() */
void rb_plugins_free(struct rb_plugins *ps);                          /* dlclose at exit */
size_t rb_plugins_count(const struct rb_plugins *ps);
/* The i-th loaded plugin's name (load order), or NULL past the last. Borrowed. */
const char *rb_plugins_name(const struct rb_plugins *ps, size_t i);
const struct rb_plugin *rb_plugins_get(const struct rb_plugins *ps, const char *name);

/* Hands a case.deliver run to the delivery function of plugin `name`; RB_ENOTFOUND (nothing
 * called) when no such plugin is loaded or it registered none. */
/* 1 when plugin name takes deliveries and wants the new cases of department (intake). */
int rb_plugins_wants_delivery(struct rb_plugins *ps, const char *name, const char *department);
int rb_plugins_deliver(struct rb_plugins *ps, const char *name, struct rb_job_run *run,
                       const struct rb_job_info *job, const struct rb_delivery *d);

/* The host API table core hands to plugins. */
const struct rb_host_api *rb_host_api_get(void);

#endif
