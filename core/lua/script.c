/* The Lua rules engine: a sandboxed lua_State per rules set, route() calls under a time budget
 * and a memory cap, and the scripts' self-tests.
 *
 * Environments. Scripts never see the real globals table. Three tables stand between them:
 *   shared   allow-listed functions and read-only proxies of string, table, math, utf8,
 *            coroutine, os (time/clock/date/difftime) and config; never reachable by scripts.
 *   load env what the files' top level defines (route, tests, helper functions, keyword
 *            tables); its __index is shared.
 *   call env a fresh empty table per route() call whose __index is the load env, so a global
 *            assigned during one call is gone by the next.
 * Every chunk (routing.lua and the modules) shares one _ENV upvalue (lua_upvaluejoin), so
 * setting it once per call points all of their functions at the call env. Every metatable on
 * this path carries __metatable = false, so getmetatable() cannot climb to the tables behind.
 *
 * Limits. A counting allocator refuses to grow the state past mem_limit (Lua then raises a
 * memory error and runs an emergency collection, so the state stays usable). A count hook
 * every RB_SCRIPT_HOOK_COUNT instructions checks a monotonic deadline; once it has passed,
 * the hook fires at every instruction of every thread and raises each time, so a pcall in the
 * script cannot swallow the stop. setmetatable refuses __gc, so no script code can run
 * outside a call (from lua_close or a collection), where no budget applies.
 *
 * Every entry into Lua goes through script_pcall (message handler, budget, hook). */
#include "lua/script.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "base/log.h"
#include "base/text.h"
#include "lua/script_str.h"
#include "lua/templates.h"

#define RB_SCRIPT_HOOK_COUNT 1000
#define RB_SCRIPT_MAX_FILE (4u * 1024u * 1024u)
#define RB_SCRIPT_MAIN "routing"

struct rb_script {
    lua_State *L; /* owned */

    size_t mem_used;    /* bytes the state holds now */
    size_t mem_limit;   /* bytes it may hold */
    size_t mem_refused; /* size of the allocation refused in this call; 0: none */

    double time_limit; /* seconds per route() call */
    double budget;     /* seconds the current call may run */
    double deadline;   /* monotonic; the current call's */
    int expired;       /* the current call ran past its deadline */

    /* Where the count hook last saw the script: memory errors carry no position of their own. */
    char last_src[LUA_IDSIZE];
    int last_line;

    char route_where[LUA_IDSIZE + 16]; /* "lua/routing.lua:120": where route() is defined */

    char triage[RB_SCRIPT_NAME_MAX]; /* the config's triage department */
    char **departments; /* owned; copies of the config's department ids */
    size_t n_departments;

    struct rb_templates templates; /* owned; from lua/templates.lua (template(...) calls) */
    int loading; /* template() may only be called while the files' top level runs */
    int has_templates_file; /* lua/templates.lua exists */

    int ref_chunk; /* registry: routing.lua's main chunk (its _ENV is every chunk's _ENV) */
    int ref_route; /* registry: the route function */
    int ref_envmt; /* registry: metatable of call envs */

    char **modules; /* owned: the names of the files in lua/ (rb_script_call) */
    size_t n_modules;
};

/* One file read into memory before the state exists. */
struct script_file {
    char *name;  /* owned; module name: "routing", "keywords" */
    char *chunk; /* owned; "@lua/routing.lua" */
    char *text;  /* owned */
    size_t len;
};

/* What the load step (run in protected mode) works on. */
struct script_load {
    struct rb_script *s;
    const struct rb_config *cfg;
    struct script_file *files; /* files[0] is routing.lua */
    size_t n_files;
    struct rb_errors *errs;
};

/* One self-test, copied out of the `tests` table. */
struct script_test {
    char *name;                    /* owned */
    char *in_str[7];               /* owned; in the order of case_keys */
    double lat, lon;
    char *department, *category, *sla_policy; /* owned; NULL: not checked */
    int priority;                             /* 0: not checked */
    int check_flags;
    unsigned flags;
};

struct script_tests {
    struct rb_script *s;
    struct script_test *v; /* owned */
    size_t n;
    struct rb_errors *errs;
};

/* One route() call. */
struct script_call {
    struct rb_script *s;
    const struct rb_route_in *in;
    struct rb_route_out *out;
    int checking; /* route() has returned; errors from here on are about its result */
};

static const char *const case_keys[7] = {"service", "kind",     "text",    "district",
                                          "channel", "language", "official"};

static const struct {
    const char *name;
    unsigned bit;
} flag_names[] = {
    {"corruption", RB_ROUTE_F_CORRUPTION},
    {"harassment", RB_ROUTE_F_HARASSMENT},
    {"urgent", RB_ROUTE_F_URGENT},
};

static char sentinel_loading; /* address marks a module whose top level is running */

/* ---- allocator and hook ------------------------------------------------------------------ */

static void *script_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct rb_script *s = ud;
    if (ptr == NULL)
        osize = 0; /* osize is then a type tag, not a size */
    if (nsize == 0) {
        free(ptr);
        s->mem_used -= osize;
        return NULL;
    }
    if (nsize > osize && s->mem_used - osize + nsize > s->mem_limit) {
        s->mem_refused = nsize;
        return NULL; /* Lua collects, retries once, then raises a memory error */
    }
    void *p = realloc(ptr, nsize);
    if (p == NULL)
        return nsize <= osize ? ptr : NULL; /* Lua assumes shrinking never fails */
    s->mem_used = s->mem_used - osize + nsize;
    return p;
}

static struct rb_script *script_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

static void script_hook(lua_State *L, lua_Debug *ar)
{
    struct rb_script *s = script_of(L);
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0) {
        memcpy(s->last_src, ar->short_src, sizeof(s->last_src));
        s->last_line = ar->currentline;
    }
    if (!s->expired) {
        if (rb_now_mono() < s->deadline)
            return;
        s->expired = 1;
    }
    /* From now on every instruction raises, in this thread and the main one. */
    lua_sethook(L, script_hook, LUA_MASKCOUNT, 1);
    if (L != s->L)
        lua_sethook(s->L, script_hook, LUA_MASKCOUNT, 1);
    lua_pushfstring(L, "%s:%d: time limit of %d ms exceeded", ar->short_src, ar->currentline,
                    (int)(s->budget * 1000.0 + 0.5));
    lua_error(L);
}

/* The pattern functions' clock (script_str.c): past the deadline of a budgeted call, stop the
 * match as the hook stops a loop, naming the line of the rule that called it. */
