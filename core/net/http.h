/* core/net/: HTTP in and out on libevent: the server with its route table and one error shape
 * (http), the asynchronous client for webhooks and gateways (http_client). Calls: base only. */
/* HTTP on libevent's evhttp: a route table with methods and ":name" path parameters, one JSON
 * error shape for every error (or its owner's, under a prefix with one), a body size limit
 * (413), request ids, metrics per route.
 *
 * Handlers may answer later (after a database callback): a request stays valid until it is
 * answered exactly once. Answering a request whose client went away is safe. */
#ifndef RB_HTTP_H
#define RB_HTTP_H

#include <stddef.h>
#include <jansson.h>
#include "base/common.h"

struct event_base;
struct rb_metrics;
struct rb_http;
struct rb_http_req;

typedef void (*rb_http_fn)(struct rb_http_req *req, void *arg);

/* m is borrowed and may be NULL. */
struct rb_http *rb_http_new(struct event_base *base, struct rb_metrics *m);
void rb_http_free(struct rb_http *h);
void rb_http_set_max_body(struct rb_http *h, size_t bytes);
void rb_http_set_timeout(struct rb_http *h, double seconds);

/* Limits on what one client may hold (docs/security.md). 0 in any field: no limit. */
struct rb_http_limits {
    size_t max_header_bytes;   /* request line + header lines; more is 431 */
    size_t max_headers;        /* header lines; more is 431 */
    double header_timeout;     /* seconds from a request's first byte to its blank line; 408 */
    double body_timeout;       /* seconds from the blank line to the end of the body; 408 */
    double keepalive_timeout;  /* seconds an idle connection stays open between requests */
    size_t max_connections;    /* past it: 503 and closed, except GET /healthz */
    size_t connection_reserve; /* past max_connections + this: 503 at once, closed */
    size_t max_pending_bytes;  /* bodies of requests not yet answered; past it: 503 */
};
/* Copied. New limits apply to new connections and requests. */
void rb_http_set_limits(struct rb_http *h, const struct rb_http_limits *lim);

/* Per-route limits, by "METHOD /pattern" as registered ("POST /api/v1/cases"). */
struct rb_http_route_limit {
    const char *route;  /* borrowed during the call */
    size_t max_body;    /* 0: the server's max_body; more is 413 */
    double per_second;  /* requests a second per client address (IPv6: per /64); 0: none */
    int burst;          /* requests a client may make at once */
    int anonymous_only; /* count only requests without an Authorization header */
};
/* Replaces the per-route limits (copied). More than the limit is 429 with Retry-After. */
void rb_http_set_route_limits(struct rb_http *h, const struct rb_http_route_limit *lims,
                              size_t n);
/* Proxies whose X-Forwarded-For names the client (copied); from anyone else the header is
 * ignored. */
struct rb_cidr;
void rb_http_set_trusted_proxies(struct rb_http *h, const struct rb_cidr *list, size_t n);
/* The error answers for paths under a prefix, written by whoever serves that prefix (a
 * plugin speaking another protocol, such as Open311's XML) rather than in the core's JSON:
 * every error the server answers for such a path before or instead of its handler (404 for
 * too many segments, 413 for a body over max_body, 431 for a head over max_header_bytes when
 * the request line's path is known, 408, 429, 503, a malformed query string) and every
 * rb_http_reply_error on it. fn writes the body for path (raw, no query), status and message
 * (UTF-8, for the client) into buf (at most cap bytes, NUL-terminated), sets *content_type
 * (a string that outlives the server) and returns the body's length, or -1 to leave the
 * answer in JSON. It runs on the loop and must not block, answer or keep path. */
typedef int (*rb_http_error_fn)(const char *path, int status, const char *message,
                                const char **content_type, char *buf, size_t cap, void *arg);
/* prefix: "/open311" (no trailing "/"): the path itself and everything under it. RB_OK;
 * RB_EINVAL (malformed prefix); RB_EEXIST (the prefix has an owner). */
int rb_http_error_owner(struct rb_http *h, const char *prefix, rb_http_error_fn fn, void *arg);

/* The per-route rates counted by every process on one database, not by each alone: fn is
 * asked about a request only after this process's own table allowed it (so a flood is refused
 * without asking), with the route as rule ("POST /api/v1/verify", borrowed during the call)
 * and the client's address key (base/addr.h). fn returns RB_OK and later (never inside the
 * call) calls rb_http_rate_done exactly once, or returns an error (the request is answered
 * 503). NULL fn: each process counts alone. */
typedef int (*rb_http_rate_fn)(struct rb_http_req *req, const char *rule, double per_second,
                               int burst, const unsigned char *key, void *arg);
void rb_http_set_shared_rate(struct rb_http *h, rb_http_rate_fn fn, void *arg);
/* The shared answer for req: wait 0 runs the route's handler, wait > 0 answers 429 with
 * Retry-After, wait < 0 (could not be counted) answers 503 with Retry-After. */
