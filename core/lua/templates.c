/* Message templates (templates.h). */
#include "lua/templates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "base/common.h"
#include "base/text.h"
#include "cases/case_state.h"

/* ---- the templates the code uses ---------------------------------------------------------- */

/* Each with the placeholders it may use (the values the code passes). "status.*" is one per
 * case state (the STATUS reply's status words). */
static const struct {
    const char *name;
    const char *params[6];
} required[] = {
    {"sms.received", {"tracking"}},
    {"sms.status", {"tracking", "status"}},
    {"sms.not_found", {"tracking"}},
    {"sms.help", {NULL}},
    {"sms.stop", {NULL}},
    {"sms.start", {NULL}},
    {"sms.flood", {NULL}},
    {"sms.rated", {"tracking"}},
    {"sms.reopened", {"tracking"}},
    {"sms.rating_closed", {"tracking"}},
    {"sms.replied", {"tracking"}},
    {"sms.reply_not_found", {"tracking"}},
    {"otp", {"code", "minutes"}},
    {"notice.routed", {"tracking", "department"}},
    {"notice.acknowledge", {"tracking", "department"}},
    {"notice.transfer", {"tracking", "department"}},
    {"notice.resolve", {"tracking", "department"}},
    {"notice.answer", {"tracking", "department"}},
    {"duty.new_case", {"kind", "tracking", "department", "service", "district", "priority"}},
    {"sla.escalated", {"tracking", "department", "service", "level", "hours", "minutes"}},
    {"notice.closed_no_reply", {"tracking", "department"}},
    {"kind.complaint", {NULL}},
    {"kind.feedback", {NULL}},
    {"kind.information", {NULL}},
    {"survey.question", {"question"}},
    {"survey.call", {"survey"}},
    {"survey.thanks", {NULL}},
};

/* Sample values for the length check: as long as real ones get. */
static const struct {
    const char *name, *value;
} samples[] = {
    {"tracking", "RB-ABCD-EFGH-JKLM"},
    {"status", "متعلقہ محکمے کو بھیج دی گئی"},
    {"department", "Punjab Local Government and Community Development"},
    {"code", "123456"},
    {"minutes", "10"},
    {"service", "Fard (record of rights) issuance at an Arazi Record Centre"},
    {"level", "3"},
    {"hours", "1234"},
    {"question", "رابطہ: آپ نے ڈسٹرکٹ لائسنسنگ سینٹر لاہور سے ڈرائیونگ لائسنس کا اجرا حاصل کیا۔ کیا آپ مطمئن ہیں؟ ہاں کے لیے 1، نہیں کے لیے 2 بھیجیں۔"},
    {"survey", "default"},
};

int rb_template_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > 63 || name[0] < 'a' || name[0] > 'z')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* Length of the placeholder name at p (just after '{'), up to its '}'; 0 if malformed. */
static size_t placeholder(const char *p, const char *end)
{
    size_t n = 0;
    while (p + n < end && n <= 32 &&
           ((p[n] >= 'a' && p[n] <= 'z') || p[n] == '_' || (n > 0 && p[n] >= '0' && p[n] <= '9')))
        n++;
    return n > 0 && n <= 32 && p + n < end && p[n] == '}' ? n : 0;
}

const char *rb_template_text_check(const char *text, size_t len)
{
    if (len == 0)
        return "is empty";
    if (rb_text_valid_utf8(text, len, NULL) != RB_OK || memchr(text, '\0', len))
        return "is not valid UTF-8";
    if (rb_text_chars(text, len) > RB_TEMPLATE_MAX_CHARS)
        return "is longer than 320 characters (an SMS of five Urdu parts)";
    const char *end = text + len;
    for (const char *p = text; p < end; p++) {
        if (*p == '}')
            return "has a } that closes no placeholder (write {name})";
        if (*p != '{')
            continue;
        size_t n = placeholder(p + 1, end);
        if (!n)
            return "has a malformed placeholder (write {name}: lowercase letters, digits, _)";
        p += n + 1;
    }
    return NULL;
}

