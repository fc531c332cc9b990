/* open311 service questions: a service's YAML may list questions (docs/open311.md, "Service
 * questions"); they become the service definition's attributes (GeoReport v2) and the values
 * a POST gives for them, attribute[code] (attribute[code][] for a multivaluelist), are checked
 * against them and kept with the case. The questions are checked when the plugin starts and
 * at every reload; a reload whose questions are wrong keeps the previous ones. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "open311.h"

#define ATTR_VALUE_MAX 2000 /* bytes of one attribute value */

static const struct rb_host_api *api;

void o311_attrs_init(const struct rb_host_api *host)
{
    api = host;
}

static const char *const datatypes[] = {"string", "number", "datetime", "text",
                                        "singlevaluelist", "multivaluelist", NULL};

static int is_list(const char *datatype)
{
    return strcmp(datatype, "singlevaluelist") == 0 || strcmp(datatype, "multivaluelist") == 0;
}

/* A YAML scalar (a string here) as a boolean; -1 when it is none. */
static int yaml_bool(json_t *v, int dflt)
{
    const char *s = json_string_value(v);
    if (!v)
        return dflt;
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0))
        return 1;
    if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0))
        return 0;
    return -1;
}

/* The values of a list question: [{key, name}], keys unique. A new array or NULL. */
static json_t *question_values(json_t *vals, char *why, size_t whylen)
{
    size_t i;
    json_t *v, *out = json_array();
    if (!json_is_array(vals) || json_array_size(vals) == 0) {
        snprintf(why, whylen, "values: a list question needs a list of {key, name}");
        goto bad;
    }
    json_array_foreach(vals, i, v) {
        const char *key = json_string_value(json_object_get(v, "key"));
        const char *name = json_string_value(json_object_get(v, "name"));
        int dup = 0;
        for (size_t j = 0; key && j < i; j++)
            dup |= strcmp(key, json_string_value(json_object_get(json_array_get(out, j),
                                                                 "key"))) == 0;
        if (!key || !*key || !name || json_object_size(v) != 2 || dup ||
            o311_text_ok(key, 200, 1) != 0) {
            snprintf(why, whylen, "values[%zu]: expected {key, name} with a unique key", i);
            goto bad;
        }
        json_array_append_new(out, json_pack("{s:s, s:s}", "key", key, "name", name));
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

/* One question of the YAML as an Open311 attribute, or NULL with why set. */
static json_t *question(json_t *q, size_t index, char *why, size_t whylen)
{
    static const char *const keys[] = {"code", "datatype", "description", "variable",
                                       "required", "datatype_description", "order", "values",
                                       NULL};
    const char *k;
    json_t *v;
    if (!json_is_object(q)) {
        snprintf(why, whylen, "expected a map (code, datatype, description, ...)");
        return NULL;
    }
    json_object_foreach(q, k, v) {
        const char *const *known = keys;
        while (*known && strcmp(*known, k) != 0)
            known++;
        if (!*known) {
            snprintf(why, whylen, "unknown key \"%.40s\"", k);
            return NULL;
        }
    }
    const char *code = json_string_value(json_object_get(q, "code"));
    const char *type = json_string_value(json_object_get(q, "datatype"));
    const char *desc = json_string_value(json_object_get(q, "description"));
    const char *dd = json_string_value(json_object_get(q, "datatype_description"));
    const char *order_s = json_string_value(json_object_get(q, "order"));
    int variable = yaml_bool(json_object_get(q, "variable"), 1);
    int required = yaml_bool(json_object_get(q, "required"), 0);
    const char *const *t = datatypes;
    while (type && *t && strcmp(*t, type) != 0)
        t++;
    char *end = NULL;
    long order = order_s ? strtol(order_s, &end, 10) : (long)index + 1;
    if (!code || !o311_plain_code(code))
        snprintf(why, whylen, "code: expected 1-64 of letters, digits, _ and -");
    else if (!type || !*t)
        snprintf(why, whylen, "datatype: expected string, number, datetime, text, "
                              "singlevaluelist or multivaluelist");
    else if (!desc || !*desc)
        snprintf(why, whylen, "description: the question, as the citizen reads it");
    else if (variable < 0 || required < 0)
        snprintf(why, whylen, "variable and required: expected true or false");
    else if ((order_s && *end) || order < 1 || order > 1000)
        snprintf(why, whylen, "order: expected a whole number from 1 to 1000");
    else if (!is_list(type) && json_object_get(q, "values"))
        snprintf(why, whylen, "values: only for singlevaluelist and multivaluelist");
    else
        why[0] = '\0';
    if (why[0])
        return NULL;
    json_t *out = json_pack("{s:b, s:s, s:s, s:b, s:s, s:i, s:s}", "variable", variable,
                            "code", code, "datatype", type, "required", required,
                            "datatype_description", dd ? dd : "", "order", (int)order,
                            "description", desc);
    if (is_list(type)) {
        json_t *vals = question_values(json_object_get(q, "values"), why, whylen);
        if (!vals) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, "values", vals);
    }
    return out;
}

static int by_order(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "order"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "order"));
    return (x > y) - (x < y);
}

