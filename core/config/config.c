/* rabta.yaml and the files it includes (districts, one file per department, one per service)
 * into struct rb_config. The loader keeps going after an error so that one run shows every
 * mistake; each message names file:line:column and the key. The shape is documented in
 * docs/config.md. */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/phone.h"
#include "config/quiet.h"
#include "config/tz.h"

#define ID_MIN 2
#define ID_MAX 40
#define KNOWN_MAX 12 /* ids listed in "known: ..." before "..." */

struct loader {
    struct rb_config *cfg;
    struct rb_errors *e;
    char *include_dir; /* owned; rabta.yaml's directory as given, "" for the current one */
    /* The YAML map each department and service came from, parallel to cfg->departments and
     * cfg->services; borrowed from cfg->docs. */
    const struct rb_node **dep_maps;
    const struct rb_node **svc_maps;
    size_t errors_before; /* e->n when loading began */
};

/* ---- small helpers ----------------------------------------------------------------------- */

/* Returns a new string: the directory part of path, "" when there is none. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return rb_strdup("");
    if (slash == path)
        return rb_strdup("/");
    return rb_strndup(path, (size_t)(slash - path));
}

/* Returns a new string: the absolute directory of path (not resolving symlinks). */
static char *abs_dir_of(const char *path)
{
    char *dir = dir_of(path);
    if (dir[0] == '/')
        return dir;
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        rb_fatal("cannot find the current directory: %s", strerror(errno));
    char *abs = dir[0] ? rb_path_join(cwd, dir) : rb_strdup(cwd);
    free(cwd);
    free(dir);
    return abs;
}

/* Takes ownership of doc. */
static void keep_doc(struct rb_config *cfg, struct rb_doc *doc)
{
    cfg->docs = rb_realloc(cfg->docs, (cfg->n_docs + 1) * sizeof(*cfg->docs));
    cfg->docs[cfg->n_docs++] = doc;
}

/* Ids (and plugin names) are lowercase slugs: [a-z0-9_], 2 to 40 characters. */
static int check_id(struct loader *l, const struct rb_node *at, const char *key, const char *id)
{
    size_t n = strlen(id);
    int ok = n >= ID_MIN && n <= ID_MAX;
    for (const char *p = id; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
    if (!ok)
        rb_errors_at(l->e, at,
                     "key \"%s\": \"%s\" is not a valid %s; use %d to %d lowercase letters, "
                     "digits or underscores",
                     key, id, strcmp(key, "id") == 0 ? "id" : "name", ID_MIN, ID_MAX);
    return ok;
}

/* 1 when s holds at least one letter of the Arabic script (U+0600-U+06FF, U+0750-U+077F,
 * U+08A0-U+08FF, U+FB50-U+FDFF, U+FE70-U+FEFF), in which Urdu is written. */
static int has_arabic_script(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned cp;
        int len;
        if (*p < 0x80) {
            cp = *p;
            len = 1;
        } else if ((*p & 0xE0) == 0xC0 && p[1]) {
            cp = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
            len = 2;
        } else if ((*p & 0xF0) == 0xE0 && p[1] && p[2]) {
            cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
            len = 3;
        } else {
            cp = 0;
            len = 1;
            while (p[len] && (p[len] & 0xC0) == 0x80)
                len++;
        }
        if ((cp >= 0x600 && cp <= 0x6FF) || (cp >= 0x750 && cp <= 0x77F) ||
            (cp >= 0x8A0 && cp <= 0x8FF) || (cp >= 0xFB50 && cp <= 0xFDFF) ||
            (cp >= 0xFE70 && cp <= 0xFEFF))
            return 1;
        p += len;
    }
    return 0;
}

/* name: {en: "...", ur: "..."}, both required. */
static int parse_i18n(struct loader *l, const struct rb_node *map, struct rb_i18n *out)
{
    static const struct rb_conf_field fields[] = {
        {"en", RB_CONF_STRING, offsetof(struct rb_i18n, en), RB_CONF_REQUIRED, 0, 0},
        {"ur", RB_CONF_STRING, offsetof(struct rb_i18n, ur), RB_CONF_REQUIRED, 0, 0},
    };
    const struct rb_node *name = rb_node_get(map, "name");
    if (!name || rb_node_is_null(name)) {
        rb_errors_at(l->e, map, "missing required key \"name\" (with \"en\" and \"ur\")");
        return RB_EINVAL;
    }
    if (name->type != RB_NODE_MAP) {
        rb_errors_at(l->e, name,
                     "key \"name\": expected a map with an English \"en\" and an Urdu \"ur\" "
                     "name, got %s",
                     rb_node_kind(name));
        return RB_EINVAL;
    }
    int rc = rb_conf_parse(name, "name", fields, RB_ARRAY_LEN(fields), NULL, out, l->e);
    if (out->en && !out->en[0]) {
        rb_errors_at(l->e, rb_node_get(name, "en"), "key \"en\": the English name is empty");
        rc = RB_EINVAL;
    }
    if (out->ur && !has_arabic_script(out->ur)) {
        rb_errors_at(l->e, rb_node_get(name, "ur"),
                     "key \"ur\": \"%s\" is not written in Urdu (no Arabic-script letters)",
                     out->ur);
        rc = RB_EINVAL;
    }
    return rc;
}

static void i18n_free(struct rb_i18n *n)
{
    free(n->en);
    free(n->ur);
}

