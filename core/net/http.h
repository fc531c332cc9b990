/* core/net/: HTTP in and out on libevent: the server with its route table and one error shape
 * (http), the asynchronous client for webhooks and gateways (http_client). Calls: base only. */
/* HTTP on libevent's evhttp: a route table with methods and ":name" path parameters, one JSON
 * error shape for every error, a body size limit (413), request ids, metrics per route.
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
const char *rb_http_req_peer(struct rb_http_req *req); /* client address */
/* Parses the body as a JSON object. On failure answers 400 (or 415 for a wrong content type)
 * with a message naming the line and column, and returns NULL: the caller just returns. */
json_t *rb_http_req_json(struct rb_http_req *req);

/* Answers. Each request is answered exactly once. */
void rb_http_reply(struct rb_http_req *req, int status, const char *content_type,
                   const char *body, size_t len);
void rb_http_reply_json(struct rb_http_req *req, int status, json_t *body /* stolen */);
/* {"error":{"code":"not_found","message":"...","request_id":"..."}} */
void rb_http_reply_error(struct rb_http_req *req, int status, const char *code, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));
void rb_http_add_header(struct rb_http_req *req, const char *name, const char *value);

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
