/* Page templates with escaping by context: see web_tmpl.h. A template is compiled once into a
 * flat list of nodes (literal text, value, words, section, partial); a section's node knows
 * where it ends, so rendering walks the list without a tree. The HTML around each placeholder
 * is followed by a small tokenizer (states below) only at compile time. */
#include "web_tmpl.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web_buf.h"

#define MAX_DEPTH 16 /* nested sections and partials while rendering */
#define MAX_TEMPLATE (256 * 1024)

enum ctx { CTX_NONE, CTX_TEXT, CTX_ATTR, CTX_URL_START, CTX_URL_PART };
enum kind { N_TEXT, N_VAR, N_WORDS, N_SECTION, N_INVERTED, N_PARTIAL };

struct node {
    enum kind kind;
    enum ctx ctx;
    char *s;    /* owned: literal text, path, key or partial name */
    size_t len; /* of a literal */
    size_t end; /* a section: the index of the node after its closing tag */
    int line, col; /* a partial: where it is included, for the load-time check */
};

struct tmpl {
    char *name; /* owned: file name without .html */
    struct node *nodes;
    size_t n, cap;
};

struct web_tmpl_set {
    struct tmpl *t;
    size_t n;
    json_t *strings; /* owned */
};

/* ---- the HTML around a placeholder --------------------------------------------------------- */

enum hstate { H_TEXT, H_TAGNAME, H_IN_TAG, H_ATTRNAME, H_AFTER_NAME, H_BEFORE_VALUE, H_VALUE,
              H_UNQUOTED, H_COMMENT, H_RAW };

struct html {
    enum hstate st;
    char tag[16], attr[24];
    size_t tag_len, attr_len;
    int closing;   /* in a closing tag */
    char quote;    /* of the attribute value */
    int at_start;  /* nothing of the attribute value written yet */
    int after_lt;  /* element text whose last character is '<' (or "</"): a tag could start */
    char raw[16];  /* script or style: raw text until its closing tag */
    const char *src; /* the whole template, for look-ahead */
    size_t pos;
};

static void tag_done(struct html *h)
{
    h->st = H_TEXT;
    if (!h->closing && (strcasecmp(h->tag, "script") == 0 || strcasecmp(h->tag, "style") == 0)) {
        snprintf(h->raw, sizeof(h->raw), "%s", h->tag);
        h->st = H_RAW;
    }
}

static void start_attr(struct html *h, char c)
{
    h->st = H_ATTRNAME;
    h->attr_len = 0;
    h->attr[h->attr_len++] = c;
    h->attr[h->attr_len] = '\0';
}

/* Feeds one character of literal text at h->pos. */
static void html_feed(struct html *h, char c)
{
    int ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
    const char *rest = h->src + h->pos + 1;
    h->after_lt = h->st == H_TEXT && (c == '<' || (c == '/' && h->after_lt));
    switch (h->st) {
    case H_TEXT:
        if (c == '<' && strncmp(rest, "!--", 3) == 0) {
            h->st = H_COMMENT;
        } else if (c == '<' && (rest[0] == '/' || ((rest[0] | 32) >= 'a' && (rest[0] | 32) <= 'z'))) {
            h->st = H_TAGNAME;
            h->tag_len = 0;
            h->tag[0] = '\0';
            h->closing = rest[0] == '/';
        }
        break;
    case H_TAGNAME:
        if (c == '>')
            tag_done(h);
        else if (ws)
            h->st = H_IN_TAG;
        else if (c != '/' && h->tag_len + 1 < sizeof(h->tag)) {
            h->tag[h->tag_len++] = c;
            h->tag[h->tag_len] = '\0';
        }
        break;
    case H_IN_TAG:
    case H_AFTER_NAME:
        if (c == '>')
            tag_done(h);
        else if (c == '=' && h->st == H_AFTER_NAME)
            h->st = H_BEFORE_VALUE;
        else if (!ws && c != '/')
            start_attr(h, c);
        break;
    case H_ATTRNAME:
        if (c == '>')
            tag_done(h);
        else if (c == '=')
            h->st = H_BEFORE_VALUE;
        else if (ws)
            h->st = H_AFTER_NAME;
        else if (h->attr_len + 1 < sizeof(h->attr)) {
            h->attr[h->attr_len++] = c;
            h->attr[h->attr_len] = '\0';
        }
        break;
    case H_BEFORE_VALUE:
        if (c == '"' || c == '\'') {
            h->st = H_VALUE;
            h->quote = c;
            h->at_start = 1;
        } else if (c == '>') {
            tag_done(h);
        } else if (!ws) {
            h->st = H_UNQUOTED;
        }
        break;
    case H_VALUE:
        if (c == h->quote)
            h->st = H_IN_TAG;
        else
            h->at_start = 0;
        break;
    case H_UNQUOTED:
        if (c == '>')
            tag_done(h);
        else if (ws)
            h->st = H_IN_TAG;
        break;
    case H_COMMENT:
        if (c == '>' && h->pos >= 2 && strncmp(h->src + h->pos - 2, "--", 2) == 0)
            h->st = H_TEXT;
        break;
    case H_RAW:
        if (c == '<' && rest[0] == '/' && strncasecmp(rest + 1, h->raw, strlen(h->raw)) == 0) {
            h->st = H_TAGNAME;
            h->closing = 1;
            h->tag_len = 0;
            h->tag[0] = '\0';
        }
        break;
    }
}