/* A plugin's or department's "config:" block: a map, or absent. */
static const struct rb_node *config_block(struct loader *l, const struct rb_node *map)
{
    const struct rb_node *c = rb_node_get(map, "config");
    if (!c || rb_node_is_null(c))
        return NULL;
    if (c->type != RB_NODE_MAP) {
        rb_errors_at(l->e, c, "key \"config\": expected a map of settings, got %s", rb_node_kind(c));
        return NULL;
    }
    return c;
}

/* ---- rabta.yaml sections ----------------------------------------------------------------- */

/* "addr:port", "[v6]:port"; port 0-65535 (0: any free port). */
static void parse_listen(struct loader *l, const struct rb_node *at, const char *s)
{
    struct rb_config *cfg = l->cfg;
    const char *colon = strrchr(s, ':');
    const char *host = s;
    size_t hlen = colon ? (size_t)(colon - s) : 0;
    int bracketed = s[0] == '[';
    if (bracketed) {
        host++;
        hlen = hlen >= 2 && s[hlen - 1] == ']' ? hlen - 2 : 0;
    }
    char *h = rb_strndup(host, hlen);
    int host_ok = hlen > 0;
    if (host_ok) {
        unsigned char buf[16];
        if (bracketed) {
            host_ok = inet_pton(AF_INET6, h, buf) == 1;
        } else if (inet_pton(AF_INET, h, buf) != 1) {
            for (const char *p = h; host_ok && *p; p++) /* a host name, e.g. localhost */
                host_ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                          (*p >= '0' && *p <= '9') || *p == '.' || *p == '-';
        }
    }
    const char *port = colon ? colon + 1 : "";
    int port_ok = *port != '\0' && strlen(port) <= 9;
    for (const char *p = port; port_ok && *p; p++)
        port_ok = *p >= '0' && *p <= '9';
    if (!host_ok || !port_ok) {
        rb_errors_at(l->e, at,
                     "key \"listen\": \"%s\" is not an address and port such as 127.0.0.1:8080 "
                     "or [::1]:8080",
                     s);
        free(h);
        return;
    }
    long p = strtol(port, NULL, 10);
    if (p > 65535) {
        rb_errors_at(l->e, at,
                     "key \"listen\": port %ld is out of range; use 1 to 65535, or 0 for any "
                     "free port",
                     p);
        free(h);
        return;
    }
    free(cfg->server.addr);
    cfg->server.addr = h;
    cfg->server.port = (int)p;
}

struct server_in {
    char *listen;
    size_t max_body;
    double shutdown_grace, request_timeout;
};

static void parse_server(struct loader *l, const struct rb_node *map)
{
    static const struct rb_conf_field fields[] = {
        {"listen", RB_CONF_STRING, offsetof(struct server_in, listen), 0, 0, 0},
        {"max_body", RB_CONF_SIZE, offsetof(struct server_in, max_body), 0, 1, 1ll << 30},
        {"shutdown_grace", RB_CONF_DURATION, offsetof(struct server_in, shutdown_grace), 0, 0, 0},
        {"request_timeout", RB_CONF_DURATION, offsetof(struct server_in, request_timeout), 0, 0,
         0},
    };
    struct rb_config *cfg = l->cfg;
    struct server_in in = {NULL, cfg->server.max_body, cfg->server.shutdown_grace,
                           cfg->server.request_timeout};
    if (!map)
        return;
    rb_conf_parse(map, "server", fields, RB_ARRAY_LEN(fields), rb_server_limit_keys, &in, l->e);
    rb_server_limits_parse(&cfg->server.limits, map, l->e);
    if (in.listen)
        parse_listen(l, rb_node_get(map, "listen"), in.listen);
    if (in.request_timeout <= 0)
        rb_errors_at(l->e, rb_node_get(map, "request_timeout"),
                     "key \"request_timeout\": must be more than 0 seconds");
    cfg->server.max_body = in.max_body;
    cfg->server.shutdown_grace = in.shutdown_grace;
    cfg->server.request_timeout = in.request_timeout;
    rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
}

struct database_in {
    char *url, *pg_bindir;
    long long pool_size, max_queue;
    double connect_timeout;
};

static void parse_database(struct loader *l, const struct rb_node *map)
{
    static const struct rb_conf_field fields[] = {
        {"url", RB_CONF_STRING, offsetof(struct database_in, url), 0, 0, 0},
        {"pool_size", RB_CONF_INT, offsetof(struct database_in, pool_size), 0, 1, 1000},
        {"connect_timeout", RB_CONF_DURATION, offsetof(struct database_in, connect_timeout), 0,
         0, 0},
        {"max_queue", RB_CONF_INT, offsetof(struct database_in, max_queue), 0, 1, 10000000},
        {"pg_bindir", RB_CONF_STRING, offsetof(struct database_in, pg_bindir), 0, 0, 0},
    };
    struct rb_config *cfg = l->cfg;
    struct database_in in = {NULL, NULL, cfg->database.pool_size,
                             (long long)cfg->database.max_queue, cfg->database.connect_timeout};
    if (!map)
        return;
    rb_conf_parse(map, "database", fields, RB_ARRAY_LEN(fields), NULL, &in, l->e);
    if (in.connect_timeout <= 0)
        rb_errors_at(l->e, rb_node_get(map, "connect_timeout"),
                     "key \"connect_timeout\": must be more than 0 seconds");
    if (in.url && in.url[0]) {
        cfg->database.url = in.url;
        in.url = NULL;
    }
    if (in.pg_bindir && in.pg_bindir[0])
        cfg->database.pg_bindir = rb_path_join(cfg->base_dir, in.pg_bindir);
    cfg->database.pool_size = (int)in.pool_size;
    cfg->database.max_queue = (size_t)in.max_queue;
    cfg->database.connect_timeout = in.connect_timeout;
    rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
}

