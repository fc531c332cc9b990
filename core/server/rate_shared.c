/* Per-route client rates shared through PostgreSQL (see rate_shared.h). */
#include "server/rate_shared.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/addr.h"
#include "base/common.h"
#include "base/log.h"
#include "base/process.h"
#include "db/db.h"
#include "net/http.h"

#define SWEEP_SECONDS 60

static const char take_sql[] = "SELECT rabta_rate_take($1, $2::bytea, $3::float8, $4::int)";
static const char sweep_sql[] = "DELETE FROM rate_limit_schedules WHERE tat < now()";

struct rb_rate_shared {
    struct rb_server *srv; /* borrowed */
    struct event *sweep;   /* owned */
};

static void taken(PGresult *res, const char *err, void *arg)
{
    struct rb_http_req *req = arg;
    double wait = -1;
    if (err)
        rb_warn(rb_http_req_id(req), "the shared rate could not be counted: %s", err);
    else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        wait = strtod(PQgetvalue(res, 0, 0), NULL);
    rb_http_rate_done(req, wait);
}

static int take(struct rb_http_req *req, const char *rule, double per_second, int burst,
                const unsigned char *key, void *arg)
{
    struct rb_rate_shared *rs = arg;
    char client[3 + 2 * RB_ADDR_KEY_LEN], rate[32], bursts[16];
    int n = snprintf(client, sizeof(client), "\\x");
    for (int i = 0; i < RB_ADDR_KEY_LEN; i++)
        n += snprintf(client + n, sizeof(client) - (size_t)n, "%02x", key[i]);
    snprintf(rate, sizeof(rate), "%.17g", per_second);
    snprintf(bursts, sizeof(bursts), "%d", burst);
    const char *params[] = {rule, client, rate, bursts};
    return rb_db_query_prepared(rs->srv->db, take_sql, 4, params, taken, req);
}

static void swept(PGresult *res, const char *err, void *arg)
{
    (void)res;
    (void)arg;
    if (err)
        rb_warn("ratelimit", "sweeping the shared rate schedules failed: %s", err);
}

static void sweep(evutil_socket_t fd, short what, void *arg)
{
    struct rb_rate_shared *rs = arg;
    (void)fd;
    (void)what;
    rb_db_background(rs->srv->db, 1);
    if (rb_db_query(rs->srv->db, sweep_sql, 0, NULL, swept, rs) != RB_OK)
        rb_warn("ratelimit", "sweeping the shared rate schedules: the database queue is full");
    rb_db_background(rs->srv->db, 0);
}

struct rb_rate_shared *rb_rate_shared_new(struct rb_server *srv)
{
    struct rb_rate_shared *rs = rb_calloc(1, sizeof(*rs));
    rs->srv = srv;
    rs->sweep = event_new(srv->base, -1, EV_PERSIST, sweep, rs);
    struct timeval tv = {SWEEP_SECONDS, 0};
    if (!rs->sweep || event_add(rs->sweep, &tv) != 0) {
        rb_rate_shared_free(rs);
        return NULL;
    }
    rb_http_set_shared_rate(srv->http, take, rs);
    return rs;
}

void rb_rate_shared_free(struct rb_rate_shared *rs)
{
    if (!rs)
        return;
    if (rs->srv->http)
        rb_http_set_shared_rate(rs->srv->http, NULL, NULL);
    if (rs->sweep)
        event_free(rs->sweep);
    free(rs);
}