char *rb_template_fill(const char *text, const json_t *params, char *why, size_t whylen)
{
    size_t len = strlen(text), cap = len + 64, o = 0;
    char *out = rb_malloc(cap);
    const char *end = text + len;
    for (const char *p = text; p < end;) {
        size_t n = *p == '{' ? placeholder(p + 1, end) : 0;
        if (!n) {
            if (o + 1 >= cap)
                out = rb_realloc(out, cap *= 2);
            out[o++] = *p++;
            continue;
        }
        char key[40], num[40];
        memcpy(key, p + 1, n);
        key[n] = '\0';
        const json_t *v = params ? json_object_get(params, key) : NULL;
        const char *val = NULL;
        if (json_is_string(v))
            val = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v)), val = num;
        else if (json_is_real(v))
            snprintf(num, sizeof(num), "%g", json_real_value(v)), val = num;
        if (!val) {
            snprintf(why, whylen, "no value for {%s}", key);
            free(out);
            return NULL;
        }
        size_t vl = strlen(val);
        while (o + vl + 1 >= cap)
            out = rb_realloc(out, cap *= 2);
        memcpy(out + o, val, vl);
        o += vl;
        p += n + 2;
    }
    out[o] = '\0';
    return out;
}

char *rb_template_render(const struct rb_templates *ts, const char *name, const char *language,
                         const json_t *params, char *why, size_t whylen)
{
    const struct rb_template *t = rb_templates_find(ts, name);
    if (!t) {
        snprintf(why, whylen, "there is no template \"%s\" in lua/%s.lua", name,
                 RB_TEMPLATES_MODULE);
        return NULL;
    }
    const char *text = language && strcmp(language, "en") == 0 ? t->en : t->ur;
    char *out = rb_template_fill(text, params, why, whylen);
    if (out && rb_text_chars(out, strlen(out)) > RB_TEMPLATE_MAX_CHARS) {
        snprintf(why, whylen, "template \"%s\" renders longer than %d characters", name,
                 RB_TEMPLATE_MAX_CHARS);
        free(out);
        return NULL;
    }
    return out;
}

/* Adds an error for every placeholder of text that is not in allowed (NULL-terminated). */
static void check_params(const struct rb_template *t, const char *lang, const char *text,
                         const char *const *allowed, size_t nallowed, struct rb_errors *errs)
{
    const char *end = text + strlen(text);
    for (const char *p = text; p < end; p++) {
        size_t n = *p == '{' ? placeholder(p + 1, end) : 0;
        if (!n)
            continue;
        size_t k;
        for (k = 0; k < nallowed && allowed[k]; k++)
            if (strlen(allowed[k]) == n && strncmp(allowed[k], p + 1, n) == 0)
                break;
        if (k == nallowed || !allowed[k]) {
            char list[128] = "";
            for (k = 0; k < nallowed && allowed[k]; k++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s{%s}",
                         k ? ", " : "", allowed[k]);
            rb_errors_add(errs, "lua/%s.lua:%d: template \"%s\" (%s): unknown placeholder "
                                "{%.*s}; it may use %s",
                          RB_TEMPLATES_MODULE, t->line, t->name, lang, (int)n, p + 1,
                          list[0] ? list : "none");
        }
        p += n + 1;
    }
}

/* The sample params: every known sample, and "XXXXXXXXXXXXXXXX" for any other name. */
static json_t *sample_params(const char *text)
{
    json_t *o = json_object();
    for (size_t i = 0; i < RB_ARRAY_LEN(samples); i++)
        json_object_set_new(o, samples[i].name, json_string(samples[i].value));
    const char *end = text + strlen(text);
    for (const char *p = text; p < end; p++) {
        size_t n = *p == '{' ? placeholder(p + 1, end) : 0;
        if (!n)
            continue;
        char key[40];
        memcpy(key, p + 1, n);
        key[n] = '\0';
        if (!json_object_get(o, key))
            json_object_set_new(o, key, json_string("XXXXXXXXXXXXXXXX"));
        p += n + 1;
    }
    return o;
}