/* The questions of one service as a sorted array of attributes; NULL after logging. */
static json_t *service_questions(struct o311 *o, json_t *svc)
{
    json_t *qs = json_object_get(svc, "questions");
    const char *at = o311_str_of(svc, "questions_at");
    size_t n = json_array_size(qs), i;
    json_t *q, **sorted = calloc(n ? n : 1, sizeof(json_t *));
    char why[200];
    int bad = !sorted;
    json_array_foreach(qs, i, q) {
        if (!sorted)
            break;
        sorted[i] = question(q, i, why, sizeof(why));
        for (size_t j = 0; sorted[i] && j < i; j++) {
            const char *code = o311_str_of(sorted[i], "code");
            if (sorted[j] && strcmp(code, o311_str_of(sorted[j], "code")) == 0) {
                snprintf(why, sizeof(why), "code \"%s\" is used twice", code);
                json_decref(sorted[i]);
                sorted[i] = NULL;
            }
        }
        if (!sorted[i]) {
            api->log(o->ctx, RB_LOG_ERROR, "%s: questions[%zu]: %s", at, i, why);
            bad = 1;
        }
    }
    json_t *out = NULL;
    if (!bad) {
        qsort(sorted, n, sizeof(json_t *), by_order);
        out = json_array();
        for (i = 0; i < n; i++)
            json_array_append(out, sorted[i]);
    }
    for (i = 0; sorted && i < n; i++)
        json_decref(sorted[i]);
    free(sorted);
    return out;
}

json_t *o311_questions_load(struct o311 *o)
{
    json_t *svcs = o311_services_load(o), *out = json_object(), *s;
    size_t i;
    int bad = !svcs;
    json_array_foreach(svcs, i, s) {
        if (!json_object_get(s, "questions"))
            continue;
        json_t *attrs = service_questions(o, s);
        if (!attrs)
            bad = 1;
        else
            json_object_set_new(out, o311_str_of(s, "id"), attrs);
    }
    json_decref(svcs);
    if (bad) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- values in a POST --------------------------------------------------------------------- */

static json_t *find_def(json_t *defs, const char *code)
{
    size_t i;
    json_t *d;
    json_array_foreach(defs, i, d) {
        if (strcmp(o311_str_of(d, "code"), code) == 0)
            return d;
    }
    return NULL;
}

static int list_has(json_t *def, const char *key)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(def, "values"), i, v) {
        if (strcmp(o311_str_of(v, "key"), key) == 0)
            return 1;
    }
    return 0;
}