/* jobs: the durable queue's runner in this process. */
static void parse_jobs(struct loader *l, const struct rb_node *map)
{
    static const struct rb_conf_field fields[] = {
        {"concurrency", RB_CONF_INT, offsetof(struct rb_jobs_conf, concurrency), 0, 1, 100000},
        {"batch", RB_CONF_INT, offsetof(struct rb_jobs_conf, batch), 0, 1, 10000},
        {"lease", RB_CONF_DURATION, offsetof(struct rb_jobs_conf, lease), 0, 0, 0},
        {"backoff_base", RB_CONF_DURATION, offsetof(struct rb_jobs_conf, backoff_base), 0, 0, 0},
        {"backoff_max", RB_CONF_DURATION, offsetof(struct rb_jobs_conf, backoff_max), 0, 0, 0},
    };
    struct rb_jobs_conf in = l->cfg->jobs;
    if (!map)
        return;
    if (rb_conf_parse(map, "jobs", fields, RB_ARRAY_LEN(fields), NULL, &in, l->e) != RB_OK)
        return;
    static const char *const positive[] = {"lease", "backoff_base", "backoff_max"};
    const double values[] = {in.lease, in.backoff_base, in.backoff_max};
    for (size_t i = 0; i < RB_ARRAY_LEN(positive); i++)
        if (values[i] <= 0)
            rb_errors_at(l->e, rb_node_get(map, positive[i]),
                         "key \"%s\": must be more than 0 seconds", positive[i]);
    if (in.backoff_max < in.backoff_base)
        rb_errors_at(l->e, rb_node_get(map, "backoff_max"),
                     "key \"backoff_max\": must not be shorter than backoff_base");
    l->cfg->jobs = in;
}

/* messages: quiet hours for notices. */
static void parse_messages(struct loader *l, const struct rb_node *map)
{
    static const struct rb_conf_field fields[] = {
        {"quiet_hours", RB_CONF_STRING, offsetof(struct rb_messages_conf, quiet_hours), 0, 0, 0},
        {"timezone", RB_CONF_STRING, offsetof(struct rb_messages_conf, timezone), 0, 0, 0},
    };
    struct rb_messages_conf in = {NULL, NULL};
    if (!map)
        return;
    if (rb_conf_parse(map, "messages", fields, RB_ARRAY_LEN(fields), NULL, &in, l->e) != RB_OK) {
        rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
        return;
    }
    struct rb_quiet q;
    if (in.quiet_hours && rb_quiet_parse(in.quiet_hours, &q) != RB_OK)
        rb_errors_at(l->e, rb_node_get(map, "quiet_hours"),
                     "key \"quiet_hours\": expected \"HH:MM-HH:MM\" (or HH:MM:SS) such as "
                     "\"21:00-08:00\"");
    if (in.timezone) {
        char *why = NULL;
        struct rb_tz *tz = rb_tz_load(in.timezone, &why);
        if (!tz)
            rb_errors_at(l->e, rb_node_get(map, "timezone"), "key \"timezone\": %s",
                         why ? why : "unknown zone");
        free(why);
        rb_tz_free(tz);
    }
    l->cfg->messages = in;
}

struct log_in {
    char *level;
};

static void parse_log(struct loader *l, const struct rb_node *map)
{
    static const struct rb_conf_field fields[] = {
        {"level", RB_CONF_STRING, offsetof(struct log_in, level), 0, 0, 0},
    };
    struct log_in in = {NULL};
    if (!map)
        return;
    rb_conf_parse(map, "log", fields, RB_ARRAY_LEN(fields), NULL, &in, l->e);
    if (in.level) {
        int level = rb_log_level_parse(in.level);
        if (level < 0)
            rb_errors_at(l->e, rb_node_get(map, "level"),
                         "key \"level\": unknown log level \"%s\"; use debug, info, warn or error",
                         in.level);
        else
            l->cfg->log_level = level;
    }
    rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
}

struct plugin_in {
    char *name, *path;
    int enabled;
};

/* Plugins shipped under another name before: the old name, then the new one. */
static const char *const renamed_plugins[][2] = {
    {"inbox", "staff_inbox"}, /* it only texts the duty officer; the inbox is the staff API */
};

/* The new name of a shipped plugin once called name, or NULL. Borrowed (static). */
static const char *plugin_renamed(const char *name)
{
    for (size_t i = 0; name && i < RB_ARRAY_LEN(renamed_plugins); i++)
        if (strcmp(renamed_plugins[i][0], name) == 0)
            return renamed_plugins[i][1];
    return NULL;
}

