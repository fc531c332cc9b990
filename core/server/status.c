/* Core routes: GET /healthz (process and database), GET /metrics (Prometheus text) and
 * GET /api/v1/meta (version, schema version and what the configuration holds). */
#include "server/status.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/addr.h"
#include "base/metrics.h"
#include "db/db.h"
#include "net/http.h"
#include "server/plugin.h"
#include "server/server.h"
#include "config/config.h"

static void on_healthz(struct rb_http_req *req, void *arg)
{
    struct rb_server *srv = arg;
    if (!srv->db || !rb_db_available(srv->db)) {
        rb_http_reply_error(req, 503, "database_unavailable",
                            "the database is not reachable; rabtad keeps retrying");
        return;
    }
    /* Load balancers call this often: no allocation, no JSON library. */
    char body[160];
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"ok\",\"database\":\"ok\",\"version\":\"%s\","
                     "\"uptime_seconds\":%.3f}",
                     RB_VERSION, rb_now_mono() - srv->started_at);
    rb_http_reply(req, 200, "application/json", body, (size_t)n);
}

/* From an address of server.metrics_allow, or with "Authorization: Bearer <token>" where the
 * token is the value of the environment variable server.metrics_token_env names. */
static int metrics_allowed(const struct rb_server *srv, struct rb_http_req *req)
{
    const struct rb_server_limits *sl = &srv->cfg->server.limits;
    if (rb_cidr_match(sl->metrics_allow, sl->n_metrics_allow, rb_http_req_peer(req)))
        return 1;
    const char *token = sl->metrics_token_env ? getenv(sl->metrics_token_env) : NULL;
    const char *auth = rb_http_req_header(req, "Authorization");
    if (!token || !*token || !auth || strncmp(auth, "Bearer ", 7) != 0)
        return 0;
    size_t n = strlen(token);
    return strlen(auth + 7) == n && sodium_memcmp(auth + 7, token, n) == 0;
}

static void on_metrics(struct rb_http_req *req, void *arg)
{
    struct rb_server *srv = arg;
    if (!metrics_allowed(srv, req)) {
        rb_http_reply_error(req, 403, "forbidden",
                            "/metrics is served only to the addresses of server.metrics_allow "
                            "or with its token");
        return;
    }
    struct evbuffer *out = evbuffer_new();
    if (!out)
        rb_fatal("out of memory");
    rb_metrics_render(srv->metrics, out);
    size_t len = evbuffer_get_length(out);
    const char *text = (const char *)evbuffer_pullup(out, -1);
    rb_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "", len);
    evbuffer_free(out);
}

static void meta_done(PGresult *res, const char *err, void *arg)
{
    struct rb_http_req *req = arg;
    const struct rb_server *srv = &rb_server;
    if (err) {
        rb_http_reply_db_error(req, err, "the schema version could not be read");
        return;
    }
    const struct rb_config *cfg = srv->cfg;
    json_t *plugins = json_array();
    for (size_t i = 0; i < cfg->n_plugins; i++)
        if (cfg->plugins[i].enabled)
            json_array_append_new(plugins, json_string(cfg->plugins[i].name));
    json_t *body = json_pack(
        "{s:s, s:i, s:i, s:I, s:I, s:I, s:o}", "version", RB_VERSION, "plugin_abi",
        (int)RB_PLUGIN_ABI, "schema_version", atoi(PQgetvalue(res, 0, 0)), "departments",
        (json_int_t)cfg->n_departments, "services", (json_int_t)cfg->n_services, "districts",
        (json_int_t)cfg->n_districts, "plugins", plugins);
    rb_http_reply_json(req, 200, body);
}

static void on_meta(struct rb_http_req *req, void *arg)
{
    struct rb_server *srv = arg;
    static const char sql[] = "SELECT coalesce(max(version), 0) FROM rabta_migrations"
                              " WHERE owner = 'core'";
    if (rb_db_query(srv->db, sql, 0, NULL, meta_done, req) != RB_OK)
        rb_http_reply_error(req, 503, "overloaded", "too many requests are waiting for the "
                                                    "database; try again shortly");
}

static double gauge_db(void *arg, int which)
{
    struct rb_server *srv = arg;
    struct rb_db_stats st;
    if (!srv->db)
        return 0;
    rb_db_get_stats(srv->db, &st);
    switch (which) {
    case 0:
        return st.size;
    case 1:
        return st.connected;
    case 2:
        return st.busy;
    case 3:
        return (double)st.waiting;
    case 4:
        return (double)st.queries;
    case 5:
        return (double)st.failures;
    default:
        return (double)st.reconnects;
    }
}

static double g_size(void *a) { return gauge_db(a, 0); }
static double g_connected(void *a) { return gauge_db(a, 1); }
static double g_busy(void *a) { return gauge_db(a, 2); }
static double g_waiting(void *a) { return gauge_db(a, 3); }
static double g_queries(void *a) { return gauge_db(a, 4); }
static double g_failures(void *a) { return gauge_db(a, 5); }
static double g_reconnects(void *a) { return gauge_db(a, 6); }

static double g_connections(void *arg)
{
    const struct rb_server *srv = arg;
    return (double)rb_http_connections(srv->http);
}

static double g_pending_bytes(void *arg)
{
    const struct rb_server *srv = arg;
    return (double)rb_http_pending_bytes(srv->http);
}

static double g_uptime(void *arg)
{
    const struct rb_server *srv = arg;
    return rb_now_mono() - srv->started_at;
}

int rb_status_init(struct rb_server *srv)
{
    static const struct {
        const char *name, *help;
        rb_metrics_gauge_fn fn;
    } gauges[] = {
        {"rabta_db_pool_size", "Configured database connections.", g_size},
        {"rabta_db_pool_connected", "Database connections that are up.", g_connected},
        {"rabta_db_pool_busy", "Database connections running a query.", g_busy},
        {"rabta_db_pool_waiting", "Queries waiting for a database connection.", g_waiting},
        {"rabta_db_queries", "Queries run since start.", g_queries},
        {"rabta_db_query_failures", "Queries that failed since start.", g_failures},
        {"rabta_db_reconnects", "Database reconnections since start.", g_reconnects},
        {"rabta_uptime_seconds", "Seconds since rabtad started.", g_uptime},
        {"rabta_http_connections", "HTTP connections open.", g_connections},
        {"rabta_http_pending_bytes", "Bytes of bodies held by requests not yet answered.",
         g_pending_bytes},
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(gauges); i++)
        rb_metrics_gauge(srv->metrics, gauges[i].name, gauges[i].help, gauges[i].fn, srv);

    if (rb_http_route(srv->http, RB_HTTP_GET, "/healthz", on_healthz, srv) != RB_OK ||
        rb_http_route(srv->http, RB_HTTP_GET, "/metrics", on_metrics, srv) != RB_OK ||
        rb_http_route(srv->http, RB_HTTP_GET, "/api/v1/meta", on_meta, srv) != RB_OK)
        return RB_ERR;
    return RB_OK;
}
