/* YAML documents as trees of rb_node that keep file:line:column, scalar conversions, and the
 * declarative parser of rb_conf_field tables.
 *
 * The tree is built from libyaml's event stream. What the administrator cannot mean, or what
 * could hurt the process, is refused while building: more than one document, anchors and
 * aliases (no "billion laughs"), nesting deeper than RB_CONF_MAX_DEPTH, files over
 * RB_CONF_MAX_BYTES, duplicate keys, maps or lists used as keys, text that is not UTF-8.
 * Every error is one sentence prefixed by "file:line:col: ". */
#include "config/yaml_doc.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define RB_CONF_MAX_BYTES (4u * 1024u * 1024u)
#define RB_CONF_MAX_DEPTH 64

/* ---- errors ------------------------------------------------------------------------------ */

void rb_errors_init(struct rb_errors *e)
{
    e->msgs = NULL;
    e->n = 0;
    e->cap = 0;
}

void rb_errors_free(struct rb_errors *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    rb_errors_init(e);
}

/* Takes ownership of msg. */
static void errors_push(struct rb_errors *e, char *msg)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->msgs = rb_realloc(e->msgs, e->cap * sizeof(*e->msgs));
    }
    e->msgs[e->n++] = msg;
}

/* Returns a new string; caller frees. */
void rb_errors_add(struct rb_errors *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errors_push(e, rb_vsprintf(fmt, ap));
    va_end(ap);
}

void rb_errors_at(struct rb_errors *e, const struct rb_node *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = rb_vsprintf(fmt, ap);
    va_end(ap);
    if (!node || !node->file) {
        errors_push(e, msg);
    } else if (node->line > 0) {
        errors_push(e, rb_sprintf("%s:%d:%d: %s", node->file, node->line, node->col, msg));
        free(msg);
    } else {
        errors_push(e, rb_sprintf("%s: %s", node->file, msg));
        free(msg);
    }
}

/* ---- nodes ------------------------------------------------------------------------------- */

static void node_free(struct rb_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            node_free(n->keys[i]);
        node_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->scalar);
    free(n);
}

void rb_doc_free(struct rb_doc *doc)
{
    if (!doc)
        return;
    node_free(doc->root);
    free(doc->file);
    free(doc);
}

const struct rb_node *rb_node_get(const struct rb_node *map, const char *key)
{
    if (!map || map->type != RB_NODE_MAP || !key)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i]->type == RB_NODE_SCALAR && strcmp(map->keys[i]->scalar, key) == 0)
            return map->items[i];
    return NULL;
}

/* ---- building the tree from libyaml events ----------------------------------------------- */

struct frame {
    struct rb_node *node; /* the MAP or SEQ being filled; owned by the builder until attached */
    struct rb_node *key;  /* MAP: the key waiting for its value, or NULL */
};

struct builder {
    const char *file; /* borrowed: the document's file name */
    const char *text; /* borrowed: the input, to place reader errors */
    struct rb_errors *errs;
    struct frame stack[RB_CONF_MAX_DEPTH];
    int depth;
    struct rb_node *root; /* owned */
    int failed;           /* an error was reported; the document is refused at the end */
};

static struct rb_node *node_new(const struct builder *b, enum rb_node_type type,
                                yaml_mark_t mark)
{
    struct rb_node *n = rb_calloc(1, sizeof(*n));
    n->type = type;
    n->file = b->file;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    return n;
}

