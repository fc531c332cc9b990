/* The plugin's settings: its YAML block and lua/ivr.lua, checked at --check, start and reload
 * (docs/ivr.md). lua/ivr.lua returns a table; the host hands it over as JSON (lua_data) and
 * the plugin keeps that JSON tree. Every problem is logged as "lua/ivr.lua: <path>: <why>". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivr.h"

#define LUA_FILE "lua/ivr.lua"

static const struct rb_ivr_conf conf_defaults = {
    .ami_port = 5038,
    .record_max = 120.0,
    .record_silence = 5.0,
    .key_timeout = 5.0,
    .menu_tries = 3,
    .max_recording = 4 * 1024 * 1024,
};

/* Checks of single values (reported by the core at the value's file:line:col). */
static const char *record_max_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x >= 1 && x <= 600 ? NULL : "must be from 1s to 10m";
}

static const char *record_silence_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x >= 0 && x <= 60 ? NULL : "must be from 0s to 1m";
}

static const char *key_timeout_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x >= 1 && x <= 30 ? NULL : "must be from 1s to 30s";
}

/* Listed after ami_username and ami_secret, so the block holds them when this runs. */
static const char *ami_host_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)v, (void)why, (void)n;
    const struct rb_ivr_conf *c = block;
    return c->ami_username && c->ami_secret ? NULL : "needs ami_username and ami_secret";
}

#define F(key, type, member, flags, min, max, check)                                          \
    {key, type, offsetof(struct rb_ivr_conf, member), flags, min, max, NULL, check}
static const struct rb_conf_field_v2 conf_fields[] = {
    F("agi_listen", RB_CONF_STRING, agi_listen, 0, 0, 0, NULL),
    F("ami_username", RB_CONF_STRING, ami_username, 0, 0, 0, NULL),
    F("ami_secret", RB_CONF_STRING, ami_secret, 0, 0, 0, NULL),
    F("ami_host", RB_CONF_STRING, ami_host, 0, 0, 0, ami_host_ok),
    F("ami_port", RB_CONF_INT, ami_port, 0, 1, 65535, NULL),
    F("recordings_dir", RB_CONF_STRING, recordings_dir, RB_CONF_REQUIRED, 0, 0, NULL),
    F("asterisk_recordings_dir", RB_CONF_STRING, asterisk_recordings_dir, 0, 0, 0, NULL),
    F("outbound_context", RB_CONF_STRING, outbound_context, 0, 0, 0, NULL),
    F("callerid", RB_CONF_STRING, callerid, 0, 0, 0, NULL),
    F("record_max", RB_CONF_DURATION, record_max, 0, 0, 0, record_max_ok),
    F("record_silence", RB_CONF_DURATION, record_silence, 0, 0, 0, record_silence_ok),
    F("key_timeout", RB_CONF_DURATION, key_timeout, 0, 0, 0, key_timeout_ok),
    F("menu_tries", RB_CONF_INT, menu_tries, 0, 1, 9, NULL),
    F("max_recording", RB_CONF_SIZE, max_recording, 0, 1024, 8 * 1024 * 1024, NULL),
};
#undef F

/* The block over the defaults into out; every error reported at its file:line:col. */
int rb_ivr_conf_parse(struct rb_plugin_ctx *ctx, struct rb_ivr_conf *out)
{
    struct rb_ivr_conf c = conf_defaults;
    if (RB_CONF_PARSE_V2(rb_ivr_api, ctx, NULL, conf_fields, &c) != RB_OK) {
        RB_CONF_FREE_V2(rb_ivr_api, conf_fields, &c);
        return RB_EINVAL;
    }
    *out = c;
    return RB_OK;
}

void rb_ivr_conf_free(struct rb_ivr_conf *c)
{
    RB_CONF_FREE_V2(rb_ivr_api, conf_fields, c);
}

/* ---- reading the tree ------------------------------------------------------------------- */