static void script_str_check(lua_State *L)
{
    struct rb_script *s = script_of(L);
    if (lua_gethook(s->L) == NULL)
        return; /* outside a call: no budget */
    if (!s->expired && rb_now_mono() < s->deadline)
        return;
    s->expired = 1;
    lua_sethook(L, script_hook, LUA_MASKCOUNT, 1);
    if (L != s->L)
        lua_sethook(s->L, script_hook, LUA_MASKCOUNT, 1);
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++)
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
            luaL_error(L, "%s:%d: time limit of %d ms exceeded (in a string pattern)",
                       ar.short_src, ar.currentline, (int)(s->budget * 1000.0 + 0.5));
    luaL_error(L, "time limit of %d ms exceeded (in a string pattern)",
               (int)(s->budget * 1000.0 + 0.5));
}

static const struct rb_script_str_clock script_str_clock = {script_str_check};

/* ---- the one way into Lua ---------------------------------------------------------------- */

/* Message handler: makes sure the message is a string that starts with "lua/FILE.lua:LINE:".
 * Error objects that are not strings are described, never converted by their own __tostring
 * (which would run script code inside the handler). */
static int script_msgh(lua_State *L)
{
    const char *msg = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
                          ? lua_tostring(L, 1)
                          : lua_pushfstring(L, "error object is a %s value", luaL_typename(L, 1));
    if (strncmp(msg, "lua/", 4) == 0)
        return 1;
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
            return 1;
        }
    }
    return 1;
}

/* Runs fn(ud) in protected mode under budget seconds with the message handler. For errors
 * that carry no position, where names the code that runs: a file ("lua/routing.lua"), or
 * with what = "route()" the line where that function starts ("lua/routing.lua:120").
 * Returns RB_OK, or RB_ERR with the message in err. */
static int script_pcall(struct rb_script *s, lua_CFunction fn, void *ud, double budget,
                        const char *where, const char *what, char *err, size_t errlen)
{
    lua_State *L = s->L;
    int base = lua_gettop(L);
    lua_pushcfunction(L, script_msgh);
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, ud);
    s->budget = budget;
    s->deadline = rb_now_mono() + budget;
    s->expired = 0;
    s->mem_refused = 0;
    s->last_line = 0;
    lua_sethook(L, script_hook, LUA_MASKCOUNT, RB_SCRIPT_HOOK_COUNT);
    int rc = lua_pcall(L, 1, 0, base + 1);
    lua_sethook(L, NULL, 0, 0);
    if (rc == LUA_OK) {
        lua_settop(L, base);
        return RB_OK;
    }
    if (rc == LUA_ERRMEM && s->mem_refused) {
        size_t mib = s->mem_limit >> 20;
        if (s->last_line > 0)
            snprintf(err, errlen, "%s:%d: memory limit of %zu MiB exceeded (an allocation of %zu "
                     "bytes was refused)", s->last_src, s->last_line, mib, s->mem_refused);
        else if (what)
            snprintf(err, errlen, "%s: memory limit of %zu MiB exceeded in %s, which starts at "
                     "this line (an allocation of %zu bytes was refused)", where, mib, what,
                     s->mem_refused);
        else
            snprintf(err, errlen, "%s: memory limit of %zu MiB exceeded (an allocation of %zu "
                     "bytes was refused)", where, mib, s->mem_refused);
    } else if (rc == LUA_ERRMEM) {
        snprintf(err, errlen, "%s: out of memory", where);
    } else {
        const char *msg = lua_tostring(L, -1);
        if (msg && strncmp(msg, "lua/", 4) == 0)
            snprintf(err, errlen, "%s", msg);
        else
            snprintf(err, errlen, "%s: %s", where, msg ? msg : "error in error handling");
    }
    lua_settop(L, base);
    rb_text_cut_utf8(err); /* a message cut by errlen may end inside a character */
    if (rc == LUA_ERRMEM)
        lua_gc(L, LUA_GCCOLLECT); /* give the memory back now; no finalizers can run */
    return RB_ERR;
}

/* ---- sandbox ----------------------------------------------------------------------------- */

/* Read-only proxies: an empty table whose metatable points at the real one. rawset is not
 * in the sandbox, so the proxy itself stays empty. */
static void ro_real(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        luaL_error(L, "not a read-only table");
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    lua_remove(L, -2);
}

static int ro_newindex(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING)
        return luaL_error(L, "attempt to modify read-only table (field '%s')", lua_tostring(L, 2));
    return luaL_error(L, "attempt to modify read-only table");
}

static int ro_len(lua_State *L)
{
    ro_real(L, 1);
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
    return 1;
}

static int ro_next(lua_State *L)
{
    lua_settop(L, 2);
    ro_real(L, 1);
    lua_insert(L, 2); /* proxy, real, key */
    if (lua_next(L, 2))
        return 2;
    lua_pushnil(L);
    return 1;
}

static int ro_pairs(lua_State *L)
{
    lua_pushcfunction(L, ro_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Replaces the table on top of the stack with a read-only proxy of it. */
static void ro_wrap(lua_State *L)
{
    lua_createtable(L, 0, 0);          /* real, proxy */
    lua_createtable(L, 0, 5);          /* real, proxy, mt */
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, ro_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, ro_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_remove(L, -2);
}

/* print(...) goes to our log at info level, prefixed with file:line. */
static int sb_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_where(L, 1);
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    rb_info("lua", "%s%s", lua_tostring(L, -2), lua_tostring(L, -1));
    return 0;
}

static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage(\"%s\") is not allowed in rules; only \"count\" is",
                          opt);
    lua_pushnumber(L, (lua_Number)script_of(L)->mem_used / 1024.0);
    return 1;
}

/* xpcall whose handler is skipped once the time is up. An error raised by the count hook
 * calls the message handler while hooks are off, so a looping handler would never be
 * stopped; after expiry the message is passed through unchanged instead.
 * Upvalue 1: the script's handler. */
