/* The server block's limits (see server_limits.h). */
#include "config/server_limits.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"

const char *const rb_server_limit_keys[] = {
    "max_header_size", "max_headers", "header_timeout", "body_timeout", "keepalive_timeout",
    "max_connections", "connection_reserve", "max_pending_bytes", "trusted_proxies",
    "metrics_allow", "metrics_token_env", "routes", NULL};

/* The routes that anyone may call without signing in and that write or guess: the defaults. */
static const struct {
    const char *route;
    size_t max_body;
    double per_minute;
    int burst, anonymous_only;
} default_routes[] = {
    {"POST /api/v1/cases", 0, 6, 10, 1},              /* anonymous submissions */
    {"POST /api/v1/register", 4096, 10, 5, 0},        /* asks for an SMS code */
    {"POST /api/v1/verify", 4096, 10, 5, 0},          /* guesses an SMS code */
    {"GET /api/v1/cases/:tracking", 0, 30, 20, 0},    /* guesses a phone's last digits */
    {"POST /api/v1/staff/login", 4096, 10, 5, 0},     /* guesses a password */
};

void rb_server_limits_init(struct rb_server_limits *sl)
{
    memset(sl, 0, sizeof(*sl));
    sl->max_header_size = 16 * 1024;
    sl->max_headers = 100;
    sl->header_timeout = 10;
    sl->body_timeout = 60;
    sl->keepalive_timeout = 30;
    sl->max_connections = 900;
    sl->connection_reserve = 16;
    sl->max_pending_bytes = 256u * 1024 * 1024;
    static const char *const local[] = {"127.0.0.0/8", "::1"};
    sl->metrics_allow = rb_calloc(RB_ARRAY_LEN(local), sizeof(struct rb_cidr));
    for (size_t i = 0; i < RB_ARRAY_LEN(local); i++)
        rb_cidr_parse(local[i], &sl->metrics_allow[sl->n_metrics_allow++]);
    sl->routes = rb_calloc(RB_ARRAY_LEN(default_routes), sizeof(*sl->routes));
    for (size_t i = 0; i < RB_ARRAY_LEN(default_routes); i++)
        sl->routes[sl->n_routes++] = (struct rb_route_conf){
            rb_strdup(default_routes[i].route), default_routes[i].max_body,
            default_routes[i].per_minute / 60.0, default_routes[i].burst,
            default_routes[i].anonymous_only};
}

void rb_server_limits_free(struct rb_server_limits *sl)
{
    free(sl->trusted_proxies);
    free(sl->metrics_allow);
    free(sl->metrics_token_env);
    for (size_t i = 0; i < sl->n_routes; i++)
        free(sl->routes[i].route);
    free(sl->routes);
    memset(sl, 0, sizeof(*sl));
}

/* A list of address blocks; replaces *out. */
static void parse_cidrs(const struct rb_node *seq, const char *key, struct rb_cidr **out,
                        size_t *n, struct rb_errors *e)
{
    if (!seq || rb_node_is_null(seq))
        return;
    if (seq->type != RB_NODE_SEQ) {
        rb_errors_at(e, seq, "key \"%s\": expected a list of addresses or blocks such as "
                             "10.0.0.0/8, got %s", key, rb_node_kind(seq));
        return;
    }
    struct rb_cidr *list = seq->n ? rb_calloc(seq->n, sizeof(*list)) : NULL;
    for (size_t i = 0; i < seq->n; i++) {
        const struct rb_node *it = seq->items[i];
        if (it->type != RB_NODE_SCALAR || rb_cidr_parse(it->scalar, &list[i]) != RB_OK)
            rb_errors_at(e, it, "key \"%s\": \"%s\" is not an address or block such as "
                                "10.0.0.0/8 or fd00::/8", key,
                         it->type == RB_NODE_SCALAR ? it->scalar : rb_node_kind(it));
    }
    free(*out);
    *out = list;
    *n = seq->n;
}