static int is_url_attr(const char *a)
{
    static const char *const urls[] = {"href", "src", "action", "formaction", "poster"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
        if (strcasecmp(a, urls[i]) == 0)
            return 1;
    return 0;
}

/* The context of a value placeholder here, or CTX_NONE with why. */
static enum ctx html_ctx(const struct html *h, const char **why)
{
    switch (h->st) {
    case H_TEXT:
        if (h->after_lt) {
            *why = "a value may not stand in a tag or attribute name";
            return CTX_NONE;
        }
        return CTX_TEXT;
    case H_VALUE:
        if (strncasecmp(h->attr, "on", 2) == 0 || strcasecmp(h->attr, "style") == 0 ||
            strcasecmp(h->attr, "srcdoc") == 0) {
            *why = "a value may not stand in an event handler, style or srcdoc attribute";
            return CTX_NONE;
        }
        if (is_url_attr(h->attr))
            return h->at_start ? CTX_URL_START : CTX_URL_PART;
        return CTX_ATTR;
    case H_RAW:
        *why = "a value may not stand inside <script> or <style>";
        return CTX_NONE;
    case H_COMMENT:
        *why = "a value may not stand inside an HTML comment";
        return CTX_NONE;
    case H_UNQUOTED:
    case H_BEFORE_VALUE:
        *why = "an attribute value holding a value must be quoted";
        return CTX_NONE;
    default:
        *why = "a value may not stand in a tag or attribute name";
        return CTX_NONE;
    }
}

/* ---- compiling ----------------------------------------------------------------------------- */

struct compiler {
    const char *file; /* for errors */
    const char *src;
    char *err;
    size_t errlen, errused;
    int failed;
};

static void where(const char *src, size_t pos, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (src[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)src[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static void compile_error(struct compiler *c, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void compile_error(struct compiler *c, size_t pos, const char *fmt, ...)
{
    int line, col;
    where(c->src, pos, &line, &col);
    c->failed = 1;
    if (c->errused + 1 >= c->errlen)
        return;
    int n = snprintf(c->err + c->errused, c->errlen - c->errused, "%s%s:%d:%d: ",
                     c->errused ? "\n" : "", c->file, line, col);
    if (n > 0 && (size_t)n < c->errlen - c->errused)
        c->errused += (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(c->err + c->errused, c->errlen - c->errused, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->errused += (size_t)n < c->errlen - c->errused ? (size_t)n : c->errlen - c->errused - 1;
}

static struct node *add(struct tmpl *t, enum kind k)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->nodes = realloc(t->nodes, t->cap * sizeof(*t->nodes));
        if (!t->nodes)
            abort();
    }
    struct node *n = &t->nodes[t->n++];
    memset(n, 0, sizeof(*n));
    n->kind = k;
    return n;
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        abort();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    if (strcmp(s, ".") == 0)
        return 1;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-*") ==
           strlen(s);
}

/* One {{...}} tag whose inside is s (trimmed) at pos. */
static void compile_tag(struct compiler *c, struct tmpl *t, struct html *h, char *s, size_t pos,
                        size_t *open, int *depth)
{
    char sigil = strchr("#^/@>!", s[0]) ? s[0] : 0;
    char *name = sigil ? s + 1 : s;
    while (*name == ' ')
        name++;
    if (sigil == '!')
        return;
    if (!valid_name(name)) {
        compile_error(c, pos, "\"%s\" is not a name (letters, digits, _ . - *)", name);
        return;
    }
    const char *why = "";
    if (sigil == '#' || sigil == '^') {
        if (*depth >= MAX_DEPTH) {
            compile_error(c, pos, "sections nested deeper than %d", MAX_DEPTH);
            return;
        }
        open[(*depth)++] = t->n;
        add(t, sigil == '#' ? N_SECTION : N_INVERTED)->s = strdup(name);
    } else if (sigil == '/') {
        if (*depth == 0 || strcmp(t->nodes[open[*depth - 1]].s, name) != 0) {
            compile_error(c, pos, "{{/%s}} closes no open {{#%s}}", name, name);
            return;
        }
        t->nodes[open[--(*depth)]].end = t->n;
    } else if (sigil == '>') {
        if (h->st != H_TEXT) {
            compile_error(c, pos, "a template may be included only in element text");
            return;
        }
        struct node *n = add(t, N_PARTIAL);
        n->s = strdup(name);
        where(c->src, pos, &n->line, &n->col);
    } else {
        enum ctx x = html_ctx(h, &why);
        if (x == CTX_NONE) {
            compile_error(c, pos, "{{%s}}: %s", s, why);
            return;
        }
        struct node *n = add(t, sigil == '@' ? N_WORDS : N_VAR);
        n->s = strdup(name);
        n->ctx = x;
        if (h->st == H_VALUE)
            h->at_start = 0;
    }
}

static void compile(struct compiler *c, struct tmpl *t)
{
    struct html h = {.st = H_TEXT, .src = c->src};
    size_t open[MAX_DEPTH];
    int depth = 0;
    const char *s = c->src;
    size_t i = 0, lit = 0;
    while (s[i]) {
        if (s[i] == '{' && s[i + 1] == '{') {
            const char *close = strstr(s + i + 2, "}}");
            if (!close) {
                compile_error(c, i, "{{ is never closed");
                return;
            }
            if (i > lit)
                add(t, N_TEXT)->s = dupn(s + lit, i - lit), t->nodes[t->n - 1].len = i - lit;
            char *inner = dupn(s + i + 2, (size_t)(close - s - i - 2));
            char *b = inner, *e = inner + strlen(inner);
            while (*b == ' ')
                b++;
            while (e > b && e[-1] == ' ')
                *--e = '\0';
            compile_tag(c, t, &h, b, i, open, &depth);
            free(inner);
            i = lit = (size_t)(close - s) + 2;
            continue;
        }
        h.pos = i;
        html_feed(&h, s[i]);
        i++;
    }
    if (i > lit) {
        struct node *n = add(t, N_TEXT);
        n->s = dupn(s + lit, i - lit);
        n->len = i - lit;
    }
    if (depth > 0)
        compile_error(c, i, "{{#%s}} is never closed", t->nodes[open[depth - 1]].s);
}

static int load_strings(struct web_tmpl_set *set, const char *dir, struct compiler *c)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/strings.json", dir);
    json_error_t je;
    set->strings = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    c->file = path;
    c->src = "";
    if (!set->strings) {
        snprintf(c->err, c->errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_object(json_object_get(set->strings, "en")) ||
        !json_is_object(json_object_get(set->strings, "ur"))) {
        snprintf(c->err, c->errlen, "%s:1:1: needs objects \"en\" and \"ur\"", path);
        return -1;
    }
    return 0;
}

static const struct tmpl *find(const struct web_tmpl_set *s, const char *name);

/* Every {{>name}} names a template of the set. */
static void check_partials(const struct web_tmpl_set *set, const char *dir, struct compiler *c)
{
    for (size_t i = 0; i < set->n; i++) {
        for (size_t j = 0; j < set->t[i].n; j++) {
            const struct node *n = &set->t[i].nodes[j];
            if (n->kind != N_PARTIAL || find(set, n->s))
                continue;
            size_t used = strlen(c->err);
            snprintf(c->err + used, c->errlen - used, "%s%s/%s.html:%d:%d: there is no %s.html",
                     used ? "\n" : "", dir, set->t[i].name, n->line, n->col, n->s);
            c->errused = strlen(c->err);
            c->failed = 1;
        }
    }
}

struct web_tmpl_set *web_tmpl_load(const char *dir, char *err, size_t errlen)
{
    struct web_tmpl_set *set = calloc(1, sizeof(*set));
    struct compiler c = {.err = err, .errlen = errlen};
    err[0] = '\0';
    if (!set)
        abort();
    if (load_strings(set, dir, &c) != 0) {
        web_tmpl_free(set);
        return NULL;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open the templates' folder", dir);
        web_tmpl_free(set);
        return NULL;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 6 || strcmp(e->d_name + nl - 5, ".html") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len;
        char *src = web_buf_file(path, MAX_TEMPLATE, &len);
        if (!src) {
            c.file = path;
            c.src = "";
            compile_error(&c, 0, "cannot read it, or it is over %d bytes", MAX_TEMPLATE);
            continue;
        }
        set->t = realloc(set->t, (set->n + 1) * sizeof(*set->t));
        if (!set->t)
            abort();
        struct tmpl *t = &set->t[set->n++];
        memset(t, 0, sizeof(*t));
        t->name = dupn(e->d_name, nl - 5);
        c.file = path;
        c.src = src;
        compile(&c, t);
        free(src);
    }
    closedir(d);
    check_partials(set, dir, &c);
    if (c.failed) {
        web_tmpl_free(set);
        return NULL;
    }
    return set;
}

void web_tmpl_free(struct web_tmpl_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < s->t[i].n; j++)
            free(s->t[i].nodes[j].s);
        free(s->t[i].nodes);
        free(s->t[i].name);
    }
    free(s->t);
    json_decref(s->strings);
    free(s);
}

static const struct tmpl *find(const struct web_tmpl_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0)
            return &s->t[i];
    return NULL;
}

const char *web_tmpl_string(const struct web_tmpl_set *s, const char *lang, const char *key)
{
    const char *v = json_string_value(json_object_get(json_object_get(s->strings, lang), key));
    if (!v)
        v = json_string_value(json_object_get(json_object_get(s->strings, "en"), key));
    return v;
}

/* ---- rendering ----------------------------------------------------------------------------- */

struct render {
    const struct web_tmpl_set *set;
    const char *lang;
    const json_t *stack[MAX_DEPTH * 2 + 2];
    int top;
    struct web_buf out;
    int depth;
};

static const json_t *lookup(const struct render *r, const char *path)
{
    if (strcmp(path, ".") == 0)
        return r->stack[r->top - 1];
    char first[128];
    size_t n = strcspn(path, ".");
    if (n >= sizeof(first))
        return NULL;
    memcpy(first, path, n);
    first[n] = '\0';
    const json_t *v = NULL;
    for (int i = r->top - 1; i >= 0 && !v; i--)
        v = json_object_get(r->stack[i], first);
    while (v && path[n] == '.') {
        path += n + 1;
        n = strcspn(path, ".");
        if (n >= sizeof(first))
            return NULL;
        memcpy(first, path, n);
        first[n] = '\0';
        v = json_object_get(v, first);
    }
    return v;
}

static int truthy(const json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v))
        return 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_integer(v))
        return json_integer_value(v) != 0;
    return 1;
}