static void parse_plugins(struct loader *l, const struct rb_node *seq)
{
    static const struct rb_conf_field fields[] = {
        {"name", RB_CONF_STRING, offsetof(struct plugin_in, name), RB_CONF_REQUIRED, 0, 0},
        {"path", RB_CONF_STRING, offsetof(struct plugin_in, path), 0, 0, 0},
        {"enabled", RB_CONF_BOOL, offsetof(struct plugin_in, enabled), 0, 0, 0},
    };
    static const char *const extra[] = {"config", NULL};
    struct rb_config *cfg = l->cfg;
    if (!seq)
        return;
    if (seq->type != RB_NODE_SEQ) {
        rb_errors_at(l->e, seq, "key \"plugins\": expected a list of plugins, got %s",
                     rb_node_kind(seq));
        return;
    }
    cfg->plugins = rb_calloc(seq->n, sizeof(*cfg->plugins));
    for (size_t i = 0; i < seq->n; i++) {
        const struct rb_node *map = seq->items[i];
        if (map->type != RB_NODE_MAP) {
            rb_errors_at(l->e, map,
                         "key \"plugins\": each entry must be a map with at least a name, got %s",
                         rb_node_kind(map));
            continue;
        }
        struct plugin_in in = {NULL, NULL, 1};
        size_t before = l->e->n;
        rb_conf_parse(map, "a plugins entry", fields, RB_ARRAY_LEN(fields), extra, &in, l->e);
        const struct rb_node *name_node = rb_node_get(map, "name");
        if (in.name)
            check_id(l, name_node, "name", in.name);
        const char *now = in.path ? NULL : plugin_renamed(in.name);
        if (now)
            rb_errors_at(l->e, name_node,
                         "key \"name\": plugin \"%s\" is now called \"%s\": write \"name: %s\" "
                         "here and \"plugin: %s\" in the department files that name \"%s\"",
                         in.name, now, now, now, in.name);
        for (size_t j = 0; in.name && j < cfg->n_plugins; j++)
            if (strcmp(cfg->plugins[j].name, in.name) == 0)
                rb_errors_at(l->e, name_node,
                             "key \"name\": plugin \"%s\" is listed twice (first at line %d, "
                             "column %d)",
                             in.name, cfg->plugins[j].line, cfg->plugins[j].col);
        const struct rb_node *block = config_block(l, map);
        if (l->e->n != before) {
            rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
            continue;
        }
        struct rb_plugin_conf *pc = &cfg->plugins[cfg->n_plugins++];
        pc->name = in.name;
        pc->path = in.path ? rb_path_join(cfg->base_dir, in.path) : NULL;
        free(in.path);
        pc->enabled = in.enabled;
        pc->config = block;
        pc->file = map->file;
        pc->line = map->line;
        pc->col = map->col;
    }
}

/* ---- included files ---------------------------------------------------------------------- */

typedef void (*file_fn)(struct loader *l, const struct rb_doc *doc);

/* Loads one file named by key (at node at) and hands it to fn. */
static void load_one(struct loader *l, const struct rb_node *at, const char *key,
                     const char *path, file_fn fn)
{
    struct rb_doc *doc = rb_doc_load_from(path, at, key, l->e);
    if (!doc)
        return;
    keep_doc(l->cfg, doc);
    fn(l, doc);
}

struct glob_ctx {
    struct loader *l;
    const char *key;
    file_fn fn;
};

static void glob_one(const char *path, const struct rb_node *at, void *arg)
{
    const struct glob_ctx *g = arg;
    load_one(g->l, at, g->key, path, g->fn);
}

/* key: "pattern" or a list of patterns, relative to rabta.yaml's directory. Every file that
 * matches is loaded, in name order. A pattern without wildcards names one file. */
static void load_glob(struct loader *l, const struct rb_node *parent, const char *key, file_fn fn)
{
    struct glob_ctx g = {l, key, fn};
    char *example = rb_sprintf("%s/*.yaml", key);
    rb_conf_glob(rb_node_get(parent, key), key, example, l->include_dir, glob_one, &g, l->e);
    free(example);
}

/* The document's root must be a map: one department or service per file. */
static const struct rb_node *root_map(struct loader *l, const struct rb_doc *doc,
                                      const char *what, const char *keys)
{
    if (!doc->root) {
        rb_errors_add(l->e, "%s:1:1: the file is empty; expected %s (%s)", doc->file, what, keys);
        return NULL;
    }
    if (doc->root->type != RB_NODE_MAP) {
        rb_errors_at(l->e, doc->root, "expected %s (a map with %s), got %s", what, keys,
                     rb_node_kind(doc->root));
        return NULL;
    }
    return doc->root;
}

struct department_in {
    char *id, *plugin, *duty_phone, *email;
};

static int valid_email(const char *s)
{
    const char *at = strchr(s, '@');
    return at && at != s && !strchr(at + 1, '@') && strchr(at + 1, '.') && !strchr(s, ' ') &&
           at[1] != '.' && s[strlen(s) - 1] != '.';
}

/* A phone written by a person in file f: normalised to E.164 in place, or an error at node n
 * that says whose number it is (who: "the duty officer's"). */
static void check_phone(struct loader *l, const struct rb_node *n, const char *key, char **phone,
                        const char *who)
{
    char e164[RB_PHONE_MAX];
    const char *why = NULL;
    if (!*phone)
        return;
    if (rb_phone_normalize(*phone, e164, &why) != RB_OK) {
        rb_errors_at(l->e, n, "key \"%s\": \"%s\" is not a phone number (it %s); write %s "
                              "number such as +92 42 99200000 or 0300 1234567",
                     key, *phone, why ? why : "is malformed", who);
    } else if (strcmp(*phone, e164) != 0) { /* kept as E.164 */
        free(*phone);
        *phone = rb_strdup(e164);
    }
}

struct person_in {
    char *name, *phone, *email;
};