/* "10/min", "2/s", "100/h", "off" -> requests a second (0 for off). */
static int parse_rate(const struct rb_node *n, struct rb_errors *e, double *out)
{
    if (n->type == RB_NODE_SCALAR && strcmp(n->scalar, "off") == 0) {
        *out = 0;
        return RB_OK;
    }
    char *end = NULL;
    double v = n->type == RB_NODE_SCALAR ? strtod(n->scalar, &end) : -1;
    double unit = 0;
    if (end && *end == '/') {
        if (strcmp(end, "/s") == 0)
            unit = 1;
        else if (strcmp(end, "/min") == 0)
            unit = 60;
        else if (strcmp(end, "/h") == 0)
            unit = 3600;
    }
    if (!end || end == n->scalar || unit == 0 || !(v > 0) || v > 1e6) {
        rb_errors_at(e, n, "key \"rate\": expected requests per time such as \"10/min\", "
                           "\"2/s\" or \"100/h\", or \"off\"");
        return RB_EINVAL;
    }
    *out = v / unit;
    return RB_OK;
}

struct route_in {
    char *rate;
    long long burst;
    size_t max_body;
    int anonymous_only;
};

static int valid_route_key(const char *k)
{
    static const char *const methods[] = {"GET ", "POST ", "PUT ", "DELETE ", "PATCH "};
    for (size_t i = 0; i < RB_ARRAY_LEN(methods); i++)
        if (strncmp(k, methods[i], strlen(methods[i])) == 0)
            return k[strlen(methods[i])] == '/' && !strchr(k + strlen(methods[i]), ' ');
    return 0;
}

static void parse_route(struct rb_server_limits *sl, const struct rb_node *key,
                        const struct rb_node *map, struct rb_errors *e)
{
    static const struct rb_conf_field fields[] = {
        {"rate", RB_CONF_STRING, offsetof(struct route_in, rate), 0, 0, 0},
        {"burst", RB_CONF_INT, offsetof(struct route_in, burst), 0, 1, 100000},
        {"max_body", RB_CONF_SIZE, offsetof(struct route_in, max_body), 0, 1, 1ll << 30},
        {"anonymous_only", RB_CONF_BOOL, offsetof(struct route_in, anonymous_only), 0, 0, 0},
    };
    if (!valid_route_key(key->scalar)) {
        rb_errors_at(e, key, "key \"routes\": \"%s\" is not a method and route such as "
                             "\"POST /api/v1/cases\"", key->scalar);
        return;
    }
    struct rb_route_conf *rc = NULL;
    for (size_t i = 0; i < sl->n_routes; i++)
        if (strcmp(sl->routes[i].route, key->scalar) == 0)
            rc = &sl->routes[i];
    if (!rc) {
        sl->routes = rb_realloc(sl->routes, (sl->n_routes + 1) * sizeof(*sl->routes));
        rc = &sl->routes[sl->n_routes++];
        *rc = (struct rb_route_conf){rb_strdup(key->scalar), 0, 0, 1, 0};
    }
    struct route_in in = {NULL, rc->burst, rc->max_body, rc->anonymous_only};
    if (rb_conf_parse(map, "a routes entry", fields, RB_ARRAY_LEN(fields), NULL, &in, e) ==
        RB_OK) {
        const struct rb_node *rate = rb_node_get(map, "rate");
        if (rate && !rb_node_is_null(rate))
            parse_rate(rate, e, &rc->per_second);
        rc->burst = (int)in.burst;
        rc->max_body = in.max_body;
        rc->anonymous_only = in.anonymous_only;
    }
    rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
}