/* A scalar as text into tmp (or borrowed from v); "" for anything else. */
static const char *scalar(const json_t *v, char tmp[64])
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(tmp, 64, "%lld", (long long)json_integer_value(v));
        return tmp;
    }
    if (json_is_real(v)) {
        snprintf(tmp, 64, "%.6g", json_real_value(v));
        return tmp;
    }
    if (json_is_true(v))
        return "true";
    return "";
}

static int safe_url_start(const char *s)
{
    static const char *const ok[] = {"/", "#", "?", "http:", "https:", "tel:", "mailto:"};
    if (strncmp(s, "//", 2) == 0 || strncmp(s, "/\\", 2) == 0)
        return 0; /* another host */
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strncasecmp(s, ok[i], strlen(ok[i])) == 0)
            return 1;
    return 0;
}

static void emit(struct render *r, enum ctx x, const char *s)
{
    switch (x) {
    case CTX_URL_START:
        web_buf_html(&r->out, safe_url_start(s) ? s : "#");
        break;
    case CTX_URL_PART:
        web_buf_urlenc(&r->out, s);
        break;
    default:
        web_buf_html(&r->out, s);
        break;
    }
}

/* {{@key}}: "a.*b" is "a." followed by the value at b. */
static void words(struct render *r, const struct node *n)
{
    char key[256], tmp[64];
    const char *star = strchr(n->s, '*');
    if (star) {
        const char *v = scalar(lookup(r, star + 1), tmp);
        snprintf(key, sizeof(key), "%.*s%s", (int)(star - n->s), n->s, v);
    } else {
        snprintf(key, sizeof(key), "%s", n->s);
    }
    const char *w = web_tmpl_string(r->set, r->lang, key);
    emit(r, n->ctx, w ? w : key);
}