/* One value v of attribute def: 0, or -1 with why set. */
static int value_ok(json_t *def, const char *v, char *why, size_t whylen)
{
    const char *code = o311_str_of(def, "code"), *type = o311_str_of(def, "datatype");
    double d;
    char *end;
    int ok;
    if (strcmp(type, "number") == 0) {
        d = strtod(v, &end);
        ok = *v && !*end && isfinite(d) && strspn(v, "+-0123456789.eE") == strlen(v);
    } else if (strcmp(type, "datetime") == 0) {
        ok = o311_parse_datetime(v, &d) == 0;
    } else if (is_list(type)) {
        ok = list_has(def, v);
    } else {
        ok = o311_text_ok(v, ATTR_VALUE_MAX, strcmp(type, "string") == 0) == 0 &&
             strlen(v) <= ATTR_VALUE_MAX;
    }
    if (!ok)
        snprintf(why, whylen, "attribute[%s]: \"%.40s\" is not a valid %s%s", code, v, type,
                 is_list(type) ? " key (see the service definition)" : "");
    return ok ? 0 : -1;
}

/* "attribute[code]" or "attribute[code][]" -> code in out (and *many). 0, or -1. */
static int attr_key(const char *k, char *out, size_t cap, int *many)
{
    size_t n = strlen(k);
    if (strncmp(k, "attribute[", 10) != 0)
        return -1;
    *many = n > 12 && strcmp(k + n - 3, "][]") == 0;
    size_t len = n - 10 - (*many ? 3 : 1);
    if (n < 12 || k[n - 1 - (*many ? 2 : 0)] != ']' || len == 0 || len >= cap)
        return -1;
    memcpy(out, k + 10, len);
    out[len] = '\0';
    return o311_plain_code(out) ? 0 : -1;
}

/* Adds value v of attribute code to out: a list for code[] (or a multivaluelist). */
static int attr_add(json_t *out, json_t *def, const char *code, int many, const char *v,
                    char *why, size_t whylen)
{
    int multi = def ? strcmp(o311_str_of(def, "datatype"), "multivaluelist") == 0 : many;
    json_t *have = json_object_get(out, code);
    if (!v[0])
        return 0;
    if (def && value_ok(def, v, why, whylen) != 0)
        return -1;
    if (!def && (strlen(v) > ATTR_VALUE_MAX || o311_text_ok(v, ATTR_VALUE_MAX, 0) != 0)) {
        snprintf(why, whylen, "attribute[%s]: at most %d bytes of text", code, ATTR_VALUE_MAX);
        return -1;
    }
    if (have && !multi) {
        snprintf(why, whylen, "attribute[%s] is given twice", code);
        return -1;
    }
    if (!multi)
        return json_object_set_new(out, code, json_string(v));
    if (!have)
        json_object_set_new(out, code, have = json_array());
    return json_array_append_new(have, json_string(v));
}

json_t *o311_attributes_read(json_t *defs, const struct o311_form *form, char *why,
                             size_t whylen)
{
    json_t *out = json_object(), *d;
    char code[80];
    size_t i;
    for (i = 0; i < form->n; i++) {
        const char *k = form->kv[2 * i];
        int many = 0;
        if (strncmp(k, "attribute", 9) != 0)
            continue;
        if (attr_key(k, code, sizeof(code), &many) != 0) {
            snprintf(why, whylen, "%.64s: expected attribute[code] with a code of letters, "
                                  "digits, _ and -", k);
            goto bad;
        }
        json_t *def = find_def(defs, code);
        if (def && !json_is_true(json_object_get(def, "variable")))
            def = NULL; /* an informational one: kept as given */
        if (attr_add(out, def, code, many, form->kv[2 * i + 1], why, whylen) != 0)
            goto bad;
    }
    json_array_foreach(defs, i, d) {
        const char *c = o311_str_of(d, "code");
        if (json_is_true(json_object_get(d, "required")) &&
            json_is_true(json_object_get(d, "variable")) && !json_object_get(out, c)) {
            snprintf(why, whylen, "attribute[%s] is required: %.120s", c,
                     o311_str_of(d, "description"));
            goto bad;
        }
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}