double rb_ivr_num(const json_t *obj, const char *key, double dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

const char *rb_ivr_str(const json_t *obj, const char *key, const char *dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

const json_t *rb_ivr_named(const struct rb_ivr_lua *l, const char *table, const char *name)
{
    return name ? json_object_get(json_object_get(l->data, table), name) : NULL;
}

const json_t *rb_ivr_script(const struct rb_ivr_lua *l, const char *name)
{
    return rb_ivr_named(l, "scripts", name);
}

void rb_ivr_prompt(const struct rb_ivr_lua *l, const char *lang, const char *name, char *buf,
                   size_t len)
{
    snprintf(buf, len, "%s/%s/%s", l->dir, lang, name);
}

const char *rb_ivr_step_next(const json_t *step, char key, int *answer_out)
{
    *answer_out = 0;
    const char *next = rb_ivr_str(step, "next", "end");
    if (!json_object_get(step, "ask"))
        return next;
    if (!key)
        return NULL;
    char k[2] = {key, '\0'};
    const json_t *to = json_object_get(json_object_get(step, "keys"), k);
    if (!json_is_string(to))
        return NULL;
    *answer_out = 1;
    return json_string_value(to);
}

/* ---- checks ----------------------------------------------------------------------------- */

struct check {
    struct rb_plugin_ctx *ctx;
    const json_t *root;
    int errors;
};

static void bad(struct check *ck, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(struct check *ck, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rb_ivr_api->log(ck->ctx, RB_LOG_ERROR, LUA_FILE ": %s", msg);
    ck->errors++;
}

static int in_catalogue(const json_t *root, const char *lang, const char *name)
{
    const json_t *list = json_object_get(json_object_get(root, "prompts"), lang);
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

/* A prompt every language must have. */
static void need_prompt(struct check *ck, const char *where, const char *name)
{
    static const char *const langs[] = {"ur", "en"};
    for (size_t i = 0; i < 2; i++)
        if (!in_catalogue(ck->root, langs[i], name))
            bad(ck, "%s: prompt \"%s\" is not in the %s catalogue (prompts.%s)", where, name,
                langs[i], langs[i]);
}

static void check_prompts(struct check *ck)
{
    const json_t *p = json_object_get(ck->root, "prompts");
    if (!json_is_string(json_object_get(p, "dir")))
        bad(ck, "prompts.dir: the prompts' folder under Asterisk's sounds directory is "
                "missing (a text, e.g. \"rabta\")");
    static const char *const langs[] = {"ur", "en"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *list = json_object_get(p, langs[i]);
        size_t j;
        const json_t *v;
        if (!json_is_array(list)) {
            bad(ck, "prompts.%s: the list of prompt names in that language is missing", langs[i]);
            continue;
        }
        json_array_foreach(list, j, v)
        {
            const char *s = json_string_value(v);
            if (!s || !*s || strpbrk(s, " \t\"/\\") || strlen(s) > 64)
                bad(ck, "prompts.%s[%zu]: a prompt is a file name without spaces, quotes, "
                        "slashes or extension", langs[i], j + 1);
        }
    }
}

/* The hotline's menus (docs/ivr.md "Hotline"). */
static void check_hotline(struct check *ck)
{
    const json_t *h = json_object_get(ck->root, "hotline");
    static const char *const fixed[] = {
        "choose-language", "main-menu",    "choose-service", "record-after-beep",
        "registered",      "goodbye",      "no-cases",       "your-case",
        "feedback-rate",   "thank-you",    "invalid",        "sorry"};
    if (!json_is_object(h)) {
        bad(ck, "hotline: the hotline's menus are missing");
        return;
    }
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        need_prompt(ck, "hotline", fixed[i]);
    static const char *const states[] = {"submitted", "routed", "acknowledged", "in_progress",
                                         "awaiting_citizen", "resolved", "closed", "rejected",
                                         "transferred", "reopened", "answered"};
    char name[96];
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        snprintf(name, sizeof(name), "status-%s", states[i]);
        need_prompt(ck, "hotline (case status)", name);
    }
    const json_t *lk = json_object_get(h, "languages"), *mk = json_object_get(h, "main");
    const char *key, *val;
    const json_t *v;
    json_object_foreach((json_t *)lk, key, v)
    {
        val = json_string_value(v);
        if (strlen(key) != 1 || !val || (strcmp(val, "ur") != 0 && strcmp(val, "en") != 0))
            bad(ck, "hotline.languages[\"%s\"]: a key is one keypad digit and names \"ur\" or "
                    "\"en\"", key);
    }
    json_object_foreach((json_t *)mk, key, v)
    {
        val = json_string_value(v);
        if (strlen(key) != 1 || !val ||
            (strcmp(val, "complaint") && strcmp(val, "status") && strcmp(val, "feedback")))
            bad(ck, "hotline.main[\"%s\"]: a key is one keypad digit and names \"complaint\", "
                    "\"status\" or \"feedback\"", key);
    }
    if (!json_object_size(lk) || !json_object_size(mk))
        bad(ck, "hotline.languages and hotline.main must each map at least one key");
    json_t *services = json_loads(rb_ivr_api->services_json(ck->ctx), 0, NULL);
    const json_t *list = json_object_get(h, "services");
    size_t i;
    if (!json_is_array(list) || json_array_size(list) < 1 || json_array_size(list) > 9)
        bad(ck, "hotline.services: a list of 1 to 9 service ids (keypad 1-9, in order)");
    json_array_foreach(list, i, v)
    {
        const char *id = json_string_value(v);
        int found = 0;
        size_t j;
        const json_t *s;
        json_array_foreach(services, j, s) found |=
            id && strcmp(rb_ivr_str(s, "id", ""), id) == 0;
        if (!found)
            bad(ck, "hotline.services[%zu]: there is no service \"%s\" in config/services",
                i + 1, id ? id : "?");
        snprintf(name, sizeof(name), "service-%s", id ? id : "?");
        need_prompt(ck, "hotline.services", name);
    }
    json_decref(services);
}

static void check_named(struct check *ck, const char *table)
{
    const json_t *t = json_object_get(ck->root, table);
    const char *name;
    const json_t *v;
    if (!json_is_object(t) || !json_object_size(t)) {
        bad(ck, "%s: at least one is needed", table);
        return;
    }
    json_object_foreach((json_t *)t, name, v)
    {
        if (strcmp(table, "trunks") == 0) {
            const char *ch = rb_ivr_str(v, "channel", NULL);
            if (!ch || !strstr(ch, "{phone}"))
                bad(ck, "trunks.%s.channel: the dial string with {phone}, e.g. "
                        "\"PJSIP/{phone}@pstn\"", name);
            if (rb_ivr_num(v, "max_calls", 0) < 1 || rb_ivr_num(v, "rate", 0) <= 0)
                bad(ck, "trunks.%s: max_calls (at least 1) and rate (calls a second, more "
                        "than 0) are needed", name);
        } else {
            double a = rb_ivr_num(v, "max_attempts", 3);
            if (a < 1 || a > 8)
                bad(ck, "policies.%s.max_attempts: from 1 to 8", name);
            if (rb_ivr_num(v, "ring_timeout", 45) < 5 || rb_ivr_num(v, "max_call_length", 300) < 10)
                bad(ck, "policies.%s: ring_timeout at least 5 and max_call_length at least 10 "
                        "seconds", name);
        }
    }
}

static void check_step(struct check *ck, const char *sname, const json_t *steps,
                       const char *id, const json_t *st)
{
    char where[160];
    snprintf(where, sizeof(where), "scripts.%s.steps.%s", sname, id);
    const char *play = rb_ivr_str(st, "play", NULL), *ask = rb_ivr_str(st, "ask", NULL);
    if (!play == !ask) {
        bad(ck, "%s: a step either plays a prompt (play = \"name\") or asks a question "
                "(ask = \"name\", keys = {...})", where);
        return;
    }
    need_prompt(ck, where, play ? play : ask);
    const char *next = rb_ivr_str(st, "next", "end");
    if (strcmp(next, "end") != 0 && !json_object_get(steps, next))
        bad(ck, "%s.next: there is no step \"%s\"", where, next);
    if (!ask)
        return;
    const json_t *keys = json_object_get(st, "keys"), *v;
    const char *k;
    if (!json_is_object(keys) || !json_object_size(keys))
        bad(ck, "%s.keys: a question needs the keys it accepts, e.g. keys = { [\"1\"] = "
                "\"q2\", [\"2\"] = \"end\" }", where);
    json_object_foreach((json_t *)keys, k, v)
    {
        const char *to = json_string_value(v);
        if (strlen(k) != 1 || !strchr("0123456789*#", k[0]))
            bad(ck, "%s.keys: \"%s\" is not one keypad key", where, k);
        else if (!to || (strcmp(to, "end") != 0 && !json_object_get(steps, to)))
            bad(ck, "%s.keys[\"%s\"]: there is no step \"%s\"", where, k, to ? to : "?");
    }
}

static void check_scripts(struct check *ck)
{
    const json_t *scripts = json_object_get(ck->root, "scripts"), *sc;
    const char *name;
    json_object_foreach((json_t *)scripts, name, sc)
    {
        const json_t *steps = json_object_get(sc, "steps"), *st;
        const char *start = rb_ivr_str(sc, "start", NULL), *id;
        if (!json_is_object(steps) || !start || !json_object_get(steps, start)) {
            bad(ck, "scripts.%s: needs steps = { id = {...}, ... } and start = the first "
                    "step's id", name);
            continue;
        }
        if (!rb_ivr_named(&(struct rb_ivr_lua){(json_t *)ck->root, NULL}, "policies",
                          rb_ivr_str(sc, "policy", "default")))
            bad(ck, "scripts.%s.policy: there is no policy \"%s\"", name,
                rb_ivr_str(sc, "policy", "default"));
        if (!rb_ivr_named(&(struct rb_ivr_lua){(json_t *)ck->root, NULL}, "trunks",
                          rb_ivr_str(sc, "trunk", "default")))
            bad(ck, "scripts.%s.trunk: there is no trunk \"%s\"", name,
                rb_ivr_str(sc, "trunk", "default"));
        json_object_foreach((json_t *)steps, id, st) check_step(ck, name, steps, id, st);
    }
}

/* survey_calls (docs/ivr.md "Surveys by phone"): its policy, trunk and prompts, and the prompt
 * of every question of every survey of lua/surveys.lua (the host's survey_walk), which a
 * survey call plays. */
static void check_survey_calls(struct check *ck)
{
    const json_t *sc = json_object_get(ck->root, "survey_calls"), *sv, *q;
    if (!sc)
        return;
    const struct rb_ivr_lua l = {(json_t *)ck->root, NULL};
    if (!json_is_object(sc) || !rb_ivr_named(&l, "policies", rb_ivr_str(sc, "policy", "default")) ||
        !rb_ivr_named(&l, "trunks", rb_ivr_str(sc, "trunk", "default"))) {
        bad(ck, "survey_calls: a table { policy = NAME, trunk = NAME, intro = PROMPT, thanks = "
                "PROMPT } naming a policy and a trunk of this file");
        return;
    }
    static const char *const plays[] = {"intro", "thanks"};
    for (size_t i = 0; i < 2; i++)
        if (rb_ivr_str(sc, plays[i], NULL))
            need_prompt(ck, "survey_calls", rb_ivr_str(sc, plays[i], NULL));
    if (!RB_HOST_HAS(rb_ivr_api, survey_walk))
        return;
    char why[512], where[200];
    char *text = rb_ivr_api->survey_walk(ck->ctx, NULL, "ur", NULL, why, sizeof(why));
    json_t *all = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!all) {
        bad(ck, "survey_calls: the surveys of lua/surveys.lua: %s", text ? "?" : why);
        return;
    }
    const char *name;
    json_object_foreach(json_object_get(all, "surveys"), name, sv)
    {
        size_t i;
        json_array_foreach(json_object_get(sv, "questions"), i, q)
        {
            const char *prompt = rb_ivr_str(q, "prompt", NULL);
            snprintf(where, sizeof(where), "survey_calls: survey \"%s\" of lua/surveys.lua, "
                     "question \"%s\"", name, rb_ivr_str(q, "question", "?"));
            if (prompt)
                need_prompt(ck, where, prompt);
            else
                bad(ck, "%s: has no prompt (prompt = \"name\") to play on a call", where);
        }
    }
    json_decref(all);
}

/* Walks a script with keys ("12t": 1, 2, then no key) as a call would: a question with no
 * accepted key is asked again up to repeat more times, then the script goes on to its
 * no_answer step (or next). Fills answers; returns the last step before "end". */
static const char *walk(const json_t *sc, const char *keys, json_t *answers, int repeat)
{
    const json_t *steps = json_object_get(sc, "steps");
    const char *id = rb_ivr_str(sc, "start", "end"), *last = id;
    for (int guard = 0; strcmp(id, "end") != 0 && guard < 1000; guard++) {
        const json_t *st = json_object_get(steps, id);
        if (!st)
            break;
        last = id;
        const char *next = NULL;
        int tries = 0, ans = 0;
        if (!json_object_get(st, "ask")) {
            id = rb_ivr_str(st, "next", "end");
            continue;
        }
        while (!next) {
            char k = *keys ? *keys++ : 't';
            next = rb_ivr_step_next(st, k == 't' ? '\0' : k, &ans);
            if (!next && ++tries > repeat)
                next = rb_ivr_str(st, "no_answer", rb_ivr_str(st, "next", "end"));
        }
        if (ans)
            json_object_set_new(answers, id, json_stringn(keys - 1, 1));
        id = next;
    }
    return last;
}

static void run_tests(struct check *ck)
{
    const json_t *tests = json_object_get(ck->root, "tests"), *t;
    size_t i;
    json_array_foreach(tests, i, t)
    {
        const char *sname = rb_ivr_str(t, "script", "");
        const json_t *sc = json_object_get(json_object_get(ck->root, "scripts"), sname);
        if (!sc) {
            bad(ck, "tests[%zu]: there is no script \"%s\"", i + 1, sname);
            continue;
        }
        const json_t *pol = json_object_get(json_object_get(ck->root, "policies"),
                                            rb_ivr_str(sc, "policy", "default"));
        json_t *answers = json_object();
        const char *last = walk(sc, rb_ivr_str(t, "keys", ""), answers,
                                (int)rb_ivr_num(pol, "repeat_question", 2));
        const json_t *want = json_object_get(t, "answers");
        if (want && !json_equal(answers, (json_t *)want)) {
            char *got = json_dumps(answers, JSON_COMPACT | JSON_SORT_KEYS);
            char *exp = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
            bad(ck, "tests[%zu] (%s, keys \"%s\"): answers %s, expected %s", i + 1, sname,
                rb_ivr_str(t, "keys", ""), got ? got : "?", exp ? exp : "?");
            free(got);
            free(exp);
        }
        const char *ends = rb_ivr_str(t, "ends", NULL);
        if (ends && strcmp(ends, last) != 0)
            bad(ck, "tests[%zu] (%s): the call ends at step \"%s\", expected \"%s\"", i + 1,
                sname, last, ends);
        json_decref(answers);
    }
}

int rb_ivr_lua_load(struct rb_plugin_ctx *ctx, struct rb_ivr_lua *out)
{
    char why[512];
    char *text = rb_ivr_api->lua_data(ctx, "ivr", why, sizeof(why));
    if (!text) {
        rb_ivr_api->log(ctx, RB_LOG_ERROR, "%s", why);
        return RB_EINVAL;
    }
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_DECODE_ANY, &jerr);
    free(text);
    struct check ck = {ctx, root, 0};
    if (!json_is_object(root)) {
        bad(&ck, "must return a table { prompts = ..., hotline = ..., trunks = ..., "
                 "policies = ..., scripts = ..., tests = ... }");
        json_decref(root);
        return RB_EINVAL;
    }
    check_prompts(&ck);
    check_hotline(&ck);
    check_named(&ck, "trunks");
    check_named(&ck, "policies");
    check_scripts(&ck);
    check_survey_calls(&ck);
    if (!ck.errors)
        run_tests(&ck);
    if (ck.errors) {
        json_decref(root);
        return RB_EINVAL;
    }
    out->data = root;
    out->dir = rb_ivr_str(json_object_get(root, "prompts"), "dir", "rabta");
    return RB_OK;
}

void rb_ivr_lua_free(struct rb_ivr_lua *l)
{
    json_decref(l->data);
    l->data = NULL;
    l->dir = NULL;
}
