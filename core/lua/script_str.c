/* Lua's pattern matching with a step counter (see script_str.h). The matcher follows Lua 5.4's
 * lstrlib.c (MIT licence, Copyright (C) 1994-2023 Lua.org, PUC-Rio) so that rules behave the
 * same; the only change is tick(), which counts the work and calls the clock. */
#include "lua/script_str.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

#include <lauxlib.h>

#define L_ESC '%'
#define SPECIALS "^$*+?.([%-"
#define MAXCCALLS 200
#define MAXCAPTURES 32
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define uchar(c) ((unsigned char)(c))

struct match_state {
    const char *src_init, *src_end, *p_end;
    lua_State *L;
    const struct rb_script_str_clock *clock; /* borrowed */
    size_t steps;
    int matchdepth;
    int level;
    struct {
        const char *init;
        ptrdiff_t len;
    } capture[MAXCAPTURES];
};

static const char *match(struct match_state *ms, const char *s, const char *p);

static void tick(struct match_state *ms, size_t n)
{
    ms->steps += n;
    if (ms->steps >= RB_SCRIPT_STR_STEPS) {
        ms->steps = 0;
        ms->clock->check(ms->L);
    }
}

static int check_capture(struct match_state *ms, int l)
{
    l -= '1';
    if (l < 0 || l >= ms->level || ms->capture[l].len == CAP_UNFINISHED)
        return luaL_error(ms->L, "invalid capture index %%%d", l + 1);
    return l;
}

static int capture_to_close(struct match_state *ms)
{
    for (int level = ms->level - 1; level >= 0; level--)
        if (ms->capture[level].len == CAP_UNFINISHED)
            return level;
    return luaL_error(ms->L, "invalid pattern capture");
}

static const char *class_end(struct match_state *ms, const char *p)
{
    switch (*p++) {
    case L_ESC:
        if (p == ms->p_end)
            luaL_error(ms->L, "malformed pattern (ends with '%%')");
        return p + 1;
    case '[':
        if (*p == '^')
            p++;
        do {
            if (p == ms->p_end)
                luaL_error(ms->L, "malformed pattern (missing ']')");
            if (*(p++) == L_ESC && p < ms->p_end)
                p++;
        } while (*p != ']');
        return p + 1;
    default:
        return p;
    }
}

static int match_class(int c, int cl)
{
    int res;
    switch (tolower(cl)) {
    case 'a': res = isalpha(c); break;
    case 'c': res = iscntrl(c); break;
    case 'd': res = isdigit(c); break;
    case 'g': res = isgraph(c); break;
    case 'l': res = islower(c); break;
    case 'p': res = ispunct(c); break;
    case 's': res = isspace(c); break;
    case 'u': res = isupper(c); break;
    case 'w': res = isalnum(c); break;
    case 'x': res = isxdigit(c); break;
    default: return cl == c;
    }
    if (isupper(cl))
        res = !res;
    return res;
}

static int match_bracket_class(int c, const char *p, const char *ec)
{
    int sig = 1;
    if (*(p + 1) == '^') {
        sig = 0;
        p++;
    }
    while (++p < ec) {
        if (*p == L_ESC) {
            p++;
            if (match_class(c, uchar(*p)))
                return sig;
        } else if (*(p + 1) == '-' && p + 2 < ec) {
            p += 2;
            if (uchar(*(p - 2)) <= c && c <= uchar(*p))
                return sig;
        } else if (uchar(*p) == c) {
            return sig;
        }
    }
    return !sig;
}

static int single_match(struct match_state *ms, const char *s, const char *p, const char *ep)
{
    if (s >= ms->src_end)
        return 0;
    int c = uchar(*s);
    switch (*p) {
    case '.': return 1;
    case L_ESC: return match_class(c, uchar(*(p + 1)));
    case '[': return match_bracket_class(c, p, ep - 1);
    default: return uchar(*p) == c;
    }
}

static const char *match_balance(struct match_state *ms, const char *s, const char *p)
{
    if (p >= ms->p_end - 1)
        luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= ms->src_end || *s != *p)
        return NULL;
    int b = *p, e = *(p + 1), cont = 1;
    const char *from = s;
    while (++s < ms->src_end) {
        if (*s == e) {
            if (--cont == 0) {
                tick(ms, (size_t)(s - from));
                return s + 1;
            }
        } else if (*s == b) {
            cont++;
        }
    }
    tick(ms, (size_t)(s - from));
    return NULL;
}

