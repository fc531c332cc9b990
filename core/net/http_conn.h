/* The connections of the HTTP server (net/http.c's helper; nothing else uses it): how many are
 * open, and for each a deadline by phase, so that a slow or silent client cannot hold a
 * connection (and its memory) for ever:
 *
 *   accepted ─► IDLE ──first byte──► HEAD ──blank line──► BODY ──dispatched──► BUSY
 *                 ▲                   │ header_timeout      │ body_timeout        │
 *                 │                   ▼ 408, closed          ▼ 408, closed          │
 *                 └──────────────── answered (keep-alive) ◄─────────────────────────┘
 *   IDLE: keepalive_timeout (header_timeout before the first request), then closed quietly.
 *   BUSY: no deadline; the handler owns the request.
 *
 * libevent 2.1 has no hook for "headers complete" nor for a connection's end on the server
 * side before a request arrives, so: every connection's bufferevent is ours (evhttp_set_bevcb);
 * a callback on its input buffer sees each read and finds the blank line that ends the head;
 * on the next turn of the loop the connection's evhttp_connection is found (the bufferevent's
 * callback argument) and gets our close callback, which is where the count goes down.
 * Connections past max_connections are marked "over" (http.c answers them 503 except
 * /healthz); past max_connections + connection_reserve they are answered 503 at once and
 * closed. A connection cut off by a deadline gets its answer written straight to the socket
 * and is closed gracefully (our copy of the socket reads and drops what the client still
 * sends, for a short while, so the answer is not lost to a reset). */
#ifndef RB_HTTP_CONN_H
#define RB_HTTP_CONN_H

#include <stddef.h>

#include "net/http.h"

struct bufferevent;
struct evbuffer;
struct evbuffer_cb_info;
struct evhttp_request;
struct rb_http_conns;
struct rb_http_conn;

typedef void (*rb_http_conn_out_fn)(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                                    void *conn);
/* A whole HTTP answer (status line to body) for a connection cut off with status; path: the
 * request's path when its request line has arrived, else NULL. A new string, caller frees. */
typedef char *(*rb_http_conn_page_fn)(void *owner, int status, const char *path);

struct rb_http_conns *rb_http_conns_new(struct event_base *base, rb_http_conn_page_fn page,
                                        void *owner);
/* After evhttp_free (which closes every connection). */
void rb_http_conns_free(struct rb_http_conns *cs);
void rb_http_conns_set_limits(struct rb_http_conns *cs, const struct rb_http_limits *lim);
size_t rb_http_conns_open(const struct rb_http_conns *cs);

/* In the bevcb: a new connection on bev; out is added as bev's output-buffer callback with
 * the connection as its argument (removed when the connection closes). */
struct rb_http_conn *rb_http_conn_open(struct rb_http_conns *cs, struct bufferevent *bev,
                                       rb_http_conn_out_fn out);
/* The connection of a request; NULL once its client went away. */
struct rb_http_conn *rb_http_conn_of(struct rb_http_conns *cs, struct evhttp_request *ev);
void *rb_http_conn_owner(const struct rb_http_conn *c);
/* Accepted past max_connections: only /healthz is served on it. */
int rb_http_conn_over(const struct rb_http_conn *c);
/* The head being received went past max_header_bytes (libevent's 400 then means 431). */
int rb_http_conn_head_too_big(const struct rb_http_conn *c);
/* The path (no query) of the request whose head is being received or was last received, as
 * its request line gives it (raw, not decoded), into buf; NULL when no request line has
 * arrived or the path is longer than what is kept (1 KiB) or than cap. */
const char *rb_http_conn_path(const struct rb_http_conn *c, char *buf, size_t cap);
/* A request was dispatched to its handler / answered. */
void rb_http_conn_busy(struct rb_http_conn *c);
void rb_http_conn_idle(struct rb_http_conn *c);

#endif