static int sb_xpcall_handler(lua_State *L)
{
    if (script_of(L)->expired)
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* Upvalue 1: the real xpcall. */
static int sb_xpcall(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, sb_xpcall_handler, 1);
    lua_replace(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* setmetatable without __gc: a finalizer would run outside any call's budget. */
static int sb_setmetatable(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in rules");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* the real setmetatable */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int valid_name(const char *p, size_t len)
{
    if (len == 0 || len >= RB_SCRIPT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* ---- message templates (lua/templates.lua) ----------------------------------------------- */

/* template(name, {en = "...", ur = "..."}): declares one message template (templates.c),
 * only while the files' top level runs, so that errors carry the caller's file:line. */
static int sb_template(lua_State *L)
{
    struct rb_script *s = script_of(L);
    if (!s->loading)
        return luaL_error(L, "template(): templates are declared when the files load, not "
                             "inside route()");
    return rb_templates_declare(L, &s->templates);
}

/* require(name): the file lua/<name>.lua, compiled at load, run once, result cached.
 * Upvalues: 1 = name -> chunk, 2 = name -> result. */
static int sb_require(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (!valid_name(name, len))
        return luaL_error(L, "require: bad module name \"%s\": give the name of a file in lua/ "
                             "without \".lua\" (lowercase letters, digits and _)",
                          name);
    lua_settop(L, 1);
    if (lua_getfield(L, lua_upvalueindex(2), name) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == &sentinel_loading)
            return luaL_error(L, "require: module \"%s\" is required while it loads (a loop)",
                              name);
        return 1;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, lua_upvalueindex(1), name) != LUA_TFUNCTION)
        return luaL_error(L, "require: no module \"%s\" (there is no file lua/%s.lua)", name,
                          name);
    lua_pushlightuserdata(L, &sentinel_loading);
    lua_setfield(L, lua_upvalueindex(2), name);
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pushnil(L);
        lua_setfield(L, lua_upvalueindex(2), name);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, lua_upvalueindex(2), name);
    return 1;
}

/* Copies the named fields of the table at src into the table on top, then wraps it. */
static void copy_fields(lua_State *L, int src, const char *const *names)
{
    for (; *names; names++) {
        lua_getfield(L, src, *names);
        lua_setfield(L, -2, *names);
    }
}

static void push_i18n(lua_State *L, const struct rb_i18n *n)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, n->en);
    lua_setfield(L, -2, "en");
    lua_pushstring(L, n->ur);
    lua_setfield(L, -2, "ur");
    ro_wrap(L);
}

/* config = {departments = {[id] = {id, name, plugin}}, services = {[id] = {id, name,
 * department, feedback}}, districts = {[id] = {id, name, division}}, triage_department},
 * all read-only. */
static void push_config(lua_State *L, const struct rb_config *cfg)
{
    lua_createtable(L, 0, 3);
    lua_createtable(L, 0, (int)cfg->n_departments);
    for (size_t i = 0; i < cfg->n_departments; i++) {
        const struct rb_department *d = &cfg->departments[i];
        lua_createtable(L, 0, 3);
        lua_pushstring(L, d->id);
        lua_setfield(L, -2, "id");
        push_i18n(L, &d->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, d->plugin);
        lua_setfield(L, -2, "plugin");
        ro_wrap(L);
        lua_setfield(L, -2, d->id);
    }
    ro_wrap(L);
    lua_setfield(L, -2, "departments");
    lua_createtable(L, 0, (int)cfg->n_services);
    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct rb_service *sv = &cfg->services[i];
        lua_createtable(L, 0, 4);
        lua_pushstring(L, sv->id);
        lua_setfield(L, -2, "id");
        push_i18n(L, &sv->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, sv->department);
        lua_setfield(L, -2, "department");
        lua_pushboolean(L, sv->feedback);
        lua_setfield(L, -2, "feedback");
        ro_wrap(L);
        lua_setfield(L, -2, sv->id);
    }
    ro_wrap(L);
    lua_setfield(L, -2, "services");
    lua_createtable(L, 0, (int)cfg->n_districts);
    for (size_t i = 0; i < cfg->n_districts; i++) {
        const struct rb_district *di = &cfg->districts[i];
        lua_createtable(L, 0, 3);
        lua_pushstring(L, di->id);
        lua_setfield(L, -2, "id");
        push_i18n(L, &di->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, di->division);
        lua_setfield(L, -2, "division");
        ro_wrap(L);
        lua_setfield(L, -2, di->id);
    }
    ro_wrap(L);
    lua_setfield(L, -2, "districts");
    lua_pushstring(L, cfg->triage_department ? cfg->triage_department
                                             : RB_SCRIPT_TRIAGE_DEPARTMENT);
    lua_setfield(L, -2, "triage_department");
    ro_wrap(L);
}

/* Opens a library, keeps its table on the stack, drops its global. */
static void open_lib(lua_State *L, const char *name, lua_CFunction open)
{
    luaL_requiref(L, name, open, 0);
}

/* Builds the shared environment and leaves it on top of the stack. */
static void push_shared_env(lua_State *L, const struct rb_config *cfg)
{
    static const char *const base_names[] = {
        "assert",   "error",  "ipairs",   "next",     "pairs",  "pcall",    "rawequal",
        "rawlen",   "rawget", "select",   "tonumber", "tostring", "type",
        "getmetatable", "_VERSION", NULL};
    static const char *const os_names[] = {"time", "clock", "date", "difftime", NULL};

    open_lib(L, "_G", luaopen_base); /* the real globals: never given to scripts */
    int g = lua_gettop(L);
    lua_createtable(L, 0, 32);
    int env = lua_gettop(L);
    copy_fields(L, g, base_names);

    lua_pushcfunction(L, sb_print);
    lua_setfield(L, env, "print");
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setfield(L, env, "collectgarbage");
    lua_pushcfunction(L, sb_template);
    lua_setfield(L, env, "template");
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setfield(L, env, "setmetatable");
    lua_getfield(L, g, "xpcall");
    lua_pushcclosure(L, sb_xpcall, 1);
    lua_setfield(L, env, "xpcall");

    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump"); /* bytecode has no use without load */
    /* the real table, which the strings' metatable uses too: ("x"):find is budgeted as well */
    rb_script_str_wrap(L, -1, &script_str_clock);
    ro_wrap(L);
    lua_setfield(L, env, "string");
    /* The strings' own metatable: its __index is the real string table; hide it. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    ro_wrap(L);
    lua_setfield(L, env, "table");
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    ro_wrap(L);
    lua_setfield(L, env, "math");
    open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
    ro_wrap(L);
    lua_setfield(L, env, "utf8");
    open_lib(L, LUA_COLIBNAME, luaopen_coroutine);
    ro_wrap(L);
    lua_setfield(L, env, "coroutine");
    open_lib(L, LUA_OSLIBNAME, luaopen_os);
    int os = lua_gettop(L);
    lua_createtable(L, 0, 4);
    copy_fields(L, os, os_names);
    ro_wrap(L);
    lua_setfield(L, env, "os");
    lua_settop(L, env);

    push_config(L, cfg);
    lua_setfield(L, env, "config");
    lua_remove(L, g);
}

/* ---- load -------------------------------------------------------------------------------- */

static int file_cmp(const void *a, const void *b)
{
    const struct script_file *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static void files_free(struct script_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].name);
        free(f[i].chunk);
        free(f[i].text);
    }
    free(f);
}