static const char *max_expand(struct match_state *ms, const char *s, const char *p,
                              const char *ep)
{
    ptrdiff_t i = 0;
    while (single_match(ms, s + i, p, ep))
        i++;
    tick(ms, (size_t)i);
    for (; i >= 0; i--) {
        const char *res = match(ms, s + i, ep + 1);
        if (res)
            return res;
    }
    return NULL;
}

static const char *min_expand(struct match_state *ms, const char *s, const char *p,
                              const char *ep)
{
    for (;;) {
        const char *res = match(ms, s, ep + 1);
        if (res)
            return res;
        if (!single_match(ms, s, p, ep))
            return NULL;
        s++;
    }
}

static const char *start_capture(struct match_state *ms, const char *s, const char *p, int what)
{
    if (ms->level >= MAXCAPTURES)
        luaL_error(ms->L, "too many captures");
    ms->capture[ms->level].init = s;
    ms->capture[ms->level].len = what;
    ms->level++;
    const char *res = match(ms, s, p);
    if (!res)
        ms->level--;
    return res;
}

static const char *end_capture(struct match_state *ms, const char *s, const char *p)
{
    int l = capture_to_close(ms);
    ms->capture[l].len = s - ms->capture[l].init;
    const char *res = match(ms, s, p);
    if (!res)
        ms->capture[l].len = CAP_UNFINISHED;
    return res;
}

static const char *match_capture(struct match_state *ms, const char *s, int l)
{
    l = check_capture(ms, l);
    size_t len = (size_t)ms->capture[l].len;
    tick(ms, len);
    if ((size_t)(ms->src_end - s) >= len && memcmp(ms->capture[l].init, s, len) == 0)
        return s + len;
    return NULL;
}

/* One item with what follows it: NULL (no match), or s; *p moved when the match goes on. */
static const char *match_default(struct match_state *ms, const char *s, const char **pp,
                                 int *again)
{
    const char *p = *pp, *ep = class_end(ms, p);
    if (!single_match(ms, s, p, ep)) {
        if (*ep == '*' || *ep == '?' || *ep == '-') {
            *pp = ep + 1;
            *again = 1;
            return s;
        }
        return NULL;
    }
    switch (*ep) {
    case '?': {
        const char *res = match(ms, s + 1, ep + 1);
        if (res)
            return res;
        *pp = ep + 1;
        *again = 1;
        return s;
    }
    case '+': return max_expand(ms, s + 1, p, ep);
    case '*': return max_expand(ms, s, p, ep);
    case '-': return min_expand(ms, s, p, ep);
    default:
        *pp = ep;
        *again = 1;
        return s + 1;
    }
}

/* %b, %f and back references; *again when the match goes on at *pp. */
static const char *match_escape(struct match_state *ms, const char *s, const char **pp,
                                int *again)
{
    const char *p = *pp;
    switch (*(p + 1)) {
    case 'b':
        s = match_balance(ms, s, p + 2);
        if (s) {
            *pp = p + 4;
            *again = 1;
        }
        return s;
    case 'f': {
        p += 2;
        if (*p != '[')
            luaL_error(ms->L, "missing '[' after '%%f' in pattern");
        const char *ep = class_end(ms, p);
        int previous = s == ms->src_init ? '\0' : uchar(*(s - 1));
        int current = s < ms->src_end ? uchar(*s) : '\0';
        if (!match_bracket_class(previous, p, ep - 1) &&
            match_bracket_class(current, p, ep - 1)) {
            *pp = ep;
            *again = 1;
            return s;
        }
        return NULL;
    }
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        s = match_capture(ms, s, uchar(*(p + 1)));
        if (s) {
            *pp = p + 2;
            *again = 1;
        }
        return s;
    default:
        return match_default(ms, s, pp, again);
    }
}

