/* core/lua/: what administrators write in lua/. The sandboxed rules engine (script: one
 * lua_State per rules set, budgets, self-tests) and the message templates it loads (templates:
 * declared in lua/templates.lua, kept, checked and rendered here). Calls: base, config, cases
 * (the states' names). */
/* The Lua rules engine: lua/routing.lua decides where each case goes.
 *
 * One struct rb_script is one compiled rules set with its own lua_State. It is built by
 * rb_script_load (compile lua/routing.lua and every other Lua file in lua/, run the top level once,
 * run the scripts' self-tests) and used by rb_script_route for every new case. A reload builds
 * a new rb_script and swaps it in only if rb_script_load succeeded; the old one is freed.
 *
 * The scripts run in a sandbox (see docs/rules.md and STYLE.md): text chunks only, an
 * allow-list of libraries, read-only shared tables, a fresh _ENV for every call, a time budget
 * per call enforced by an instruction-count hook, and a memory cap on the whole state.
 *
 * rb_script_route never loses a case: on any failure it still fills out with the triage
 * decision (the config's triage_department, "bureau" by default; category "triage",
 * priority 3, SLA policy "default") and
 * returns an error whose message starts with the Lua file and line ("lua/routing.lua:42: ...").
 *
 * Not thread-safe: one rb_script is used by one thread (the event loop) at a time. */
#ifndef RB_SCRIPT_H
#define RB_SCRIPT_H

struct rb_templates;

#include <stddef.h>
#include "config/config.h"
#include "config/yaml_doc.h"

/* Defaults; rb_script_set_limits changes them for one rules set. */
#define RB_SCRIPT_TIME_LIMIT 0.020                 /* seconds per route() call */
#define RB_SCRIPT_LOAD_TIME_LIMIT 1.0              /* seconds for the top level of all files */
#define RB_SCRIPT_MEM_LIMIT (16u * 1024u * 1024u)  /* bytes for the whole lua_State */

/* Longest id, category or SLA policy name, including the terminating NUL. */
#define RB_SCRIPT_NAME_MAX 64

/* The triage decision used whenever the rules fail (the department: cfg->triage_department,
 * or RB_SCRIPT_TRIAGE_DEPARTMENT when that is NULL). */
#define RB_SCRIPT_TRIAGE_DEPARTMENT "bureau"
#define RB_SCRIPT_TRIAGE_CATEGORY "triage"
#define RB_SCRIPT_TRIAGE_PRIORITY 3
#define RB_SCRIPT_TRIAGE_SLA "default"

/* Flags a rule may set on a case; route() returns them by name: flags = {"corruption"}. */
enum rb_route_flag {
    RB_ROUTE_F_CORRUPTION = 1u << 0, /* "corruption": a bribe or other corruption is alleged */
    RB_ROUTE_F_HARASSMENT = 1u << 1, /* "harassment": harassment, threats or misbehaviour */
    RB_ROUTE_F_URGENT = 1u << 2,     /* "urgent": danger to life, health or safety */
};

/* One case as the rules see it. Every string is borrowed for the duration of the call; NULL
 * means absent (the Lua field is then nil). */
struct rb_route_in {
    const char *service;  /* service id from config/services, or NULL */
    const char *kind;     /* "complaint", "feedback" or "information" */
    const char *text;     /* what the citizen wrote or said (UTF-8), or NULL */
    const char *district; /* district id, or NULL */
    const char *channel;  /* "app", "sms", "ivr", "web" or "open311" */
    const char *language; /* "ur" or "en" */
    double lat, lon;      /* NAN when absent (both are then nil in Lua) */
    const char *official; /* name of an official the case names, or NULL */
};

/* The decision. Strings are copied into the struct: it owns nothing and outlives the call. */
struct rb_route_out {
    char department[RB_SCRIPT_NAME_MAX]; /* an id that exists in the config */
    char category[RB_SCRIPT_NAME_MAX];   /* lowercase slug; default "general" */
    char sla_policy[RB_SCRIPT_NAME_MAX]; /* lowercase slug; default "default" */
    int priority;                        /* 1 (highest) .. 5; default 3 */
    unsigned flags;                      /* RB_ROUTE_F_* */
    int triage;                          /* 1: the rules failed and this is the fallback */
};

struct rb_script;

/* Loads lua_dir/routing.lua and makes every other lua_dir/NAME.lua available to it through
 * require("NAME"). cfg is read during the call only: department ids (which route() may
 * return), the triage department (which must exist) and the services, departments and
 * districts (visible to the scripts as the read-only table `config`) are copied. Runs the
 * self-tests in the global table `tests`.
 * Returns a new rules set, or NULL with every problem added to errs (each message starts with
 * "lua/FILE.lua" and, where there is one, the line). Caller frees with rb_script_free. */
struct rb_script *rb_script_load(const char *lua_dir, const struct rb_config *cfg,
                                 struct rb_errors *errs);

/* Changes the time budget per route() call (seconds) and the memory cap of the state (bytes);
 * 0 keeps the current value. A memory cap below what the state already uses takes effect
 * as soon as it grows. */
void rb_script_set_limits(struct rb_script *s, double time_limit, size_t mem_limit);

/* Routes one case. Returns RB_OK with out filled, or on failure (runtime error, time or
 * memory limit, a result that is not a valid decision):
 *   RB_ERR    the script failed (error, time limit, memory limit);
 *   RB_EINVAL route() returned something that is not a valid decision;
 * with out filled with the triage decision (out->triage = 1), the message written to err
 * (if err is not NULL; truncated to errlen) and logged at warn level. */
int rb_script_route(struct rb_script *s, const struct rb_route_in *in, struct rb_route_out *out,
                    char *err, size_t errlen);

/* Bytes the state uses now (for metrics and tests). */
size_t rb_script_memory(const struct rb_script *s);

/* Flag name ("corruption") for one RB_ROUTE_F_* bit, or NULL. */
const char *rb_route_flag_name(unsigned flag);

/* The rules set's message templates (lua/templates.lua). Borrowed; valid while the set
 * lives (a reload swaps rules and templates together). NULL for a NULL set. */
const struct rb_templates *rb_script_templates(const struct rb_script *s);

/* The value of lua/NAME.lua (what require("NAME") returns in the sandbox, run once and kept)
 * as JSON text: tables with keys 1..n are arrays, tables with names objects. For plugins that
 * keep their own settings in Lua (menus, call scripts). Returns a new string (caller frees),
 * or NULL with err ("lua/ivr.lua:12: ..."). */
char *rb_script_module_json(struct rb_script *s, const char *name, char *err, size_t errlen);
/* Calls function fn of the table that lua/<module>.lua returns (lua/surveys.lua) with one
 * argument, in as a Lua table (NULL: an empty one), under the time budget and memory cap,
 * and returns the result as a new JSON value (a table with keys 1..n becomes an array, one
 * with string keys an object). NULL with err ("lua/surveys.lua:42: ...") on any failure.
 * At load, a lua/surveys.lua must pass its self_test() or the rules set is refused. */
#include <jansson.h>
json_t *rb_script_call(struct rb_script *s, const char *module, const char *fn,
                       const json_t *in, char *err, size_t errlen);
/* 1 when lua/<module>.lua exists in this rules set. */
int rb_script_has_module(const struct rb_script *s, const char *module);

/* Frees the rules set and its lua_State. NULL is fine. */
void rb_script_free(struct rb_script *s);

#endif