/* Reads path into f. Returns RB_OK or RB_ERR after adding an error. */
static int file_read(const char *path, const char *name, struct script_file *f,
                     struct rb_errors *errs)
{
    f->name = rb_strdup(name);
    f->chunk = rb_sprintf("@lua/%s.lua", name);
    f->text = NULL;
    f->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rb_errors_add(errs, "lua/%s.lua: cannot open %s: %s", name, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return RB_ERR;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > RB_SCRIPT_MAX_FILE) {
        rb_errors_add(errs, "lua/%s.lua: %s is not a regular file of at most %u MiB", name, path,
                      RB_SCRIPT_MAX_FILE >> 20);
        close(fd);
        return RB_ERR;
    }
    f->text = rb_malloc((size_t)st.st_size + 1);
    while (f->len < (size_t)st.st_size) {
        ssize_t r = read(fd, f->text + f->len, (size_t)st.st_size - f->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rb_errors_add(errs, "lua/%s.lua: cannot read %s: %s", name, path, strerror(errno));
            close(fd);
            return RB_ERR;
        }
        if (r == 0)
            break;
        f->len += (size_t)r;
    }
    close(fd);
    return RB_OK;
}

/* Reads routing.lua and every other NAME.lua of dir (sorted by name, routing first). */
static int files_read(const char *dir, struct script_file **out, size_t *n_out,
                      struct rb_errors *errs)
{
    size_t n = 1, cap = 8;
    struct script_file *v = rb_calloc(cap, sizeof(*v));
    char *path = rb_sprintf("%s/%s.lua", dir, RB_SCRIPT_MAIN);
    int rc = file_read(path, RB_SCRIPT_MAIN, &v[0], errs);
    free(path);
    DIR *d = opendir(dir);
    if (!d) {
        rb_errors_add(errs, "lua/: cannot open the directory %s: %s", dir, strerror(errno));
        rc = RB_ERR;
    }
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".lua") != 0)
            continue;
        if (len - 4 == strlen(RB_SCRIPT_MAIN) && strncmp(de->d_name, RB_SCRIPT_MAIN, len - 4) == 0)
            continue;
        if (!valid_name(de->d_name, len - 4)) {
            rb_warn("script", "lua/%s: skipped: a module's name is lowercase letters, digits "
                              "and _ followed by .lua",
                    de->d_name);
            continue;
        }
        if (n == cap) {
            cap *= 2;
            v = rb_realloc(v, cap * sizeof(*v));
        }
        char *name = rb_strndup(de->d_name, len - 4);
        path = rb_sprintf("%s/%s", dir, de->d_name);
        if (file_read(path, name, &v[n], errs) != RB_OK)
            rc = RB_ERR;
        n++;
        free(path);
        free(name);
    }
    if (d)
        closedir(d);
    qsort(v + 1, n - 1, sizeof(*v), file_cmp);
    *out = v;
    *n_out = n;
    return rc;
}

/* Compiles the file as text; adds an error and returns 0 on failure, leaves the chunk on the
 * stack and returns 1 on success. */
static int compile_file(lua_State *L, const struct script_file *f, struct rb_errors *errs)
{
    int rc = luaL_loadbufferx(L, f->text, f->len, f->chunk, "t");
    if (rc == LUA_OK)
        return 1;
    const char *msg = lua_tostring(L, -1);
    if (rc == LUA_ERRMEM)
        rb_errors_add(errs, "%s: memory limit exceeded while compiling", f->chunk + 1);
    else if (msg && strncmp(msg, f->chunk + 1, strlen(f->chunk + 1)) == 0)
        rb_errors_add(errs, "%s", msg);
    else
        rb_errors_add(errs, "%s: %s", f->chunk + 1, msg ? msg : "cannot compile");
    lua_pop(L, 1);
    return 0;
}

/* Protected: builds the sandbox, compiles every file, runs routing.lua's top level and finds
 * route(). Compile errors are added to ld->errs; run-time errors are raised. */
static int load_step(lua_State *L)
{
    struct script_load *ld = lua_touserdata(L, 1);
    struct rb_script *s = ld->s;

    push_shared_env(L, ld->cfg); /* shared */
    int shared = lua_gettop(L);
    lua_createtable(L, 0, 16); /* load env */
    int loadenv = lua_gettop(L);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, shared);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, loadenv);

    lua_createtable(L, 0, 2); /* metatable of call envs */
    lua_pushvalue(L, loadenv);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    s->ref_envmt = luaL_ref(L, LUA_REGISTRYINDEX);

    size_t nerr = ld->errs->n;
    if (!compile_file(L, &ld->files[0], ld->errs))
        lua_pushnil(L);
    int chunk = lua_gettop(L);
    lua_createtable(L, 0, (int)ld->n_files); /* modules: name -> chunk */
    int modules = lua_gettop(L);
    for (size_t i = 1; i < ld->n_files; i++) {
        if (!compile_file(L, &ld->files[i], ld->errs))
            continue;
        if (!lua_isnil(L, chunk))
            lua_upvaluejoin(L, -1, 1, chunk, 1);
        lua_setfield(L, modules, ld->files[i].name);
    }
    if (ld->errs->n > nerr)
        return 0;

    lua_pushvalue(L, loadenv);
    lua_setupvalue(L, chunk, 1);
    lua_pushvalue(L, modules);
    lua_createtable(L, 0, 4); /* loaded modules */
    lua_pushcclosure(L, sb_require, 2);
    lua_setfield(L, shared, "require");

    lua_pushvalue(L, chunk);
    s->ref_chunk = luaL_ref(L, LUA_REGISTRYINDEX);
    s->loading = 1;
    lua_pushvalue(L, chunk);
    lua_call(L, 0, 0);
    /* lua/templates.lua runs even when routing.lua does not require it. */
    if (lua_getfield(L, modules, RB_TEMPLATES_MODULE) == LUA_TFUNCTION) {
        s->has_templates_file = 1;
        lua_getfield(L, shared, "require");
        lua_pushliteral(L, RB_TEMPLATES_MODULE);
        lua_call(L, 1, 0);
    }
    lua_pop(L, 1);
    s->loading = 0;

    lua_pushliteral(L, "route");
    if (lua_rawget(L, loadenv) != LUA_TFUNCTION)
        return luaL_error(L, "lua/%s.lua: it must define a function route(case) (route is a %s "
                             "value)",
                          RB_SCRIPT_MAIN, luaL_typename(L, -1));
    lua_Debug ar;
    lua_pushvalue(L, -1);
    lua_getinfo(L, ">S", &ar);
    if (ar.linedefined > 0)
        snprintf(s->route_where, sizeof(s->route_where), "%s:%d", ar.short_src, ar.linedefined);
    else
        snprintf(s->route_where, sizeof(s->route_where), "%s", ar.short_src);
    s->ref_route = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* ---- route() ----------------------------------------------------------------------------- */

static void push_opt_string(lua_State *L, const char *v, const char *key)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, key);
    }
}

