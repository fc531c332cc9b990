/* YAML documents as a tree that remembers file:line:column for every node, the declarative
 * parser used by core and plugins alike, and a list of errors in one administrator-readable
 * sentence each.
 *
 * Errors read:  config/services/domicile.yaml:4:13: key "department": no department "revnue"
 *               (known: revenue, police, ...)
 */
#ifndef RB_CONF_H
#define RB_CONF_H

#include <stddef.h>
#include "base/common.h"

enum rb_node_type { RB_NODE_SCALAR = 1, RB_NODE_MAP = 2, RB_NODE_SEQ = 3 };

struct rb_node {
    enum rb_node_type type;
    const char *file; /* borrowed from the document */
    int line, col;    /* 1-based */
    char *scalar;     /* owned; RB_NODE_SCALAR only */
    int quoted;       /* scalar was quoted ("yes" stays a string) */
    /* MAP: keys[i] -> items[i]; SEQ: items[i]. */
    struct rb_node **keys;  /* owned; MAP only (each a scalar node) */
    struct rb_node **items; /* owned */
    size_t n;
};

struct rb_doc {
    char *file; /* owned */
    struct rb_node *root; /* owned; NULL for an empty document */
};

/* Errors are collected, not printed, so that --check can show every one. */
struct rb_errors {
    char **msgs; /* owned */
    size_t n, cap;
};

void rb_errors_init(struct rb_errors *e);
void rb_errors_free(struct rb_errors *e);
void rb_errors_add(struct rb_errors *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds "file:line:col: " + message for node. */
void rb_errors_at(struct rb_errors *e, const struct rb_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses one YAML file. Returns a new document, or NULL after adding an error (unreadable
 * file, syntax error with its position, more than one document, anchors/aliases, a file over
 * 4 MiB, nesting deeper than 64). Caller frees with rb_doc_free. */
struct rb_doc *rb_doc_load(const char *path, struct rb_errors *errs);
/* Same from memory; name is used in messages. */
struct rb_doc *rb_doc_parse(const char *name, const char *text, size_t len, struct rb_errors *errs);
/* Like rb_doc_load, for a file another file names: when path cannot be read (missing, not a
 * regular file, over 4 MiB) the error is placed at node from and names key, e.g.
 * "config/rabta.yaml:9:12: key \"districts\": cannot open config/d.yaml: No such file ...". */
struct rb_doc *rb_doc_load_from(const char *path, const struct rb_node *from, const char *key,
                                struct rb_errors *errs);
void rb_doc_free(struct rb_doc *doc);

/* A plain empty, "~" or "null" value: YAML's null, which typed keys treat as "not given". */
int rb_node_is_null(const struct rb_node *n);
/* "a map", "a list" or "a value", for messages. */
const char *rb_node_kind(const struct rb_node *n);

/* Returns a new string: dir/p, or p itself when p is absolute or dir is "". */
char *rb_path_join(const char *dir, const char *p);

/* Included files: v is a file pattern or a list of them, relative to dir. Calls fn(path, the
 * pattern's node, arg) for every matching file in name order; a malformed pattern, one that
 * matches nothing, or one that cannot be listed is an error naming key (example shows a good
 * pattern in the message). Absent or null v: nothing. */
typedef void (*rb_conf_file_fn)(const char *path, const struct rb_node *at, void *arg);
void rb_conf_glob(const struct rb_node *v, const char *key, const char *example, const char *dir,
                  rb_conf_file_fn fn, void *arg, struct rb_errors *e);

/* Map lookup; NULL when absent or node is not a map. Borrowed. */
const struct rb_node *rb_node_get(const struct rb_node *map, const char *key);

/* Scalar conversions. Each returns RB_OK, or RB_EINVAL after adding an error naming key
 * ("file:3:14: key \"pool_size\": expected a whole number, got \"four\""). Quoting never changes
 * the type: "4" reads as 4 and "yes" as true for an int or bool key. */
int rb_node_str(const struct rb_node *n, const char *key, struct rb_errors *e, char **out);
int rb_node_int(const struct rb_node *n, const char *key, struct rb_errors *e, long long *out);
int rb_node_bool(const struct rb_node *n, const char *key, struct rb_errors *e, int *out);
int rb_node_double(const struct rb_node *n, const char *key, struct rb_errors *e, double *out);
int rb_node_duration(const struct rb_node *n, const char *key, struct rb_errors *e, double *out);
int rb_node_size(const struct rb_node *n, const char *key, struct rb_errors *e, size_t *out);

/* Declarative parse of map into out using fields (struct rb_conf_field from rabta/plugin.h).
 * Unknown keys, wrong types, missing required keys and out-of-range values are errors. If
 * extra_keys is non-NULL, keys it lists (NULL-terminated) are allowed and left to the caller.
 * Returns RB_OK or RB_EINVAL (errors added). what names the block ("plugin sms_kannel").
 * Absent keys (and null values: "key:", "~") leave out's member as it was, so preset defaults
 * stay; a STRING member that is set is freed first, so it must start NULL or malloc'd.
 * A NULL map is an empty block. */
int rb_conf_parse(const struct rb_node *map, const char *what, const struct rb_conf_field *fields,
                  size_t nfields, const char *const *extra_keys, void *out, struct rb_errors *e);
void rb_conf_free(const struct rb_conf_field *fields, size_t nfields, void *out);
/* The same with a table of struct rb_conf_field_v2 whose elements are field_size bytes (as the
 * plugin was built; at least sizeof(struct rb_conf_field)): ENUM values (an error names the
 * allowed ones) and each field's check hook, reported at the value's file:line:col. */
int rb_conf_parse_v2(const struct rb_node *map, const char *what,
                     const struct rb_conf_field_v2 *fields, size_t nfields, size_t field_size,
                     const char *const *extra_keys, void *out, struct rb_errors *e);
void rb_conf_free_v2(const struct rb_conf_field_v2 *fields, size_t nfields, size_t field_size,
                     void *out);

#endif