void rb_http_rate_done(struct rb_http_req *req, double wait);
/* A rate limit on anything else than a client address, in the same table as the per-route
 * limits: key (any text) within scope (who counts: a plugin's name). take 0 only looks.
 * Returns 0 when allowed, or the seconds until it would be. */
double rb_http_rate(struct rb_http *h, const char *scope, const char *key, double per_second,
                    int burst, int take);
/* Connections open now; bytes of bodies held by requests not yet answered. */
size_t rb_http_connections(const struct rb_http *h);
size_t rb_http_pending_bytes(const struct rb_http *h);

/* Binds addr:port (port 0: any free port) with SO_REUSEPORT, so that several rabtad processes
 * can share one port. RB_OK, or RB_ERR with a logged reason. */
int rb_http_listen(struct rb_http *h, const char *addr, int port);
int rb_http_bound_port(const struct rb_http *h); /* the actual port, after listen */
/* Accepts on fd, a socket that is already bound (and perhaps listening): a socket inherited
 * from a supervisor or shared between workers. Takes ownership of fd on success. RB_OK, or
 * RB_ERR with a logged reason (fd is then left open). */
int rb_http_listen_fd(struct rb_http *h, int fd);
/* Stops accepting new connections; requests under way go on. */
void rb_http_stop_accepting(struct rb_http *h);
/* Requests received and not yet answered. */
size_t rb_http_inflight(const struct rb_http *h);

/* pattern: "/healthz", "/api/v1/cases/:id". name is for metrics; NULL means the pattern.
 * The same method+pattern twice is RB_EEXIST. Strings are copied. */
int rb_http_route(struct rb_http *h, unsigned methods, const char *pattern, rb_http_fn fn,
                  void *arg);

/* Request accessors; returned strings are borrowed, valid until the request is answered. */
enum rb_http_method rb_http_req_method(struct rb_http_req *req);
const char *rb_http_req_path(struct rb_http_req *req);
const char *rb_http_req_param(struct rb_http_req *req, const char *name);
const char *rb_http_req_query(struct rb_http_req *req, const char *name);
const char *rb_http_req_header(struct rb_http_req *req, const char *name);
const char *rb_http_req_body(struct rb_http_req *req, size_t *len);
const char *rb_http_req_id(struct rb_http_req *req); /* short random id, also in logs */
/* The client's address: the peer's, or with a trusted proxy the address it forwarded for. */
const char *rb_http_req_peer(struct rb_http_req *req);
/* Parses the body as a JSON object. On failure answers 400 (or 415 for a wrong content type)
 * with a message naming the line and column, and returns NULL: the caller just returns. */
json_t *rb_http_req_json(struct rb_http_req *req);

/* Answers. Each request is answered exactly once. */
void rb_http_reply(struct rb_http_req *req, int status, const char *content_type,
                   const char *body, size_t len);
void rb_http_reply_json(struct rb_http_req *req, int status, json_t *body /* stolen */);
/* {"error":{"code":"not_found","message":"...","request_id":"..."}}. A message that carries
 * a database error's text (SQLSTATE) is logged and answered as rb_http_reply_db_error does. */
void rb_http_reply_error(struct rb_http_req *req, int status, const char *code, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));
void rb_http_add_header(struct rb_http_req *req, const char *name, const char *value);
/* Answers a failed database call whose error is err ("<text> (SQLSTATE xxxxx)", db/db.h):
 * class 22 (a data exception: text PostgreSQL refuses as UTF-8, a number out of range, a
 * value of the wrong form) is the client's 400; anything else is 503 with Retry-After. The
 * database's text goes to the log with the request id, never to the client. what: what
 * failed, for the client ("your case could not be stored"). */
void rb_http_reply_db_error(struct rb_http_req *req, const char *err, const char *what);
/* 503 "overloaded" with Retry-After: 1, for a request whose query the database pool would
 * not queue (rb_db_query refused it: the wait queue is full). */
void rb_http_reply_busy(struct rb_http_req *req);

/* The answer to a request made with rb_http_local. Borrowed for the call. */
typedef void (*rb_http_local_fn)(int status, const char *content_type, const char *body,
                                 size_t len, void *arg);
/* Runs a request through the route table as if it had come over a connection from peer
 * (copied; may be NULL), without a socket: uri is the path and query ("/api/v1/x?a=b"),
 * headers NULL or a NULL-terminated array of "Name: value", body/len copied. The handler is
 * called before this returns; fn is called exactly once, when the handler answers (perhaps
 * later, after a database call), with the answer. RB_OK, or RB_EINVAL (malformed uri or
 * header, body over the limit; fn not called). At shutdown a request still unanswered is
 * dropped without a call, as a connection's would be. */
int rb_http_local(struct rb_http *h, enum rb_http_method method, const char *uri,
                  const char *const *headers, const char *body, size_t len, const char *peer,
                  rb_http_local_fn fn, void *arg);

#endif