/* Copies string field key of the result table at idx into buf (RB_SCRIPT_NAME_MAX) after
 * checking it; def when absent (NULL: required). Raises on a bad value. */
static void result_name(lua_State *L, struct rb_script *s, int idx, const char *key,
                        const char *def, char *buf)
{
    lua_pushstring(L, key);
    int t = lua_rawget(L, idx);
    if (t == LUA_TNIL && def) {
        memcpy(buf, def, strlen(def) + 1);
    } else if (t != LUA_TSTRING) {
        luaL_error(L, "%s: route() returned %s = %s value, expected a string", s->route_where,
                   key, luaL_typename(L, -1));
    } else {
        size_t len;
        const char *v = lua_tolstring(L, -1, &len);
        if (!valid_name(v, len))
            luaL_error(L, "%s: route() returned %s = \"%s\", expected lowercase letters, digits "
                          "and _ (at most %d)",
                       s->route_where, key, v, RB_SCRIPT_NAME_MAX - 1);
        memcpy(buf, v, len + 1);
    }
    lua_pop(L, 1);
}

/* Reads a list of flag names at idx into *flags. Returns NULL or an error description. */
static const char *read_flags(lua_State *L, int idx, unsigned *flags)
{
    *flags = 0;
    if (lua_type(L, idx) != LUA_TTABLE)
        return "flags must be a list of names such as {\"corruption\"}";
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, idx, i) != LUA_TSTRING) {
            lua_pop(L, 1);
            return "flags must be a list of names such as {\"corruption\"}";
        }
        const char *name = lua_tostring(L, -1);
        size_t k;
        for (k = 0; k < RB_ARRAY_LEN(flag_names); k++) {
            if (strcmp(name, flag_names[k].name) == 0)
                break;
        }
        lua_pop(L, 1);
        if (k == RB_ARRAY_LEN(flag_names))
            return "flags may only name corruption, harassment and urgent";
        *flags |= flag_names[k].bit;
    }
    return NULL;
}

/* A fresh _ENV for this call, shared by every chunk. */
static void fresh_env(lua_State *L, struct rb_script *s)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_chunk);
    lua_createtable(L, 0, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_envmt);
    lua_setmetatable(L, -2);
    lua_setupvalue(L, -2, 1);
    lua_pop(L, 1);
}

/* Protected: one route() call and the check of its result. */
static int route_step(lua_State *L)
{
    struct script_call *c = lua_touserdata(L, 1);
    struct rb_script *s = c->s;
    const struct rb_route_in *in = c->in;
    struct rb_route_out *out = c->out;

    fresh_env(L, s);

    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_route);
    lua_createtable(L, 0, 9);
    push_opt_string(L, in->service, "service");
    push_opt_string(L, in->kind, "kind");
    push_opt_string(L, in->text, "text");
    push_opt_string(L, in->district, "district");
    push_opt_string(L, in->channel, "channel");
    push_opt_string(L, in->language, "language");
    push_opt_string(L, in->official, "official");
    if (!isnan(in->lat) && !isnan(in->lon)) {
        lua_pushnumber(L, in->lat);
        lua_setfield(L, -2, "lat");
        lua_pushnumber(L, in->lon);
        lua_setfield(L, -2, "lon");
    }
    lua_call(L, 1, 1);
    c->checking = 1;

    int r = lua_gettop(L);
    if (lua_type(L, r) != LUA_TTABLE)
        return luaL_error(L, "%s: route() returned a %s value, expected a table such as "
                             "{department = \"revenue\"}",
                          s->route_where, luaL_typename(L, r));
    /* Only raw reads from here: no script code runs while the result is checked. */
    result_name(L, s, r, "department", NULL, out->department);
    size_t k;
    for (k = 0; k < s->n_departments; k++) {
        if (strcmp(out->department, s->departments[k]) == 0)
            break;
    }
    if (k == s->n_departments)
        return luaL_error(L, "%s: route() returned department \"%s\", which is not in the "
                             "configuration",
                          s->route_where, out->department);
    result_name(L, s, r, "category", "general", out->category);
    result_name(L, s, r, "sla_policy", "default", out->sla_policy);

    lua_pushliteral(L, "priority");
    int t = lua_rawget(L, r);
    out->priority = 3;
    if (t != LUA_TNIL) {
        int isint = 0;
        lua_Integer p = t == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
        if (!isint || p < 1 || p > 5)
            return luaL_error(L, "%s: route() returned priority = %s, expected a whole number "
                                 "from 1 (highest) to 5",
                              s->route_where, luaL_tolstring(L, -1, NULL));
        out->priority = (int)p;
    }
    lua_pop(L, 1);

    lua_pushliteral(L, "flags");
    out->flags = 0;
    if (lua_rawget(L, r) != LUA_TNIL) {
        const char *why = read_flags(L, lua_gettop(L), &out->flags);
        if (why)
            return luaL_error(L, "%s: route() returned bad flags: %s", s->route_where, why);
    }
    lua_pop(L, 1);
    out->triage = 0;
    return 0;
}

static void set_triage(const struct rb_script *s, struct rb_route_out *out)
{
    snprintf(out->department, sizeof(out->department), "%s", s->triage);
    snprintf(out->category, sizeof(out->category), "%s", RB_SCRIPT_TRIAGE_CATEGORY);
    snprintf(out->sla_policy, sizeof(out->sla_policy), "%s", RB_SCRIPT_TRIAGE_SLA);
    out->priority = RB_SCRIPT_TRIAGE_PRIORITY;
    out->flags = 0;
    out->triage = 1;
}

/* rb_script_route without the log line (self-tests report through errs instead). */
static int route_quiet(struct rb_script *s, const struct rb_route_in *in,
                       struct rb_route_out *out, char *err, size_t errlen)
{
    struct script_call c = {s, in, out, 0};
    if (script_pcall(s, route_step, &c, s->time_limit, s->route_where, "route()", err,
                     errlen) == RB_OK)
        return RB_OK;
    set_triage(s, out);
    return c.checking ? RB_EINVAL : RB_ERR;
}

int rb_script_route(struct rb_script *s, const struct rb_route_in *in, struct rb_route_out *out,
                    char *err, size_t errlen)
{
    char buf[512];
    int rc = route_quiet(s, in, out, buf, sizeof(buf));
    if (rc != RB_OK) {
        rb_warn("script", "routing failed, the case goes to triage (%s): %s", s->triage, buf);
        if (err && errlen) {
            snprintf(err, errlen, "%s", buf);
            rb_text_cut_utf8(err);
        }
    } else if (err && errlen) {
        err[0] = '\0';
    }
    return rc;
}

/* ---- self-tests -------------------------------------------------------------------------- */