/* head: {name, phone, email}: someone escalations can reach (docs/config.md). */
static void parse_head(struct loader *l, const struct rb_node *map, struct rb_person *out)
{
    static const struct rb_conf_field fields[] = {
        {"name", RB_CONF_STRING, offsetof(struct person_in, name), 0, 0, 0},
        {"phone", RB_CONF_STRING, offsetof(struct person_in, phone), 0, 0, 0},
        {"email", RB_CONF_STRING, offsetof(struct person_in, email), 0, 0, 0},
    };
    const struct rb_node *h = rb_node_get(map, "head");
    if (!h)
        return;
    if (h->type != RB_NODE_MAP) {
        rb_errors_at(l->e, h, "key \"head\": expected a map such as {name: ..., phone: ..., "
                              "email: ...}, got %s", rb_node_kind(h));
        return;
    }
    struct person_in in = {NULL, NULL, NULL};
    size_t before = l->e->n;
    rb_conf_parse(h, "a department's head", fields, RB_ARRAY_LEN(fields), NULL, &in, l->e);
    check_phone(l, rb_node_get(h, "phone"), "phone", &in.phone, "the head's");
    if (in.email && !valid_email(in.email))
        rb_errors_at(l->e, rb_node_get(h, "email"),
                     "key \"email\": \"%s\" is not an e-mail address such as "
                     "head@punjab.gov.pk", in.email);
    if (l->e->n == before && !in.phone && !in.email)
        rb_errors_at(l->e, h, "key \"head\": the department head has neither a phone nor an "
                              "e-mail, so no escalation could reach them; give phone or email");
    if (l->e->n != before) {
        rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
        return;
    }
    *out = (struct rb_person){in.name, in.phone, in.email};
}

static void person_free(struct rb_person *p)
{
    free(p->name);
    free(p->phone);
    free(p->email);
}

static void on_department(struct loader *l, const struct rb_doc *doc)
{
    static const struct rb_conf_field fields[] = {
        {"id", RB_CONF_STRING, offsetof(struct department_in, id), RB_CONF_REQUIRED, 0, 0},
        {"plugin", RB_CONF_STRING, offsetof(struct department_in, plugin), RB_CONF_REQUIRED, 0,
         0},
        {"duty_phone", RB_CONF_STRING, offsetof(struct department_in, duty_phone), 0, 0, 0},
        {"email", RB_CONF_STRING, offsetof(struct department_in, email), 0, 0, 0},
    };
    static const char *const extra[] = {"name", "config", "head", NULL};
    struct rb_config *cfg = l->cfg;
    const struct rb_node *map = root_map(l, doc, "a department", "id, name, plugin");
    if (!map)
        return;
    size_t before = l->e->n;
    struct department_in in = {NULL, NULL, NULL, NULL};
    struct rb_i18n name = {NULL, NULL};
    rb_conf_parse(map, "a department", fields, RB_ARRAY_LEN(fields), extra, &in, l->e);
    parse_i18n(l, map, &name);
    const struct rb_node *block = config_block(l, map);
    const struct rb_node *id_node = rb_node_get(map, "id");
    if (in.id && check_id(l, id_node, "id", in.id)) {
        const struct rb_department *prev = rb_config_department(cfg, in.id);
        if (prev)
            rb_errors_at(l->e, id_node,
                         "key \"id\": department \"%s\" is already defined at %s:%d:%d", in.id,
                         prev->file, prev->line, prev->col);
    }
    if (in.plugin) /* plugin names follow the id rule */
        check_id(l, rb_node_get(map, "plugin"), "plugin", in.plugin);
    check_phone(l, rb_node_get(map, "duty_phone"), "duty_phone", &in.duty_phone,
                "the duty officer's");
    struct rb_person head = {NULL, NULL, NULL};
    parse_head(l, map, &head);
    if (in.email && !valid_email(in.email))
        rb_errors_at(l->e, rb_node_get(map, "email"),
                     "key \"email\": \"%s\" is not an e-mail address such as "
                     "complaints@punjab.gov.pk",
                     in.email);
    if (l->e->n != before) {
        rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
        i18n_free(&name);
        person_free(&head);
        return;
    }
    cfg->departments =
        rb_realloc(cfg->departments, (cfg->n_departments + 1) * sizeof(*cfg->departments));
    l->dep_maps = rb_realloc(l->dep_maps, (cfg->n_departments + 1) * sizeof(*l->dep_maps));
    l->dep_maps[cfg->n_departments] = map;
    cfg->departments[cfg->n_departments++] = (struct rb_department){
        .id = in.id,
        .name = name,
        .plugin = in.plugin,
        .duty_phone = in.duty_phone,
        .email = in.email,
        .head = head,
        .plugin_config = block,
        .file = doc->file,
        .line = map->line,
        .col = map->col,
    };
}

struct service_in {
    char *id, *department;
    int feedback;
};