static void node_error(struct builder *b, const struct rb_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void node_error(struct builder *b, const struct rb_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = rb_vsprintf(fmt, ap);
    va_end(ap);
    rb_errors_at(b->errs, at, "%s", msg);
    free(msg);
    b->failed = 1;
}

/* Grows a node's arrays so that one more item fits (capacity doubles from 4). */
static void node_reserve(struct rb_node *n)
{
    if (n->n != 0 && (n->n < 4 || (n->n & (n->n - 1)) != 0))
        return; /* there is room: capacities are 4, 8, 16, ... */
    size_t cap = n->n == 0 ? 4 : n->n * 2;
    n->items = rb_realloc(n->items, cap * sizeof(*n->items));
    if (n->type == RB_NODE_MAP)
        n->keys = rb_realloc(n->keys, cap * sizeof(*n->keys));
}

static const char *type_name(enum rb_node_type t)
{
    return t == RB_NODE_MAP ? "a map" : t == RB_NODE_SEQ ? "a list" : "a value";
}

const char *rb_node_kind(const struct rb_node *n)
{
    return type_name(n->type);
}

char *rb_path_join(const char *dir, const char *p)
{
    if (p[0] == '/' || !dir[0])
        return rb_strdup(p);
    size_t n = strlen(dir);
    return rb_sprintf("%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", p);
}

void rb_conf_glob(const struct rb_node *v, const char *key, const char *example, const char *dir,
                  rb_conf_file_fn fn, void *arg, struct rb_errors *e)
{
    if (!v || rb_node_is_null(v))
        return;
    const struct rb_node *const *pats = &v;
    size_t n = 1;
    if (v->type == RB_NODE_SEQ) {
        pats = (const struct rb_node *const *)v->items;
        n = v->n;
    }
    for (size_t i = 0; i < n; i++) {
        const struct rb_node *p = pats[i];
        if (p->type != RB_NODE_SCALAR || !p->scalar[0]) {
            rb_errors_at(e, p,
                         "key \"%s\": expected a file pattern such as %s, or a list of them, "
                         "got %s",
                         key, example, p->type == RB_NODE_SCALAR ? "nothing" : rb_node_kind(p));
            continue;
        }
        char *pattern = rb_path_join(dir, p->scalar);
        glob_t g;
        int rc = glob(pattern, 0, NULL, &g);
        if (rc == GLOB_NOMATCH)
            rb_errors_at(e, p, "key \"%s\": no file matches \"%s\"", key, pattern);
        else if (rc != 0)
            rb_errors_at(e, p, "key \"%s\": cannot list the files matching \"%s\"", key,
                         pattern);
        for (size_t j = 0; rc == 0 && j < g.gl_pathc; j++)
            fn(g.gl_pathv[j], p, arg);
        if (rc == 0)
            globfree(&g);
        free(pattern);
    }
}

/* Hands a finished node to its parent (or makes it the root). Takes ownership of n. */
static void attach(struct builder *b, struct rb_node *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->node->type == RB_NODE_SEQ) {
        node_reserve(f->node);
        f->node->items[f->node->n++] = n;
        return;
    }
    if (!f->key) {
        if (n->type != RB_NODE_SCALAR)
            node_error(b, n, "a map key must be a plain value, not %s", type_name(n->type));
        f->key = n;
        return;
    }
    node_reserve(f->node);
    f->node->keys[f->node->n] = f->key;
    f->node->items[f->node->n++] = n;
    f->key = NULL;
}

struct keyref {
    const struct rb_node *key;
    size_t idx; /* position in the map */
};

static int cmp_keyref(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    int c = strcmp(x->key->scalar, y->key->scalar);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

struct dup {
    size_t idx;   /* the later occurrence */
    size_t first; /* the first occurrence */
};

static int cmp_dup(const void *a, const void *b)
{
    const struct dup *x = a, *y = b;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Reports every key that repeats an earlier key of the same map, in file order, naming the
 * first. Sorting keeps this O(n log n) for large maps. */
static void check_duplicates(struct builder *b, const struct rb_node *map)
{
    if (map->n < 2)
        return;
    struct keyref *refs = rb_malloc(map->n * sizeof(*refs));
    size_t m = 0;
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i]->type == RB_NODE_SCALAR)
            refs[m++] = (struct keyref){map->keys[i], i};
    qsort(refs, m, sizeof(*refs), cmp_keyref);
    struct dup *dups = rb_malloc((m ? m : 1) * sizeof(*dups));
    size_t nd = 0;
    for (size_t i = 1, first = 0; i < m; i++) {
        if (strcmp(refs[i].key->scalar, refs[first].key->scalar) == 0)
            dups[nd++] = (struct dup){refs[i].idx, refs[first].idx};
        else
            first = i;
    }
    qsort(dups, nd, sizeof(*dups), cmp_dup);
    for (size_t i = 0; i < nd; i++) {
        const struct rb_node *k = map->keys[dups[i].idx], *f = map->keys[dups[i].first];
        node_error(b, k, "key \"%s\" appears twice in the same map (first at line %d, column %d)",
                   k->scalar, f->line, f->col);
    }
    free(dups);
    free(refs);
}