static void tests_free(struct script_test *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        for (size_t k = 0; k < RB_ARRAY_LEN(v[i].in_str); k++)
            free(v[i].in_str[k]);
        free(v[i].department);
        free(v[i].category);
        free(v[i].sla_policy);
    }
    free(v);
}

/* Reads one self-test entry at idx into t. Returns NULL or what is wrong with it. */
static const char *test_read(lua_State *L, int idx, struct script_test *t)
{
    t->lat = t->lon = NAN;
    if (lua_type(L, idx) != LUA_TTABLE)
        return "each entry of tests must be a table {name = ..., case = {...}, expect = {...}}";
    lua_getfield(L, idx, "name");
    if (lua_type(L, -1) != LUA_TSTRING)
        return "name must be a string";
    t->name = rb_strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "case") != LUA_TTABLE)
        return "case must be a table of case fields";
    int c = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, c)) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        size_t k;
        for (k = 0; k < RB_ARRAY_LEN(case_keys); k++) {
            if (strcmp(key, case_keys[k]) == 0)
                break;
        }
        int geo = strcmp(key, "lat") == 0 || strcmp(key, "lon") == 0;
        if (k < RB_ARRAY_LEN(case_keys) && lua_type(L, -1) == LUA_TSTRING) {
            t->in_str[k] = rb_strdup(lua_tostring(L, -1));
        } else if (geo && lua_type(L, -1) == LUA_TNUMBER) {
            *(key[1] == 'a' ? &t->lat : &t->lon) = lua_tonumber(L, -1);
        } else if (k < RB_ARRAY_LEN(case_keys) || geo) {
            return lua_pushfstring(L, "case field \"%s\" must be a %s, not a %s value", key,
                                   geo ? "number" : "string", luaL_typename(L, -1));
        } else {
            return lua_pushfstring(L, "case field \"%s\" is unknown (known: service, kind, text, "
                                      "district, channel, language, official, lat, lon)",
                                   key);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "expect") != LUA_TTABLE)
        return "expect must be a table such as {department = \"police\", priority = 1}";
    int e = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, e)) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        char **dst = strcmp(key, "department") == 0   ? &t->department
                     : strcmp(key, "category") == 0   ? &t->category
                     : strcmp(key, "sla_policy") == 0 ? &t->sla_policy
                                                      : NULL;
        if (dst && lua_type(L, -1) == LUA_TSTRING) {
            *dst = rb_strdup(lua_tostring(L, -1));
        } else if (strcmp(key, "priority") == 0 && lua_isinteger(L, -1)) {
            t->priority = (int)lua_tointeger(L, -1);
        } else if (strcmp(key, "flags") == 0) {
            const char *why = read_flags(L, lua_gettop(L), &t->flags);
            if (why)
                return why;
            t->check_flags = 1;
        } else {
            return lua_pushfstring(L, "expect field \"%s\" is unknown or of the wrong type (known: "
                                      "department, category, priority, sla_policy, flags)",
                                   key);
        }
        lua_pop(L, 1);
    }
    return NULL;
}

/* Protected: copies the global `tests` into C. Malformed entries become errors. */
static int tests_step(lua_State *L)
{
    struct script_tests *ts = lua_touserdata(L, 1);
    struct rb_script *s = ts->s;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_envmt);
    lua_getfield(L, -1, "__index"); /* the load env */
    int t = lua_getfield(L, -1, "tests");
    if (t == LUA_TNIL)
        return 0;
    if (t != LUA_TTABLE)
        return luaL_error(L, "lua/%s.lua: tests must be a list of self-tests, not a %s value",
                          RB_SCRIPT_MAIN, luaL_typename(L, -1));
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    ts->v = rb_calloc((size_t)n, sizeof(*ts->v));
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        struct script_test *st = &ts->v[ts->n++];
        const char *why = test_read(L, lua_gettop(L), st);
        if (why) {
            if (st->name)
                rb_errors_add(ts->errs, "lua/%s.lua: self-test \"%s\": %s", RB_SCRIPT_MAIN,
                              st->name, why);
            else
                rb_errors_add(ts->errs, "lua/%s.lua: self-test #%lld: %s", RB_SCRIPT_MAIN,
                              (long long)i, why);
        }
        lua_settop(L, list);
    }
    return 0;
}

static void test_expect_str(struct rb_errors *errs, const char *name, const char *key,
                            const char *want, const char *got)
{
    if (want && strcmp(want, got) != 0)
        rb_errors_add(errs, "lua/%s.lua: self-test \"%s\": expected %s %s, got %s", RB_SCRIPT_MAIN,
                      name, key, want, got);
}

static void flags_str(unsigned flags, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < RB_ARRAY_LEN(flag_names); k++) {
        if (flags & flag_names[k].bit)
            off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "",
                                    flag_names[k].name);
    }
    if (off == 0)
        snprintf(buf, len, "none");
}

static void run_tests(struct rb_script *s, struct rb_errors *errs)
{
    struct script_tests ts = {s, NULL, 0, errs};
    char err[512];
    size_t nerr = errs->n;
    if (script_pcall(s, tests_step, &ts, RB_SCRIPT_LOAD_TIME_LIMIT, "lua/" RB_SCRIPT_MAIN ".lua",
                     NULL, err, sizeof(err)) != RB_OK)
        rb_errors_add(errs, "%s", err);
    if (errs->n > nerr) {
        tests_free(ts.v, ts.n);
        return;
    }
    if (ts.n == 0)
        rb_warn("script", "lua/%s.lua defines no self-tests (a global table `tests`)",
                RB_SCRIPT_MAIN);
    for (size_t i = 0; i < ts.n; i++) {
        const struct script_test *t = &ts.v[i];
        struct rb_route_in in = {
            .service = t->in_str[0],
            .kind = t->in_str[1] ? t->in_str[1] : "complaint",
            .text = t->in_str[2],
            .district = t->in_str[3],
            .channel = t->in_str[4] ? t->in_str[4] : "app",
            .language = t->in_str[5] ? t->in_str[5] : "en",
            .official = t->in_str[6],
            .lat = t->lat,
            .lon = t->lon,
        };
        struct rb_route_out out;
        if (route_quiet(s, &in, &out, err, sizeof(err)) != RB_OK) {
            rb_errors_add(errs, "lua/%s.lua: self-test \"%s\": route() failed: %s",
                          RB_SCRIPT_MAIN, t->name, err);
            continue;
        }
        test_expect_str(errs, t->name, "department", t->department, out.department);
        test_expect_str(errs, t->name, "category", t->category, out.category);
        test_expect_str(errs, t->name, "sla_policy", t->sla_policy, out.sla_policy);
        if (t->priority && t->priority != out.priority)
            rb_errors_add(errs, "lua/%s.lua: self-test \"%s\": expected priority %d, got %d",
                          RB_SCRIPT_MAIN, t->name, t->priority, out.priority);
        if (t->check_flags && t->flags != out.flags) {
            char want[64], got[64];
            flags_str(t->flags, want, sizeof(want));
            flags_str(out.flags, got, sizeof(got));
            rb_errors_add(errs, "lua/%s.lua: self-test \"%s\": expected flags %s, got %s",
                          RB_SCRIPT_MAIN, t->name, want, got);
        }
    }
    tests_free(ts.v, ts.n);
}