void rb_templates_check(const struct rb_templates *ts, struct rb_errors *errs)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(required); i++) {
        const struct rb_template *t = rb_templates_find(ts, required[i].name);
        if (!t) {
            rb_errors_add(errs, "lua/%s.lua: template \"%s\" is missing (the server writes it)",
                          RB_TEMPLATES_MODULE, required[i].name);
            continue;
        }
        check_params(t, "en", t->en, required[i].params, RB_ARRAY_LEN(required[i].params),
                     errs);
        check_params(t, "ur", t->ur, required[i].params, RB_ARRAY_LEN(required[i].params),
                     errs);
    }
    for (int st = 0; st < RB_CASE_STATE_COUNT; st++) {
        char name[64];
        snprintf(name, sizeof(name), "status.%s", rb_case_state_str((enum rb_case_state)st));
        const struct rb_template *t = rb_templates_find(ts, name);
        static const char *const none[1] = {NULL};
        if (!t)
            rb_errors_add(errs, "lua/%s.lua: template \"%s\" is missing (the words for a "
                                "case's status)",
                          RB_TEMPLATES_MODULE, name);
        else {
            check_params(t, "en", t->en, none, 1, errs);
            check_params(t, "ur", t->ur, none, 1, errs);
        }
    }
    const struct rb_template *all = ts->v;
    for (size_t i = 0; i < ts->n; i++) {
        const char *texts[2] = {all[i].en, all[i].ur}, *langs[2] = {"en", "ur"};
        for (int k = 0; k < 2; k++) {
            json_t *p = sample_params(texts[k]);
            char why[160];
            char *out = rb_template_fill(texts[k], p, why, sizeof(why));
            if (!out)
                rb_errors_add(errs, "lua/%s.lua:%d: template \"%s\" (%s) does not render: %s",
                              RB_TEMPLATES_MODULE, all[i].line, all[i].name, langs[k], why);
            else if (rb_text_chars(out, strlen(out)) > RB_TEMPLATE_MAX_CHARS)
                rb_errors_add(errs, "lua/%s.lua:%d: template \"%s\" (%s) renders to %zu "
                                    "characters with long values; at most %d fit in an SMS",
                              RB_TEMPLATES_MODULE, all[i].line, all[i].name, langs[k],
                              rb_text_chars(out, strlen(out)), RB_TEMPLATE_MAX_CHARS);
            free(out);
            json_decref(p);
        }
    }
}

/* ---- the set ------------------------------------------------------------------------------ */

int rb_templates_declare(lua_State *L, struct rb_templates *ts)
{
    size_t nlen;
    const char *name = luaL_checklstring(L, 1, &nlen);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!rb_template_name_ok(name, nlen))
        return luaL_error(L, "template(\"%s\"): a name is lowercase letters, digits, _ and . "
                             "(at most 63)", name);
    const struct rb_template *dup = rb_templates_find(ts, name);
    if (dup)
        return luaL_error(L, "template(\"%s\"): declared twice (first at line %d)", name,
                          dup->line);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING || (strcmp(lua_tostring(L, -2), "en") != 0 &&
                                               strcmp(lua_tostring(L, -2), "ur") != 0))
            return luaL_error(L, "template(\"%s\"): only the keys en and ur are allowed", name);
        lua_pop(L, 1);
    }
    const char *text[2];
    static const char *const langs[2] = {"en", "ur"};
    for (int k = 0; k < 2; k++) {
        size_t len;
        if (lua_getfield(L, 2, langs[k]) != LUA_TSTRING)
            return luaL_error(L, "template(\"%s\"): %s must be a text (it is %s)", name,
                              langs[k], luaL_typename(L, -1));
        text[k] = lua_tolstring(L, -1, &len);
        const char *why = rb_template_text_check(text[k], len);
        if (why)
            return luaL_error(L, "template(\"%s\"): the %s text %s", name, langs[k], why);
    }
    lua_Debug ar;
    int line = lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar) ? ar.currentline : 0;
    ts->v = rb_realloc(ts->v, (ts->n + 1) * sizeof(*ts->v));
    struct rb_template *t = &ts->v[ts->n++];
    t->name = rb_strndup(name, nlen);
    t->en = rb_strdup(text[0]);
    t->ur = rb_strdup(text[1]);
    t->line = line;
    lua_pop(L, 2);
    return 0;
}

const struct rb_template *rb_templates_find(const struct rb_templates *ts, const char *name)
{
    for (size_t i = 0; ts && i < ts->n; i++)
        if (strcmp(ts->v[i].name, name) == 0)
            return &ts->v[i];
    return NULL;
}

void rb_templates_clear(struct rb_templates *ts)
{
    for (size_t i = 0; i < ts->n; i++) {
        free(ts->v[i].name);
        free(ts->v[i].en);
        free(ts->v[i].ur);
    }
    free(ts->v);
    ts->v = NULL;
    ts->n = 0;
}