/* An anchor on a node is refused: anchors only exist to be aliased. */
static void check_anchor(struct builder *b, const struct rb_node *n, const yaml_char_t *anchor)
{
    if (anchor)
        node_error(b, n,
                   "anchor \"&%s\" is not allowed: anchors and aliases are not supported, "
                   "write the value out in full",
                   (const char *)anchor);
}

/* Tags: "!!str" marks a scalar as a string (like quotes); other standard tags are harmless
 * and ignored; application tags ("!foo") mean nothing here and are refused. */
static void check_tag(struct builder *b, struct rb_node *n, const yaml_char_t *tag)
{
    if (!tag)
        return;
    const char *t = (const char *)tag;
    if (strcmp(t, YAML_STR_TAG) == 0)
        n->quoted = 1;
    else if (strncmp(t, "tag:yaml.org,2002:", 18) != 0)
        node_error(b, n, "tag \"%s\" is not supported; remove it", t);
}

/* 1-based line and column (in characters) of a byte offset into text. */
static void offset_position(const char *text, size_t len, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            ++*line;
            *col = 1;
        } else if ((c & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

static void parser_error(struct builder *b, const yaml_parser_t *p, size_t len)
{
    b->failed = 1;
    if (p->error == YAML_MEMORY_ERROR)
        rb_fatal("out of memory parsing %s", b->file);
    if (p->error == YAML_READER_ERROR) {
        /* libyaml points at the bad continuation byte; the administrator needs the character
         * it breaks, which starts at the lead byte before it. */
        size_t off = p->problem_offset;
        if (strstr(p->problem, "trailing") && off > 0 && off <= len) {
            off--;
            while (off > 0 && ((unsigned char)b->text[off] & 0xC0) == 0x80)
                off--;
        }
        int line, col;
        offset_position(b->text, len, off, &line, &col);
        if (p->problem_value != -1)
            rb_errors_add(b->errs, "%s:%d:%d: %s (byte 0x%02x); the file must be UTF-8 text",
                          b->file, line, col, p->problem, (unsigned)p->problem_value & 0xffu);
        else
            rb_errors_add(b->errs, "%s:%d:%d: %s; the file must be UTF-8 text", b->file, line,
                          col, p->problem);
        return;
    }
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->context)
        rb_errors_add(b->errs, "%s:%zu:%zu: invalid YAML: %s (%s at line %zu, column %zu)",
                      b->file, p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
                      p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    else
        rb_errors_add(b->errs, "%s:%zu:%zu: invalid YAML: %s", b->file,
                      p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
}

/* Handles one event. Returns 0 to go on, 1 at the end of the stream, -1 to stop. */
static int on_event(struct builder *b, const yaml_event_t *ev, int *ndocs)
{
    struct rb_node *n;
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (++*ndocs > 1) {
            rb_errors_add(b->errs,
                          "%s:%zu:%zu: a second YAML document starts here; a configuration file "
                          "holds exactly one (remove the \"---\" separator)",
                          b->file, ev->start_mark.line + 1, ev->start_mark.column + 1);
            b->failed = 1;
            return -1;
        }
        return 0;
    case YAML_SCALAR_EVENT:
        n = node_new(b, RB_NODE_SCALAR, ev->start_mark);
        n->scalar = rb_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        check_anchor(b, n, ev->data.scalar.anchor);
        check_tag(b, n, ev->data.scalar.tag);
        attach(b, n);
        return 0;
    case YAML_ALIAS_EVENT:
        n = node_new(b, RB_NODE_SCALAR, ev->start_mark);
        n->scalar = rb_strdup("");
        node_error(b, n,
                   "alias \"*%s\" is not allowed: anchors and aliases are not supported, write "
                   "the value out in full",
                   (const char *)ev->data.alias.anchor);
        attach(b, n); /* a placeholder keeps the tree's shape so later errors still show */
        return 0;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int map = ev->type == YAML_MAPPING_START_EVENT;
        n = node_new(b, map ? RB_NODE_MAP : RB_NODE_SEQ, ev->start_mark);
        if (b->depth == RB_CONF_MAX_DEPTH) {
            node_error(b, n, "the structure is nested deeper than %d levels", RB_CONF_MAX_DEPTH);
            node_free(n);
            return -1;
        }
        check_anchor(b, n, map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
        check_tag(b, n, map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
        b->stack[b->depth++] = (struct frame){n, NULL};
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        struct frame f = b->stack[--b->depth];
        if (f.node->type == RB_NODE_MAP)
            check_duplicates(b, f.node);
        attach(b, f.node);
        return 0;
    }
    default: /* STREAM_START, DOCUMENT_END, NO_EVENT */
        return 0;
    }
}

static void builder_cleanup(struct builder *b)
{
    while (b->depth > 0) {
        struct frame *f = &b->stack[--b->depth];
        node_free(f->key);
        node_free(f->node);
    }
    node_free(b->root);
    b->root = NULL;
}

struct rb_doc *rb_doc_parse(const char *name, const char *text, size_t len, struct rb_errors *errs)
{
    if (len > RB_CONF_MAX_BYTES) {
        rb_errors_add(errs, "%s: the file is %zu bytes, larger than the 4 MiB a configuration "
                            "file may have",
                      name, len);
        return NULL;
    }
    struct rb_doc *doc = rb_calloc(1, sizeof(*doc));
    doc->file = rb_strdup(name);
    struct builder b = {.file = doc->file, .text = text, .errs = errs};

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        rb_fatal("out of memory starting the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int ndocs = 0, rc = 0;
    while (rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            parser_error(&b, &parser, len);
            break;
        }
        rc = on_event(&b, &ev, &ndocs);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);

    if (b.failed) {
        builder_cleanup(&b);
        rb_doc_free(doc);
        return NULL;
    }
    rb_assert(b.depth == 0);
    doc->root = b.root;
    /* "---" alone is an empty document, the same as an empty file. */
    if (doc->root && doc->root->type == RB_NODE_SCALAR && !doc->root->quoted &&
        doc->root->scalar[0] == '\0') {
        node_free(doc->root);
        doc->root = NULL;
    }
    return doc;
}

struct rb_doc *rb_doc_load_from(const char *path, const struct rb_node *from, const char *key,
                                struct rb_errors *errs)
{
/* Reports a problem with the file itself: at the key that named it, or at the file. */
#define FILE_ERROR(...)                                                                       \
    do {                                                                                      \
        char *m_ = rb_sprintf(__VA_ARGS__);                                                   \
        if (from)                                                                             \
            rb_errors_at(errs, from, "key \"%s\": %s", key ? key : "?", m_);                  \
        else                                                                                  \
            rb_errors_add(errs, "%s", m_);                                                    \
        free(m_);                                                                             \
    } while (0)

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        FILE_ERROR("cannot open %s: %s", path, strerror(err));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        FILE_ERROR("cannot read %s: %s", path, strerror(err));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        FILE_ERROR("cannot read %s: it is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((unsigned long long)st.st_size > RB_CONF_MAX_BYTES) {
        FILE_ERROR("%s is %lld bytes, larger than the 4 MiB a configuration file may have", path,
                   (long long)st.st_size);
        close(fd);
        return NULL;
    }
    /* Read one byte past the limit so that a file that grew since fstat is still caught. */
    size_t cap = RB_CONF_MAX_BYTES + 1, len = 0;
    size_t want = (size_t)st.st_size + 1 < cap ? (size_t)st.st_size + 1 : cap;
    char *text = rb_malloc(want);
    for (;;) {
        if (len == want) {
            if (want == cap)
                break;
            want = want * 2 < cap ? want * 2 : cap;
            text = rb_realloc(text, want);
        }
        ssize_t r = read(fd, text + len, want - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            FILE_ERROR("cannot read %s: %s", path, strerror(err));
            close(fd);
            free(text);
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (len > RB_CONF_MAX_BYTES) {
        FILE_ERROR("%s is larger than the 4 MiB a configuration file may have", path);
        free(text);
        return NULL;
    }
#undef FILE_ERROR
    struct rb_doc *doc = rb_doc_parse(path, text, len, errs);
    free(text);
    return doc;
}

struct rb_doc *rb_doc_load(const char *path, struct rb_errors *errs)
{
    return rb_doc_load_from(path, NULL, NULL, errs);
}

/* ---- scalar conversions ------------------------------------------------------------------ */

int rb_node_is_null(const struct rb_node *n)
{
    if (!n || n->type != RB_NODE_SCALAR || n->quoted)
        return 0;
    const char *s = n->scalar;
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* What the administrator wrote, for "got ..." in messages: a quoted, shortened value or the
 * kind of node. Returns a new string; caller frees. */
static char *describe(const struct rb_node *n)
{
    if (!n)
        return rb_strdup("nothing");
    if (n->type != RB_NODE_SCALAR)
        return rb_strdup(type_name(n->type));
    if (rb_node_is_null(n))
        return rb_strdup("nothing");
    size_t len = strlen(n->scalar);
    if (len <= 40)
        return rb_sprintf("\"%s\"", n->scalar);
    size_t cut = 37;
    while (cut > 0 && ((unsigned char)n->scalar[cut] & 0xC0) == 0x80)
        cut--; /* do not split a UTF-8 character */
    return rb_sprintf("\"%.*s...\"", (int)cut, n->scalar);
}

static void type_error(const struct rb_node *n, const char *key, struct rb_errors *e,
                       const char *expected)
{
    char *got = describe(n);
    rb_errors_at(e, n, "key \"%s\": expected %s, got %s", key ? key : "?", expected, got);
    free(got);
}

int rb_node_str(const struct rb_node *n, const char *key, struct rb_errors *e, char **out)
{
    if (!n || n->type != RB_NODE_SCALAR) {
        type_error(n, key, e, "a text value");
        return RB_EINVAL;
    }
    *out = rb_strdup(n->scalar);
    return RB_OK;
}

int rb_node_int(const struct rb_node *n, const char *key, struct rb_errors *e, long long *out)
{
    const char *s = n && n->type == RB_NODE_SCALAR ? n->scalar : NULL;
    const char *p = s;
    if (p && (*p == '-' || *p == '+'))
        p++;
    if (!p || *p < '0' || *p > '9' || rb_node_is_null(n)) {
        type_error(n, key, e, "a whole number");
        return RB_EINVAL;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end) {
        type_error(n, key, e, "a whole number");
        return RB_EINVAL;
    }
    if (errno == ERANGE) {
        rb_errors_at(e, n, "key \"%s\": %s is too large for a whole number", key ? key : "?", s);
        return RB_EINVAL;
    }
    *out = v;
    return RB_OK;
}

int rb_node_bool(const struct rb_node *n, const char *key, struct rb_errors *e, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    if (n && n->type == RB_NODE_SCALAR) {
        for (size_t i = 0; i < RB_ARRAY_LEN(yes); i++) {
            if (strcasecmp(n->scalar, yes[i]) == 0) {
                *out = 1;
                return RB_OK;
            }
            if (strcasecmp(n->scalar, no[i]) == 0) {
                *out = 0;
                return RB_OK;
            }
        }
    }
    type_error(n, key, e, "true or false (or yes/no, on/off)");
    return RB_EINVAL;
}

/* Reads "[-]digits[.digits]" at s into *v; returns the end, or NULL if there is no number. */
static const char *scan_number(const char *s, double *v, int *negative)
{
    const char *p = s;
    *negative = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return NULL;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    char *end;
    *v = strtod(s, &end);
    return end == p ? p : NULL;
}

int rb_node_double(const struct rb_node *n, const char *key, struct rb_errors *e, double *out)
{
    const char *s = n && n->type == RB_NODE_SCALAR ? n->scalar : NULL;
    double v;
    int neg;
    const char *end = s ? scan_number(s, &v, &neg) : NULL;
    if (!end || *end || !isfinite(v)) {
        type_error(n, key, e, "a number");
        return RB_EINVAL;
    }
    *out = v;
    return RB_OK;
}

int rb_node_duration(const struct rb_node *n, const char *key, struct rb_errors *e, double *out)
{
    static const struct {
        const char *unit;
        double seconds;
    } units[] = {{"", 1}, {"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
    const char *s = n && n->type == RB_NODE_SCALAR ? n->scalar : NULL;
    double v;
    int neg;
    const char *end = s ? scan_number(s, &v, &neg) : NULL;
    if (end) {
        while (*end == ' ')
            end++;
        for (size_t i = 0; i < RB_ARRAY_LEN(units); i++) {
            if (strcmp(end, units[i].unit) != 0)
                continue;
            if (neg && v != 0) {
                rb_errors_at(e, n, "key \"%s\": a duration cannot be negative, got \"%s\"",
                             key ? key : "?", s);
                return RB_EINVAL;
            }
            v *= units[i].seconds;
            if (!isfinite(v)) {
                rb_errors_at(e, n, "key \"%s\": the duration \"%s\" is too large",
                             key ? key : "?", s);
                return RB_EINVAL;
            }
            *out = v > 0 ? v : 0; /* "-0" is 0 */
            return RB_OK;
        }
    }
    type_error(n, key, e, "a duration such as 250ms, 90s, 5m, 2h or 3d");
    return RB_EINVAL;
}

int rb_node_size(const struct rb_node *n, const char *key, struct rb_errors *e, size_t *out)
{
    static const struct {
        const char *unit;
        double bytes;
    } units[] = {{"", 1},
                 {"b", 1},
                 {"kib", 1024.0},
                 {"mib", 1024.0 * 1024},
                 {"gib", 1024.0 * 1024 * 1024},
                 {"tib", 1024.0 * 1024 * 1024 * 1024},
                 {"kb", 1e3},
                 {"mb", 1e6},
                 {"gb", 1e9},
                 {"tb", 1e12}};
    const char *s = n && n->type == RB_NODE_SCALAR ? n->scalar : NULL;
    double v;
    int neg;
    const char *end = s ? scan_number(s, &v, &neg) : NULL;
    if (!end) {
        type_error(n, key, e, "a size such as 512, 64KiB, 2MiB or 1GiB");
        return RB_EINVAL;
    }
    const char *unit = end;
    while (*unit == ' ')
        unit++;
    for (size_t i = 0; i < RB_ARRAY_LEN(units); i++) {
        if (strcasecmp(unit, units[i].unit) != 0)
            continue;
        if (neg && v != 0) {
            rb_errors_at(e, n, "key \"%s\": a size cannot be negative, got \"%s\"",
                         key ? key : "?", s);
            return RB_EINVAL;
        }
        v *= units[i].bytes;
        if (v >= 18446744073709551616.0 || (double)SIZE_MAX < v) {
            rb_errors_at(e, n, "key \"%s\": the size \"%s\" is too large", key ? key : "?", s);
            return RB_EINVAL;
        }
        *out = v < 0 ? 0 : (size_t)v;
        return RB_OK;
    }
    rb_errors_at(e, n,
                 "key \"%s\": unknown size unit \"%s\" in \"%s\"; use B, KiB, MiB, GiB, TiB "
                 "(1024-based) or KB, MB, GB, TB (1000-based)",
                 key ? key : "?", unit, s);
    return RB_EINVAL;
}

/* ---- the declarative parser -------------------------------------------------------------- */

/* A field table is read one element at a time through this view: the element's first
 * `size` bytes (a struct rb_conf_field, or a struct rb_conf_field_v2 as the plugin was built),
 * the members it lacks left zero. */
struct table {
    const unsigned char *base; /* borrowed */
    size_t n, size;
};

_Static_assert(offsetof(struct rb_conf_field_v2, values) == sizeof(struct rb_conf_field),
               "struct rb_conf_field_v2 must start with the members of struct rb_conf_field");

static struct rb_conf_field_v2 field_at(const struct table *t, size_t i)
{
    struct rb_conf_field_v2 f = {0};
    memcpy(&f, t->base + i * t->size, t->size < sizeof(f) ? t->size : sizeof(f));
    return f;
}

static int find_field(const struct table *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(field_at(t, i).key, key) == 0)
            return 1;
    return 0;
}

static int is_extra(const char *const *extra, const char *key)
{
    for (; extra && *extra; extra++)
        if (strcmp(*extra, key) == 0)
            return 1;
    return 0;
}

/* "a, b, c" of the words of list (NULL-terminated) and then of the table's keys (t may be
 * NULL). Returns a new string; caller frees. */
static char *word_list(const char *const *list, const struct table *t)
{
    size_t len = 1;
    for (size_t i = 0; t && i < t->n; i++)
        len += strlen(field_at(t, i).key) + 2;
    for (const char *const *x = list; x && *x; x++)
        len += strlen(*x) + 2;
    char *s = rb_malloc(len);
    s[0] = '\0';
    for (size_t i = 0; t && i < t->n; i++) {
        if (s[0])
            strcat(s, ", ");
        strcat(s, field_at(t, i).key);
    }
    for (const char *const *x = list; x && *x; x++) {
        if (s[0])
            strcat(s, ", ");
        strcat(s, *x);
    }
    return s;
}

/* ENUM: the index of v's text in f->values. */
static int parse_enum(const struct rb_conf_field_v2 *f, const struct rb_node *v, int *out,
                      struct rb_errors *e)
{
    if (!f->values) {
        rb_errors_at(e, v, "key \"%s\": the plugin lists no allowed values for it", f->key);
        return RB_EINVAL;
    }
    for (int i = 0; v->type == RB_NODE_SCALAR && f->values[i]; i++) {
        if (strcmp(v->scalar, f->values[i]) == 0) {
            *out = i;
            return RB_OK;
        }
    }
    char *allowed = word_list(f->values, NULL);
    char *got = describe(v);
    rb_errors_at(e, v, "key \"%s\": expected one of %s, got %s", f->key, allowed, got);
    free(got);
    free(allowed);
    return RB_EINVAL;
}

/* Converts one value and stores it at the field's offset. */
static int parse_field(const struct rb_conf_field_v2 *f, const struct rb_node *v, void *out,
                       struct rb_errors *e)
{
    char *base = out;
    int bounded = f->min < f->max;
    switch (f->type) {
    case RB_CONF_STRING: {
        char *s;
        if (rb_node_str(v, f->key, e, &s) != RB_OK)
            return RB_EINVAL;
        char **slot = (char **)(void *)(base + f->offset);
        free(*slot);
        *slot = s;
        return RB_OK;
    }
    case RB_CONF_INT: {
        long long x;
        if (rb_node_int(v, f->key, e, &x) != RB_OK)
            return RB_EINVAL;
        if (bounded && (x < f->min || x > f->max)) {
            rb_errors_at(e, v, "key \"%s\": %lld is out of range; use a whole number from %lld "
                               "to %lld",
                         f->key, x, f->min, f->max);
            return RB_EINVAL;
        }
        memcpy(base + f->offset, &x, sizeof(x));
        return RB_OK;
    }
    case RB_CONF_BOOL: {
        int x;
        if (rb_node_bool(v, f->key, e, &x) != RB_OK)
            return RB_EINVAL;
        memcpy(base + f->offset, &x, sizeof(x));
        return RB_OK;
    }
    case RB_CONF_DURATION:
    case RB_CONF_DOUBLE: {
        double x;
        int rc = f->type == RB_CONF_DURATION ? rb_node_duration(v, f->key, e, &x)
                                             : rb_node_double(v, f->key, e, &x);
        if (rc != RB_OK)
            return RB_EINVAL;
        memcpy(base + f->offset, &x, sizeof(x));
        return RB_OK;
    }
    case RB_CONF_SIZE: {
        size_t x;
        if (rb_node_size(v, f->key, e, &x) != RB_OK)
            return RB_EINVAL;
        if (bounded && ((f->min > 0 && x < (unsigned long long)f->min) ||
                        (f->max >= 0 && x > (unsigned long long)f->max))) {
            rb_errors_at(e, v, "key \"%s\": %zu bytes is out of range; use a size from %lld to "
                               "%lld bytes",
                         f->key, x, f->min, f->max);
            return RB_EINVAL;
        }
        memcpy(base + f->offset, &x, sizeof(x));
        return RB_OK;
    }
    case RB_CONF_ENUM: {
        int x;
        if (parse_enum(f, v, &x, e) != RB_OK)
            return RB_EINVAL;
        memcpy(base + f->offset, &x, sizeof(x));
        return RB_OK;
    }
    }
    rb_errors_at(e, v, "key \"%s\": the plugin gives it an unknown type %d", f->key,
                 (int)f->type);
    return RB_EINVAL;
}

/* Converts and stores one value, then asks the field's own check about it. */
static void parse_checked(const struct rb_conf_field_v2 *f, const struct rb_node *v, void *out,
                          struct rb_errors *e)
{
    if (parse_field(f, v, out, e) != RB_OK || !f->check)
        return;
    char why[256] = "";
    const char *bad = f->check((char *)out + f->offset, out, why, sizeof(why));
    if (bad)
        rb_errors_at(e, v, "key \"%s\": %s", f->key, bad);
}

static int parse_table(const struct rb_node *map, const char *what, const struct table *t,
                       const char *const *extra_keys, void *out, struct rb_errors *e)
{
    size_t before = e->n;
    if (!what)
        what = "this block";
    if (map && rb_node_is_null(map))
        map = NULL; /* "config:" with nothing after it is an empty block */
    if (map && map->type != RB_NODE_MAP) {
        char *got = describe(map);
        rb_errors_at(e, map, "%s: expected a map of keys, got %s", what, got);
        free(got);
        return RB_EINVAL;
    }
    for (size_t i = 0; map && i < map->n; i++) {
        const char *k = map->keys[i]->scalar;
        if (find_field(t, k) || is_extra(extra_keys, k))
            continue;
        char *allowed = word_list(extra_keys, t);
        if (allowed[0])
            rb_errors_at(e, map->keys[i], "unknown key \"%s\" in %s; allowed keys: %s", k, what,
                         allowed);
        else
            rb_errors_at(e, map->keys[i], "unknown key \"%s\" in %s, which takes no keys", k,
                         what);
        free(allowed);
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct rb_conf_field_v2 f = field_at(t, i);
        const struct rb_node *v = rb_node_get(map, f.key);
        if (!v || rb_node_is_null(v)) {
            if (!(f.flags & RB_CONF_REQUIRED))
                continue;
            if (map)
                rb_errors_at(e, map, "missing required key \"%s\" in %s", f.key, what);
            else
                rb_errors_add(e, "missing required key \"%s\" in %s", f.key, what);
            continue;
        }
        parse_checked(&f, v, out, e);
    }
    return e->n == before ? RB_OK : RB_EINVAL;
}

int rb_conf_parse(const struct rb_node *map, const char *what, const struct rb_conf_field *fields,
                  size_t nfields, const char *const *extra_keys, void *out, struct rb_errors *e)
{
    const struct table t = {(const unsigned char *)fields, nfields, sizeof(*fields)};
    return parse_table(map, what, &t, extra_keys, out, e);
}

int rb_conf_parse_v2(const struct rb_node *map, const char *what,
                     const struct rb_conf_field_v2 *fields, size_t nfields, size_t field_size,
                     const char *const *extra_keys, void *out, struct rb_errors *e)
{
    if (field_size < sizeof(struct rb_conf_field)) {
        rb_errors_add(e, "%s: the plugin's field table has elements of %zu bytes, fewer than "
                         "the %zu of struct rb_conf_field",
                      what ? what : "this block", field_size, sizeof(struct rb_conf_field));
        return RB_EINVAL;
    }
    const struct table t = {(const unsigned char *)fields, nfields, field_size};
    return parse_table(map, what, &t, extra_keys, out, e);
}

static void free_table(const struct table *t, void *out)
{
    for (size_t i = 0; out && i < t->n; i++) {
        const struct rb_conf_field_v2 f = field_at(t, i);
        if (f.type != RB_CONF_STRING)
            continue;
        char **slot = (char **)(void *)((char *)out + f.offset);
        free(*slot);
        *slot = NULL;
    }
}

void rb_conf_free(const struct rb_conf_field *fields, size_t nfields, void *out)
{
    const struct table t = {(const unsigned char *)fields, nfields, sizeof(*fields)};
    free_table(&t, out);
}

void rb_conf_free_v2(const struct rb_conf_field_v2 *fields, size_t nfields, size_t field_size,
                     void *out)
{
    if (field_size < sizeof(struct rb_conf_field))
        return;
    const struct table t = {(const unsigned char *)fields, nfields, field_size};
    free_table(&t, out);
}