void rb_server_limits_parse(struct rb_server_limits *sl, const struct rb_node *map,
                            struct rb_errors *e)
{
    struct in {
        size_t max_header_size, max_pending_bytes;
        long long max_headers, max_connections, connection_reserve;
        double header_timeout, body_timeout, keepalive_timeout;
        char *metrics_token_env;
    };
    static const struct rb_conf_field fields[] = {
        {"max_header_size", RB_CONF_SIZE, offsetof(struct in, max_header_size), 0, 1024,
         1 << 20},
        {"max_headers", RB_CONF_INT, offsetof(struct in, max_headers), 0, 8, 10000},
        {"header_timeout", RB_CONF_DURATION, offsetof(struct in, header_timeout), 0, 0, 0},
        {"body_timeout", RB_CONF_DURATION, offsetof(struct in, body_timeout), 0, 0, 0},
        {"keepalive_timeout", RB_CONF_DURATION, offsetof(struct in, keepalive_timeout), 0, 0, 0},
        {"max_connections", RB_CONF_INT, offsetof(struct in, max_connections), 0, 1, 1000000},
        {"connection_reserve", RB_CONF_INT, offsetof(struct in, connection_reserve), 0, 0,
         100000},
        {"max_pending_bytes", RB_CONF_SIZE, offsetof(struct in, max_pending_bytes), 0, 1 << 20,
         1ll << 40},
        {"metrics_token_env", RB_CONF_STRING, offsetof(struct in, metrics_token_env), 0, 0, 0},
    };
    if (!map || map->type != RB_NODE_MAP)
        return;
    /* Unknown keys are the caller's to report (its own parse of the block does): every key
     * of the block is allowed here. */
    const char **extra = rb_calloc(map->n + 1, sizeof(char *));
    for (size_t i = 0; map->type == RB_NODE_MAP && i < map->n; i++)
        extra[i] = map->keys[i]->scalar;
    struct in in = {sl->max_header_size, sl->max_pending_bytes, (long long)sl->max_headers,
                    sl->max_connections, sl->connection_reserve, sl->header_timeout,
                    sl->body_timeout, sl->keepalive_timeout, NULL};
    rb_conf_parse(map, "server", fields, RB_ARRAY_LEN(fields), extra, &in, e);
    free(extra);
    static const char *const durations[] = {"header_timeout", "body_timeout", "keepalive_timeout"};
    const double *dv[] = {&in.header_timeout, &in.body_timeout, &in.keepalive_timeout};
    for (size_t i = 0; i < RB_ARRAY_LEN(durations); i++)
        if (*dv[i] <= 0)
            rb_errors_at(e, rb_node_get(map, durations[i]),
                         "key \"%s\": must be more than 0 seconds", durations[i]);
    sl->max_header_size = in.max_header_size;
    sl->max_pending_bytes = in.max_pending_bytes;
    sl->max_headers = (size_t)in.max_headers;
    sl->max_connections = in.max_connections;
    sl->connection_reserve = in.connection_reserve;
    sl->header_timeout = in.header_timeout;
    sl->body_timeout = in.body_timeout;
    sl->keepalive_timeout = in.keepalive_timeout;
    if (in.metrics_token_env) {
        free(sl->metrics_token_env);
        sl->metrics_token_env = in.metrics_token_env;
    }
    parse_cidrs(rb_node_get(map, "trusted_proxies"), "trusted_proxies", &sl->trusted_proxies,
                &sl->n_trusted_proxies, e);
    parse_cidrs(rb_node_get(map, "metrics_allow"), "metrics_allow", &sl->metrics_allow,
                &sl->n_metrics_allow, e);
    const struct rb_node *routes = rb_node_get(map, "routes");
    if (routes && !rb_node_is_null(routes)) {
        if (routes->type != RB_NODE_MAP) {
            rb_errors_at(e, routes, "key \"routes\": expected a map of \"METHOD /route\" to "
                                    "its limits, got %s", rb_node_kind(routes));
            return;
        }
        for (size_t i = 0; i < routes->n; i++) {
            if (routes->items[i]->type != RB_NODE_MAP) {
                rb_errors_at(e, routes->items[i], "key \"%s\": expected a map such as "
                             "{rate: 10/min, burst: 5}, got %s", routes->keys[i]->scalar,
                             rb_node_kind(routes->items[i]));
                continue;
            }
            parse_route(sl, routes->keys[i], routes->items[i], e);
        }
    }
}