static void on_service(struct loader *l, const struct rb_doc *doc)
{
    static const struct rb_conf_field fields[] = {
        {"id", RB_CONF_STRING, offsetof(struct service_in, id), RB_CONF_REQUIRED, 0, 0},
        {"department", RB_CONF_STRING, offsetof(struct service_in, department),
         RB_CONF_REQUIRED, 0, 0},
        {"feedback", RB_CONF_BOOL, offsetof(struct service_in, feedback), 0, 0, 0},
    };
    static const char *const extra[] = {"name", "questions", NULL};
    struct rb_config *cfg = l->cfg;
    const struct rb_node *map = root_map(l, doc, "a service", "id, name, department");
    if (!map)
        return;
    size_t before = l->e->n;
    struct service_in in = {NULL, NULL, 0};
    struct rb_i18n name = {NULL, NULL};
    rb_conf_parse(map, "a service", fields, RB_ARRAY_LEN(fields), extra, &in, l->e);
    parse_i18n(l, map, &name);
    const struct rb_node *questions = rb_node_get(map, "questions");
    if (questions && questions->type != RB_NODE_SEQ)
        rb_errors_at(l->e, questions, "key \"questions\": expected a list of questions");
    const struct rb_node *id_node = rb_node_get(map, "id");
    if (in.id && check_id(l, id_node, "id", in.id)) {
        const struct rb_service *prev = rb_config_service(cfg, in.id);
        if (prev)
            rb_errors_at(l->e, id_node,
                         "key \"id\": service \"%s\" is already defined at %s:%d:%d", in.id,
                         prev->file, prev->line, prev->col);
    }
    if (l->e->n != before) {
        rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
        i18n_free(&name);
        return;
    }
    cfg->services = rb_realloc(cfg->services, (cfg->n_services + 1) * sizeof(*cfg->services));
    l->svc_maps = rb_realloc(l->svc_maps, (cfg->n_services + 1) * sizeof(*l->svc_maps));
    l->svc_maps[cfg->n_services] = map;
    cfg->services[cfg->n_services++] = (struct rb_service){
        .id = in.id,
        .name = name,
        .department = in.department,
        .feedback = in.feedback,
        .questions = questions,
        .file = doc->file,
        .line = map->line,
        .col = map->col,
    };
}

struct district_in {
    char *id, *division;
};

static void on_districts(struct loader *l, const struct rb_doc *doc)
{
    static const struct rb_conf_field fields[] = {
        {"id", RB_CONF_STRING, offsetof(struct district_in, id), RB_CONF_REQUIRED, 0, 0},
        {"division", RB_CONF_STRING, offsetof(struct district_in, division), 0, 0, 0},
    };
    static const char *const extra[] = {"name", NULL};
    struct rb_config *cfg = l->cfg;
    const struct rb_node *seq = doc->root;
    if (!seq) {
        rb_errors_add(l->e, "%s:1:1: the file is empty; expected a list of districts (id, name, "
                            "division)",
                      doc->file);
        return;
    }
    if (seq->type != RB_NODE_SEQ) {
        rb_errors_at(l->e, seq, "expected a list of districts (each with id, name, division), "
                                "got %s",
                     rb_node_kind(seq));
        return;
    }
    cfg->districts = rb_calloc(seq->n, sizeof(*cfg->districts));
    int *lines = rb_calloc(seq->n, sizeof(*lines) * 2); /* where each kept district was */
    for (size_t i = 0; i < seq->n; i++) {
        const struct rb_node *map = seq->items[i];
        if (map->type != RB_NODE_MAP) {
            rb_errors_at(l->e, map, "expected a district (a map with id, name, division), got %s",
                         rb_node_kind(map));
            continue;
        }
        size_t before = l->e->n;
        struct district_in in = {NULL, NULL};
        struct rb_i18n name = {NULL, NULL};
        rb_conf_parse(map, "a district", fields, RB_ARRAY_LEN(fields), extra, &in, l->e);
        parse_i18n(l, map, &name);
        const struct rb_node *id_node = rb_node_get(map, "id");
        if (in.id && check_id(l, id_node, "id", in.id)) {
            for (size_t j = 0; j < cfg->n_districts; j++)
                if (strcmp(cfg->districts[j].id, in.id) == 0)
                    rb_errors_at(l->e, id_node,
                                 "key \"id\": district \"%s\" is already defined at %s:%d:%d",
                                 in.id, doc->file, lines[2 * j], lines[2 * j + 1]);
        }
        if (l->e->n != before) {
            rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
            i18n_free(&name);
            continue;
        }
        lines[2 * cfg->n_districts] = map->line;
        lines[2 * cfg->n_districts + 1] = map->col;
        cfg->districts[cfg->n_districts++] =
            (struct rb_district){.id = in.id, .name = name, .division = in.division};
    }
    free(lines);
}

/* ---- cross-references -------------------------------------------------------------------- */

/* Appends up to KNOWN_MAX ids to a new string "a, b, c, ..."; caller frees. */
static char *known_list(const char *(*id_at)(const struct rb_config *, size_t),
                        const struct rb_config *cfg, size_t n)
{
    char *s = rb_strdup("");
    for (size_t i = 0; i < n && i <= KNOWN_MAX; i++) {
        char *t = i == KNOWN_MAX ? rb_sprintf("%s, ...", s)
                                 : rb_sprintf("%s%s%s", s, i ? ", " : "", id_at(cfg, i));
        free(s);
        s = t;
    }
    return s;
}

static const char *department_id_at(const struct rb_config *cfg, size_t i)
{
    return cfg->departments[i].id;
}

static const char *plugin_name_at(const struct rb_config *cfg, size_t i)
{
    return cfg->plugins[i].name;
}

