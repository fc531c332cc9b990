/* The server block's limits on what clients may hold and how often they may ask (connections,
 * header sizes, deadlines, per-route body sizes and rates, trusted proxies, who may read
 * /metrics): parsed from rabta.yaml's `server:` with file:line:col errors. docs/config.md lists
 * every key with its default; docs/security.md says why each exists. */
#ifndef RB_SERVER_LIMITS_H
#define RB_SERVER_LIMITS_H

#include <stddef.h>

#include "base/addr.h"
#include "config/yaml_doc.h"

struct rb_route_conf {
    char *route;       /* owned; "METHOD /pattern" */
    size_t max_body;   /* 0: the server's */
    double per_second; /* 0: no rate limit */
    int burst;
    int anonymous_only;
};

struct rb_server_limits {
    size_t max_header_size, max_headers;
    double header_timeout, body_timeout, keepalive_timeout;
    long long max_connections, connection_reserve;
    size_t max_pending_bytes;
    struct rb_cidr *trusted_proxies; /* owned */
    size_t n_trusted_proxies;
    struct rb_cidr *metrics_allow; /* owned */
    size_t n_metrics_allow;
    char *metrics_token_env; /* owned; NULL: no token */
    struct rb_route_conf *routes; /* owned; the defaults with the configured ones merged in */
    size_t n_routes;
};

/* The keys this file reads from the server block (NULL-terminated). */
extern const char *const rb_server_limit_keys[];

/* Sets the defaults. */
void rb_server_limits_init(struct rb_server_limits *sl);
/* Reads the keys of rb_server_limit_keys from map (the server block; NULL: defaults stay).
 * Other keys are left alone: the caller reports the unknown ones. */
void rb_server_limits_parse(struct rb_server_limits *sl, const struct rb_node *map,
                            struct rb_errors *e);
void rb_server_limits_free(struct rb_server_limits *sl);

#endif