/* ---- calls into a module (lua/surveys.lua) ----------------------------------------------- */

#define JSON_DEPTH_MAX 16

/* Pushes v as a Lua value (objects and arrays as tables, null as nil). */
static void push_json(lua_State *L, const json_t *v, int depth)
{
    if (depth > JSON_DEPTH_MAX)
        luaL_error(L, "a value nested deeper than %d levels", JSON_DEPTH_MAX);
    luaL_checkstack(L, 4, "json");
    if (json_is_object(v)) {
        lua_createtable(L, 0, (int)json_object_size(v));
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            push_json(L, x, depth + 1);
            lua_setfield(L, -2, k);
        }
    } else if (json_is_array(v)) {
        lua_createtable(L, (int)json_array_size(v), 0);
        for (size_t i = 0; i < json_array_size(v); i++) {
            push_json(L, json_array_get(v, i), depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    } else if (json_is_string(v)) {
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
    } else if (json_is_real(v)) {
        lua_pushnumber(L, json_real_value(v));
    } else if (json_is_boolean(v)) {
        lua_pushboolean(L, json_is_true(v));
    } else {
        lua_pushnil(L);
    }
}

/* The Lua value at idx as JSON (a table with keys 1..n as an array, else an object with
 * string keys). Raises on functions, other keys, depth. Returns a new reference. */
static json_t *to_json(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        return lua_isinteger(L, idx) ? json_integer((json_int_t)lua_tointeger(L, idx))
                                     : json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *p = lua_tolstring(L, idx, &len);
        if (rb_text_valid_utf8(p, len, NULL) != RB_OK)
            luaL_error(L, "a result string is not valid UTF-8");
        return json_stringn(p, len);
    }
    case LUA_TTABLE:
        break;
    default:
        luaL_error(L, "a result holds a %s value", luaL_typename(L, idx));
    }
    if (depth > JSON_DEPTH_MAX)
        luaL_error(L, "a result nested deeper than %d levels", JSON_DEPTH_MAX);
    luaL_checkstack(L, 4, "json");
    size_t n = lua_rawlen(L, idx);
    json_t *out = n > 0 ? json_array() : json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int is_index = lua_type(L, -2) == LUA_TNUMBER && lua_isinteger(L, -2);
        if (n > 0 ? !is_index : lua_type(L, -2) != LUA_TSTRING) {
            json_decref(out);
            luaL_error(L, "a result table mixes list and named keys");
        }
        json_t *x = to_json(L, -1, depth + 1);
        if (n > 0) {
            lua_Integer i = lua_tointeger(L, -2);
            while (json_array_size(out) < (size_t)i)
                json_array_append_new(out, json_null());
            json_array_set_new(out, (size_t)i - 1, x);
        } else {
            json_object_set_new(out, lua_tostring(L, -2), x);
        }
        lua_pop(L, 1);
    }
    return out;
}

struct module_call {
    struct rb_script *s;
    const char *module, *fn;
    const json_t *in;
    json_t *out; /* new */
};

/* Protected: require(module)[fn](in) under a fresh _ENV, its result as JSON. */
static int module_step(lua_State *L)
{
    struct module_call *c = lua_touserdata(L, 1);
    struct rb_script *s = c->s;
    fresh_env(L, s);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_envmt);
    lua_getfield(L, -1, "__index");
    lua_getfield(L, -1, "require");
    lua_pushstring(L, c->module);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TTABLE)
        return luaL_error(L, "lua/%s.lua must return a table of functions", c->module);
    if (lua_getfield(L, -1, c->fn) != LUA_TFUNCTION)
        return luaL_error(L, "lua/%s.lua has no function %s", c->module, c->fn);
    if (c->in)
        push_json(L, c->in, 0);
    else
        lua_createtable(L, 0, 0);
    lua_call(L, 1, 1);
    c->out = to_json(L, -1, 0);
    return 0;
}

int rb_script_has_module(const struct rb_script *s, const char *module)
{
    for (size_t i = 0; s && i < s->n_modules; i++)
        if (strcmp(s->modules[i], module) == 0)
            return 1;
    return 0;
}

json_t *rb_script_call(struct rb_script *s, const char *module, const char *fn,
                       const json_t *in, char *err, size_t errlen)
{
    char where[96];
    snprintf(where, sizeof(where), "lua/%s.lua", module);
    if (!rb_script_has_module(s, module)) {
        snprintf(err, errlen, "there is no %s", where);
        return NULL;
    }
    struct module_call c = {s, module, fn, in, NULL};
    if (script_pcall(s, module_step, &c, s->time_limit * 5, where, NULL, err, errlen) !=
        RB_OK) {
        json_decref(c.out);
        return NULL;
    }
    return c.out;
}

/* lua/surveys.lua's self_test(), when the file exists: failures become errors. */
static void run_module_tests(struct rb_script *s, struct rb_errors *errs)
{
    if (!rb_script_has_module(s, "surveys"))
        return;
    char err[512];
    json_t *r = rb_script_call(s, "surveys", "self_test", NULL, err, sizeof(err));
    if (!r) {
        rb_errors_add(errs, "%s", err);
        return;
    }
    json_t *f = json_object_get(r, "failures");
    for (size_t i = 0; i < json_array_size(f); i++)
        rb_errors_add(errs, "lua/surveys.lua: %s", json_string_value(json_array_get(f, i)));
    json_decref(r);
}

/* ---- public ------------------------------------------------------------------------------ */

struct rb_script *rb_script_load(const char *lua_dir, const struct rb_config *cfg,
                                 struct rb_errors *errs)
{
    size_t nerr = errs->n;
    struct rb_script *s = rb_calloc(1, sizeof(*s));
    s->mem_limit = RB_SCRIPT_MEM_LIMIT;
    s->time_limit = RB_SCRIPT_TIME_LIMIT;
    s->ref_chunk = s->ref_route = s->ref_envmt = LUA_NOREF;
    snprintf(s->route_where, sizeof(s->route_where), "lua/%s.lua", RB_SCRIPT_MAIN);
    s->departments = rb_calloc(cfg->n_departments, sizeof(*s->departments));
    for (size_t i = 0; i < cfg->n_departments; i++)
        s->departments[s->n_departments++] = rb_strdup(cfg->departments[i].id);
    const char *triage =
        cfg->triage_department ? cfg->triage_department : RB_SCRIPT_TRIAGE_DEPARTMENT;
    snprintf(s->triage, sizeof(s->triage), "%s", triage);
    if (!rb_config_department(cfg, triage) || strlen(triage) >= sizeof(s->triage))
        rb_errors_add(errs, "lua/%s.lua: the configuration has no department \"%s\", where "
                            "cases go when the rules fail",
                      RB_SCRIPT_MAIN, triage);