static void run(struct render *r, const struct tmpl *t, size_t from, size_t to);

static void section(struct render *r, const struct tmpl *t, size_t i)
{
    const struct node *n = &t->nodes[i];
    const json_t *v = lookup(r, n->s);
    if (n->kind == N_INVERTED) {
        if (!truthy(v))
            run(r, t, i + 1, n->end);
        return;
    }
    if (!truthy(v) || r->top >= (int)(sizeof(r->stack) / sizeof(r->stack[0])))
        return;
    if (json_is_array(v)) {
        size_t k;
        const json_t *item;
        json_array_foreach(v, k, item)
        {
            r->stack[r->top++] = item;
            run(r, t, i + 1, n->end);
            r->top--;
        }
    } else {
        const json_t *scope = json_is_object(v) ? v : r->stack[r->top - 1];
        r->stack[r->top++] = scope;
        run(r, t, i + 1, n->end);
        r->top--;
    }
}

static void run(struct render *r, const struct tmpl *t, size_t from, size_t to)
{
    char tmp[64];
    for (size_t i = from; i < to; i++) {
        const struct node *n = &t->nodes[i];
        switch (n->kind) {
        case N_TEXT:
            web_buf_add(&r->out, n->s, n->len);
            break;
        case N_VAR:
            emit(r, n->ctx, scalar(lookup(r, n->s), tmp));
            break;
        case N_WORDS:
            words(r, n);
            break;
        case N_SECTION:
        case N_INVERTED:
            section(r, t, i);
            i = n->end - 1;
            break;
        case N_PARTIAL: {
            const struct tmpl *p = find(r->set, n->s);
            if (p && r->depth < MAX_DEPTH) {
                r->depth++;
                run(r, p, 0, p->n);
                r->depth--;
            }
            break;
        }
        }
    }
}

char *web_tmpl_render(const struct web_tmpl_set *s, const char *name, const json_t *data,
                      const char *lang, size_t *len)
{
    const struct tmpl *t = find(s, name);
    if (!t)
        return NULL;
    struct render r = {.set = s, .lang = lang};
    r.stack[r.top++] = data;
    run(&r, t, 0, t->n);
    web_buf_add(&r.out, "", 0);
    *len = r.out.n;
    return r.out.p;
}