static const char *match(struct match_state *ms, const char *s, const char *p)
{
    if (ms->matchdepth-- == 0)
        luaL_error(ms->L, "pattern too complex");
    int again = 1;
    while (again && s && p != ms->p_end) {
        tick(ms, 1);
        again = 0;
        switch (*p) {
        case '(':
            s = *(p + 1) == ')' ? start_capture(ms, s, p + 2, CAP_POSITION)
                                : start_capture(ms, s, p + 1, CAP_UNFINISHED);
            break;
        case ')':
            s = end_capture(ms, s, p + 1);
            break;
        case '$':
            if (p + 1 != ms->p_end) {
                s = match_default(ms, s, &p, &again);
                break;
            }
            s = s == ms->src_end ? s : NULL;
            break;
        case L_ESC:
            s = match_escape(ms, s, &p, &again);
            break;
        default:
            s = match_default(ms, s, &p, &again);
            break;
        }
    }
    ms->matchdepth++;
    return s;
}

/* ---- captures ---------------------------------------------------------------------------- */

static void push_one_capture(struct match_state *ms, int i, const char *s, const char *e)
{
    if (i >= ms->level) {
        if (i != 0)
            luaL_error(ms->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(ms->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t l = ms->capture[i].len;
    if (l == CAP_UNFINISHED)
        luaL_error(ms->L, "unfinished capture");
    else if (l == CAP_POSITION)
        lua_pushinteger(ms->L, (ms->capture[i].init - ms->src_init) + 1);
    else
        lua_pushlstring(ms->L, ms->capture[i].init, (size_t)l);
}

static int push_captures(struct match_state *ms, const char *s, const char *e)
{
    int n = ms->level == 0 && s ? 1 : ms->level;
    luaL_checkstack(ms->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_one_capture(ms, i, s, e);
    return n;
}

static void prepare(struct match_state *ms, lua_State *L, const char *s, size_t ls,
                    const char *p, size_t lp)
{
    ms->L = L;
    ms->clock = lua_touserdata(L, lua_upvalueindex(1));
    ms->steps = 0;
    ms->matchdepth = MAXCCALLS;
    ms->src_init = s;
    ms->src_end = s + ls;
    ms->p_end = p + lp;
    ms->level = 0;
}

static void reprepare(struct match_state *ms)
{
    ms->level = 0;
    ms->matchdepth = MAXCCALLS;
}

/* ---- find, match ------------------------------------------------------------------------- */

static size_t pos_relative(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 1;
    return len + (size_t)pos + 1;
}

static int no_specials(const char *p, size_t l)
{
    size_t upto = 0;
    do {
        if (strpbrk(p + upto, SPECIALS))
            return 0;
        upto += strlen(p + upto) + 1;
    } while (upto <= l);
    return 1;
}

static const char *mem_find(struct match_state *ms, const char *s, size_t l, const char *p,
                            size_t lp)
{
    if (lp == 0)
        return s;
    for (const char *end = s + l; (size_t)(end - s) >= lp; s++) {
        const char *hit = memchr(s, *p, (size_t)(end - s) - lp + 1);
        if (!hit)
            return NULL;
        tick(ms, (size_t)(hit - s) + 1);
        s = hit;
        if (memcmp(s + 1, p + 1, lp - 1) == 0)
            return s;
    }
    return NULL;
}

static int find_aux(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls), *p = luaL_checklstring(L, 2, &lp);
    size_t init = pos_relative(luaL_optinteger(L, 3, 1), ls) - 1;
    struct match_state ms;
    if (init > ls) {
        lua_pushnil(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || no_specials(p, lp))) {
        prepare(&ms, L, s, ls, p, lp);
        const char *hit = mem_find(&ms, s + init, ls - init, p, lp);
        if (hit) {
            lua_pushinteger(L, (hit - s) + 1);
            lua_pushinteger(L, (lua_Integer)((size_t)(hit - s) + lp));
            return 2;
        }
    } else {
        const char *s1 = s + init;
        int anchor = *p == '^';
        if (anchor) {
            p++;
            lp--;
        }
        prepare(&ms, L, s, ls, p, lp);
        do {
            reprepare(&ms);
            const char *res = match(&ms, s1, p);
            if (res) {
                if (!find)
                    return push_captures(&ms, s1, res);
                lua_pushinteger(L, (s1 - s) + 1);
                lua_pushinteger(L, res - s);
                return push_captures(&ms, NULL, 0) + 2;
            }
        } while (s1++ < ms.src_end && !anchor);
    }
    lua_pushnil(L);
    return 1;
}

static int str_find(lua_State *L)
{
    return find_aux(L, 1);
}

static int str_match(lua_State *L)
{
    return find_aux(L, 0);
}

/* ---- gmatch ------------------------------------------------------------------------------ */

struct gmatch_state {
    const char *src, *p, *lastmatch;
    struct match_state ms;
};

static int gmatch_aux(lua_State *L)
{
    struct gmatch_state *gm = lua_touserdata(L, lua_upvalueindex(4));
    gm->ms.L = L;
    for (const char *src = gm->src; src <= gm->ms.src_end; src++) {
        reprepare(&gm->ms);
        const char *e = match(&gm->ms, src, gm->p);
        if (e && e != gm->lastmatch) {
            gm->src = gm->lastmatch = e;
            return push_captures(&gm->ms, src, e);
        }
    }
    return 0;
}

static int str_gmatch(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls), *p = luaL_checklstring(L, 2, &lp);
    size_t init = pos_relative(luaL_optinteger(L, 3, 1), ls) - 1;
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the clock, upvalue 1 of gmatch_aux too */
    lua_insert(L, 1);
    struct gmatch_state *gm = lua_newuserdatauv(L, sizeof(*gm), 0);
    if (init > ls)
        init = ls + 1;
    prepare(&gm->ms, L, s, ls, p, lp);
    gm->src = s + init;
    gm->p = p;
    gm->lastmatch = NULL;
    lua_pushcclosure(L, gmatch_aux, 4); /* clock, s, p, state */
    return 1;
}

/* ---- gsub -------------------------------------------------------------------------------- */

static void add_s(struct match_state *ms, luaL_Buffer *b, const char *s, const char *e)
{
    size_t l;
    lua_State *L = ms->L;
    const char *news = lua_tolstring(L, 3, &l), *p;
    while ((p = memchr(news, L_ESC, l)) != NULL) {
        luaL_addlstring(b, news, (size_t)(p - news));
        p++;
        if (*p == L_ESC) {
            luaL_addchar(b, *p);
        } else if (*p == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit(uchar(*p))) {
            push_one_capture(ms, *p - '1', s, e);
            luaL_tolstring(L, -1, NULL);
            lua_remove(L, -2);
            luaL_addvalue(b);
        } else {
            luaL_error(L, "invalid use of '%c' in replacement string", L_ESC);
        }
        l -= (size_t)(p + 1 - news);
        news = p + 1;
    }
    luaL_addlstring(b, news, l);
}

static int add_value(struct match_state *ms, luaL_Buffer *b, const char *s, const char *e,
                     int tr)
{
    lua_State *L = ms->L;
    switch (tr) {
    case LUA_TFUNCTION: {
        lua_pushvalue(L, 3);
        int n = push_captures(ms, s, e);
        lua_call(L, n, 1);
        break;
    }
    case LUA_TTABLE:
        push_one_capture(ms, 0, s, e);
        lua_gettable(L, 3);
        break;
    default:
        add_s(ms, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int str_gsub(lua_State *L)
{
    size_t srcl, lp;
    const char *src = luaL_checklstring(L, 1, &srcl), *p = luaL_checklstring(L, 2, &lp);
    const char *lastmatch = NULL;
    int tr = lua_type(L, 3);
    lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer)srcl + 1), n = 0;
    int anchor = *p == '^', changed = 0;
    luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
                            tr == LUA_TTABLE,
                     3, "string/function/table");
    struct match_state ms;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (anchor) {
        p++;
        lp--;
    }
    prepare(&ms, L, src, srcl, p, lp);
    while (n < max_s) {
        reprepare(&ms);
        const char *e = match(&ms, src, p);
        if (e && e != lastmatch) {
            n++;
            changed = add_value(&ms, &b, src, e, tr) | changed;
            src = lastmatch = e;
        } else if (src < ms.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor)
            break;
    }
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void rb_script_str_wrap(lua_State *L, int idx, const struct rb_script_str_clock *clock)
{
    static const luaL_Reg fns[] = {
        {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch}, {"gsub", str_gsub}};
    idx = lua_absindex(L, idx);
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        lua_pushlightuserdata(L, (void *)clock);
        lua_pushcclosure(L, fns[i].func, 1);
        lua_setfield(L, idx, fns[i].name);
    }
}