static void check_references(struct loader *l, const struct rb_node *root)
{
    struct rb_config *cfg = l->cfg;
    /* Only when the departments loaded cleanly: a broken bureau file is reported already. */
    if (l->e->n == l->errors_before && !rb_config_department(cfg, cfg->triage_department)) {
        const struct rb_node *at = rb_node_get(root, "triage_department");
        char *known = known_list(department_id_at, cfg, cfg->n_departments);
        rb_errors_at(l->e, at ? at : root,
                     "key \"triage_department\": no department \"%s\" to receive the cases no "
                     "rule can route (known: %s)",
                     cfg->triage_department, known[0] ? known : "none");
        free(known);
    }
    for (size_t i = 0; i < cfg->n_departments; i++) {
        const struct rb_department *d = &cfg->departments[i];
        const struct rb_plugin_conf *pc = rb_config_plugin(cfg, d->plugin);
        const struct rb_node *at = rb_node_get(l->dep_maps[i], "plugin");
        const char *now = pc ? NULL : plugin_renamed(d->plugin);
        if (now) {
            rb_errors_at(l->e, at,
                         "key \"plugin\": department \"%s\" uses plugin \"%s\", which is now "
                         "called \"%s\": write \"plugin: %s\" (and list \"%s\" under plugins: "
                         "in %s)",
                         d->id, d->plugin, now, now, now, cfg->file);
        } else if (!pc) {
            char *known = known_list(plugin_name_at, cfg, cfg->n_plugins);
            rb_errors_at(l->e, at,
                         "key \"plugin\": department \"%s\" uses plugin \"%s\", which is not in "
                         "the plugins list of %s (listed: %s)",
                         d->id, d->plugin, cfg->file, known[0] ? known : "none");
            free(known);
        } else if (!pc->enabled) {
            rb_errors_at(l->e, at,
                         "key \"plugin\": department \"%s\" uses plugin \"%s\", which is disabled "
                         "in %s:%d:%d",
                         d->id, d->plugin, pc->file, pc->line, pc->col);
        }
    }
    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct rb_service *s = &cfg->services[i];
        if (rb_config_department(cfg, s->department))
            continue;
        char *known = known_list(department_id_at, cfg, cfg->n_departments);
        rb_errors_at(l->e, rb_node_get(l->svc_maps[i], "department"),
                     "key \"department\": no department \"%s\" (known: %s)", s->department,
                     known[0] ? known : "none");
        free(known);
    }
}

/* ---- the whole ---------------------------------------------------------------------------- */

struct top_in {
    char *state_dir, *lua_dir, *migrations_dir, *plugin_dir, *districts, *triage, *sla;
    char *plugin_migrations_dir;
    char *outreach;
};

static const struct rb_node *section(struct loader *l, const struct rb_node *root,
                                     const char *key, enum rb_node_type type)
{
    const struct rb_node *n = rb_node_get(root, key);
    if (!n || rb_node_is_null(n))
        return NULL;
    if (n->type != type) {
        rb_errors_at(l->e, n, "key \"%s\": expected %s, got %s", key,
                     type == RB_NODE_MAP ? "a map of settings" : "a list", rb_node_kind(n));
        return NULL;
    }
    return n;
}

static void set_dir(struct rb_config *cfg, char **slot, const char *value, const char *dflt)
{
    free(*slot);
    *slot = rb_path_join(cfg->base_dir, value ? value : dflt);
}

static void load_all(struct loader *l, const struct rb_node *root)
{
    static const struct rb_conf_field fields[] = {
        {"state_dir", RB_CONF_STRING, offsetof(struct top_in, state_dir), 0, 0, 0},
        {"lua_dir", RB_CONF_STRING, offsetof(struct top_in, lua_dir), 0, 0, 0},
        {"migrations_dir", RB_CONF_STRING, offsetof(struct top_in, migrations_dir), 0, 0, 0},
        {"plugin_dir", RB_CONF_STRING, offsetof(struct top_in, plugin_dir), 0, 0, 0},
        {"districts", RB_CONF_STRING, offsetof(struct top_in, districts), 0, 0, 0},
        {"triage_department", RB_CONF_STRING, offsetof(struct top_in, triage), 0, 0, 0},
        {"sla", RB_CONF_STRING, offsetof(struct top_in, sla), 0, 0, 0},
        {"plugin_migrations_dir", RB_CONF_STRING, offsetof(struct top_in, plugin_migrations_dir),
         0, 0, 0},
        {"outreach", RB_CONF_STRING, offsetof(struct top_in, outreach), 0, 0, 0},
    };
    static const char *const extra[] = {"server", "database", "log", "jobs", "messages", "plugins",
                                        "departments", "services", NULL};
    struct rb_config *cfg = l->cfg;
    struct top_in in = {0};
    rb_conf_parse(root, "the top level", fields, RB_ARRAY_LEN(fields), extra, &in, l->e);
    set_dir(cfg, &cfg->state_dir, in.state_dir, "../var");
    set_dir(cfg, &cfg->lua_dir, in.lua_dir, "../lua");
    set_dir(cfg, &cfg->migrations_dir, in.migrations_dir, "../migrations");
    if (in.plugin_migrations_dir && in.plugin_migrations_dir[0])
        cfg->plugin_migrations_dir = rb_path_join(cfg->base_dir, in.plugin_migrations_dir);
    else
        cfg->plugin_migrations_dir = rb_path_join(cfg->migrations_dir, "../plugins");
    if (in.plugin_dir && in.plugin_dir[0])
        cfg->plugin_dir = rb_path_join(cfg->base_dir, in.plugin_dir);
    if (in.sla && in.sla[0])
        cfg->sla_file = rb_path_join(cfg->base_dir, in.sla);
    if (in.outreach && in.outreach[0])
        cfg->outreach_file = rb_path_join(cfg->base_dir, in.outreach);

    parse_server(l, section(l, root, "server", RB_NODE_MAP));
    parse_database(l, section(l, root, "database", RB_NODE_MAP));
    parse_log(l, section(l, root, "log", RB_NODE_MAP));
    parse_jobs(l, section(l, root, "jobs", RB_NODE_MAP));
    parse_messages(l, section(l, root, "messages", RB_NODE_MAP));
    parse_plugins(l, section(l, root, "plugins", RB_NODE_SEQ));

    const struct rb_node *deps = rb_node_get(root, "departments");
    if (!deps || rb_node_is_null(deps))
        rb_errors_at(l->e, root,
                     "missing required key \"departments\" in the top level (e.g. "
                     "departments: departments/*.yaml)");
    load_glob(l, root, "departments", on_department);
    load_glob(l, root, "services", on_service);
    if (in.districts && in.districts[0]) {
        char *path = rb_path_join(l->include_dir, in.districts);
        load_one(l, rb_node_get(root, "districts"), "districts", path, on_districts);
        free(path);
    }
    if (in.triage && in.triage[0]) {
        free(cfg->triage_department);
        cfg->triage_department = in.triage;
        in.triage = NULL;
    }
    check_references(l, root);
    rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
}