    struct script_load ld = {s, cfg, NULL, 0, errs};
    if (files_read(lua_dir, &ld.files, &ld.n_files, errs) != RB_OK || errs->n > nerr)
        goto fail;
    s->L = lua_newstate(script_alloc, s);
    if (!s->L) {
        rb_errors_add(errs, "lua/%s.lua: cannot create a Lua state", RB_SCRIPT_MAIN);
        goto fail;
    }
    char err[512];
    if (script_pcall(s, load_step, &ld, RB_SCRIPT_LOAD_TIME_LIMIT, "lua/" RB_SCRIPT_MAIN ".lua",
                     NULL, err, sizeof(err)) != RB_OK)
        rb_errors_add(errs, "%s", err);
    if (errs->n > nerr)
        goto fail;
    s->modules = rb_calloc(ld.n_files, sizeof(*s->modules));
    for (size_t i = 0; i < ld.n_files; i++)
        s->modules[s->n_modules++] = rb_strdup(ld.files[i].name);
    files_free(ld.files, ld.n_files);
    ld.files = NULL;
    ld.n_files = 0;
    run_tests(s, errs);
    run_module_tests(s, errs);
    if (s->has_templates_file)
        rb_templates_check(&s->templates, errs);
    else
        rb_warn("script", "there is no lua/%s.lua: no SMS or notice can be written",
                RB_TEMPLATES_MODULE);
    if (errs->n > nerr)
        goto fail;
    lua_gc(s->L, LUA_GCCOLLECT);
    return s;
fail:
    files_free(ld.files, ld.n_files);
    rb_script_free(s);
    return NULL;
}

/* ---- a module's value as data ------------------------------------------------------------ */

struct script_data {
    struct rb_script *s;
    const char *name;
    json_t *out; /* owned until taken */
};

/* The value at idx as JSON: a table whose keys are exactly 1..n is an array, one with string
 * keys an object; strings, numbers and booleans as such. Raises on anything else. */
static json_t *lua_to_json(lua_State *L, int idx, int depth, const char *path)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *v = lua_tolstring(L, idx, &len);
        json_t *j = json_stringn(v, len);
        if (!j)
            luaL_error(L, "%s: the text is not valid UTF-8", path);
        return j;
    }
    case LUA_TNUMBER:
        return lua_isinteger(L, idx) ? json_integer(lua_tointeger(L, idx))
                                     : json_real(lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TTABLE:
        break;
    default:
        luaL_error(L, "%s: a %s value cannot be data (only tables, strings, numbers and "
                      "booleans)", path, luaL_typename(L, idx));
    }
    if (depth > 16)
        luaL_error(L, "%s: tables nested more than 16 deep", path);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        lua_pop(L, 1);
    }
    json_t *j = count > 0 && count == n ? json_array() : json_object();
    for (lua_Integer i = 0; json_is_array(j) && i < n; i++)
        json_array_append_new(j, json_null());
    char sub[256];
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (json_is_array(j)) {
            lua_Integer k = lua_tointeger(L, -2);
            snprintf(sub, sizeof(sub), "%s[%lld]", path, (long long)k);
            json_array_set_new(j, (size_t)(k - 1), lua_to_json(L, -1, depth + 1, sub));
        } else {
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "%s: a table mixes list items and named fields, or has a key "
                              "that is not a name", path);
            const char *k = lua_tostring(L, -2);
            snprintf(sub, sizeof(sub), "%s.%s", path, k);
            json_object_set_new(j, k, lua_to_json(L, -1, depth + 1, sub));
        }
        lua_pop(L, 1);
    }
    return j;
}

/* Protected: require(name) through the sandbox's own require, then its value as JSON. */
static int data_step(lua_State *L)
{
    struct script_data *d = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->s->ref_chunk);
    lua_getupvalue(L, -1, 1); /* the load env; require comes through its __index */
    lua_getfield(L, -1, "require");
    lua_pushstring(L, d->name);
    lua_call(L, 1, 1);
    d->out = lua_to_json(L, -1, 0, d->name);
    return 0;
}

char *rb_script_module_json(struct rb_script *s, const char *name, char *err, size_t errlen)
{
    if (!s || !s->L || s->ref_chunk == LUA_NOREF) {
        snprintf(err, errlen, "lua/%s.lua: no rules are loaded", name);
        return NULL;
    }
    if (!valid_name(name, strlen(name))) {
        snprintf(err, errlen, "bad module name \"%s\"", name);
        return NULL;
    }
    struct script_data d = {s, name, NULL};
    char where[96];
    snprintf(where, sizeof(where), "lua/%s.lua", name);
    if (script_pcall(s, data_step, &d, RB_SCRIPT_LOAD_TIME_LIMIT, where, NULL, err, errlen) !=
        RB_OK) {
        json_decref(d.out);
        return NULL;
    }
    char *text = json_dumps(d.out, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(d.out);
    if (!text)
        rb_fatal("out of memory encoding lua/%s.lua", name);
    return text;
}

void rb_script_set_limits(struct rb_script *s, double time_limit, size_t mem_limit)
{
    if (time_limit > 0)
        s->time_limit = time_limit;
    if (mem_limit > 0)
        s->mem_limit = mem_limit;
}

size_t rb_script_memory(const struct rb_script *s)
{
    return s->mem_used;
}

const char *rb_route_flag_name(unsigned flag)
{
    for (size_t k = 0; k < RB_ARRAY_LEN(flag_names); k++) {
        if (flag == flag_names[k].bit)
            return flag_names[k].name;
    }
    return NULL;
}

void rb_script_free(struct rb_script *s)
{
    if (!s)
        return;
    if (s->L)
        lua_close(s->L);
    for (size_t i = 0; i < s->n_departments; i++)
        free(s->departments[i]);
    free(s->departments);
    for (size_t i = 0; i < s->n_modules; i++)
        free(s->modules[i]);
    free(s->modules);
    rb_templates_clear(&s->templates);
    free(s);
}

const struct rb_templates *rb_script_templates(const struct rb_script *s)
{
    return s ? &s->templates : NULL;
}