struct rb_config *rb_config_load(const char *path, struct rb_errors *errs)
{
    size_t before = errs->n;
    struct rb_config *cfg = rb_calloc(1, sizeof(*cfg));
    cfg->file = rb_strdup(path);
    cfg->base_dir = abs_dir_of(path);
    cfg->server.addr = rb_strdup("127.0.0.1");
    cfg->server.port = 8080;
    cfg->server.max_body = 1024 * 1024;
    cfg->server.shutdown_grace = 10;
    cfg->server.request_timeout = 30;
    rb_server_limits_init(&cfg->server.limits);
    cfg->database.pool_size = 4;
    cfg->database.connect_timeout = 5;
    cfg->database.max_queue = 10000;
    cfg->log_level = RB_LOG_INFO;
    cfg->triage_department = rb_strdup("bureau");
    cfg->jobs.concurrency = 256;
    cfg->jobs.batch = 256;
    cfg->jobs.lease = 300;
    cfg->jobs.backoff_base = 10;
    cfg->jobs.backoff_max = 3600;

    struct loader l = {.cfg = cfg, .e = errs, .include_dir = dir_of(path), .errors_before = before};
    struct rb_doc *doc = rb_doc_load(path, errs);
    if (doc) {
        keep_doc(cfg, doc);
        if (!doc->root)
            rb_errors_add(errs, "%s:1:1: the file is empty; expected the server's settings "
                                "(server, database, departments, services, plugins, ...)",
                          path);
        else if (doc->root->type != RB_NODE_MAP)
            rb_errors_at(errs, doc->root,
                         "expected a map of settings (server, database, departments, ...) at "
                         "the top of the file, got %s",
                         rb_node_kind(doc->root));
        else
            load_all(&l, doc->root);
    }
    free(l.include_dir);
    free(l.dep_maps);
    free(l.svc_maps);
    if (errs->n != before) {
        rb_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void rb_config_free(struct rb_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_plugins; i++) {
        free(cfg->plugins[i].name);
        free(cfg->plugins[i].path);
    }
    free(cfg->plugins);
    for (size_t i = 0; i < cfg->n_departments; i++) {
        struct rb_department *d = &cfg->departments[i];
        free(d->id);
        i18n_free(&d->name);
        free(d->plugin);
        free(d->duty_phone);
        free(d->email);
        person_free(&d->head);
    }
    free(cfg->departments);
    for (size_t i = 0; i < cfg->n_services; i++) {
        free(cfg->services[i].id);
        i18n_free(&cfg->services[i].name);
        free(cfg->services[i].department);
    }
    free(cfg->services);
    for (size_t i = 0; i < cfg->n_districts; i++) {
        free(cfg->districts[i].id);
        i18n_free(&cfg->districts[i].name);
        free(cfg->districts[i].division);
    }
    free(cfg->districts);
    for (size_t i = 0; i < cfg->n_docs; i++)
        rb_doc_free(cfg->docs[i]);
    free(cfg->docs);
    free(cfg->file);
    free(cfg->base_dir);
    free(cfg->server.addr);
    rb_server_limits_free(&cfg->server.limits);
    free(cfg->triage_department);
    free(cfg->messages.quiet_hours);
    free(cfg->messages.timezone);
    free(cfg->sla_file);
    free(cfg->outreach_file);
    free(cfg->database.url);
    free(cfg->database.pg_bindir);
    free(cfg->state_dir);
    free(cfg->lua_dir);
    free(cfg->migrations_dir);
    free(cfg->plugin_migrations_dir);
    free(cfg->plugin_dir);
    free(cfg);
}

/* ---- lookups ----------------------------------------------------------------------------- */

const struct rb_department *rb_config_department(const struct rb_config *cfg, const char *id)
{
    for (size_t i = 0; cfg && id && i < cfg->n_departments; i++)
        if (strcmp(cfg->departments[i].id, id) == 0)
            return &cfg->departments[i];
    return NULL;
}

const struct rb_service *rb_config_service(const struct rb_config *cfg, const char *id)
{
    for (size_t i = 0; cfg && id && i < cfg->n_services; i++)
        if (strcmp(cfg->services[i].id, id) == 0)
            return &cfg->services[i];
    return NULL;
}

const struct rb_district *rb_config_district(const struct rb_config *cfg, const char *id)
{
    for (size_t i = 0; cfg && id && i < cfg->n_districts; i++)
        if (strcmp(cfg->districts[i].id, id) == 0)
            return &cfg->districts[i];
    return NULL;
}

const struct rb_plugin_conf *rb_config_plugin(const struct rb_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_plugins; i++)
        if (strcmp(cfg->plugins[i].name, name) == 0)
            return &cfg->plugins[i];
    return NULL;
}
