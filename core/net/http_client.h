/* An asynchronous HTTP/1.1 client on the event loop (libevent's evhttp client).
 *
 * One request at a time per connection, one connection per request: the callers (Kannel's
 * sendsms, department webhooks) send a few requests a second, and a fresh connection keeps
 * a half-dead keep-alive socket from ever eating a message. http:// and https:// (libevent's
 * OpenSSL bufferevents; the server's certificate is verified against the system's CAs or a
 * given CA file, and its name or IP address against the url's host); names are resolved
 * through evdns when it could be set up, else by the blocking resolver.
 *
 *   struct rb_http_client *c = rb_http_client_new(base);
 *   rb_http_fetch(c, RB_HTTP_GET, "http://127.0.0.1:13013/cgi-bin/sendsms?...", NULL,
 *                 NULL, 0, 10.0, done, arg);
 *   ... done(status, body, len, err, arg) is called exactly once ...
 *   rb_http_client_free(c);   cancels what is still in flight WITHOUT calling back
 */
#ifndef RB_HTTP_CLIENT_H
#define RB_HTTP_CLIENT_H

#include <stddef.h>

#include <rabta/plugin.h>

struct event_base;
struct rb_http_client;

/* The largest response body kept; a longer one fails the request ("response too large"). */
#define RB_HTTP_CLIENT_MAX_BODY (1024 * 1024)

/* The answer. status: the HTTP status, or 0 when no answer came (err says why: "connection
 * refused", "timed out", ...; it starts with RB_OUTCOME_UNKNOWN when the whole request had
 * been sent, so the receiver may have acted on it: "outcome unknown: the request was sent,
 * then timed out"). body: borrowed, valid until the callback returns,
 * NUL-terminated after len bytes; never NULL. err NULL when status > 0. */
typedef void (*rb_http_fetch_fn)(int status, const char *body, size_t len, const char *err,
                                  void *arg);

/* base is borrowed and must outlive the client. */
struct rb_http_client *rb_http_client_new(struct event_base *base);
/* Cancels every request in flight (their callbacks are NOT called) and frees the client. */
void rb_http_client_free(struct rb_http_client *c);
/* Requests still in flight. */
size_t rb_http_client_pending(const struct rb_http_client *c);

/* Starts one request. method: one rb_http_method (GET, POST, PUT, DELETE, PATCH, HEAD);
 * url "http://host[:port]/path?query" (copied); headers: NULL or a NULL-terminated array of
 * "Name: value" strings (copied); body/len sent as is (copied; POST/PUT/PATCH); timeout in
 * seconds for connecting and for each read/write (<= 0: 30 s). fn is called exactly once,
 * never before this returns. RB_OK, or RB_EINVAL (bad url/method/header; fn not called). */
int rb_http_fetch(struct rb_http_client *c, enum rb_http_method method, const char *url,
                  const char *const *headers, const char *body, size_t len, double timeout,
                  rb_http_fetch_fn fn, void *arg);
/* As rb_http_fetch; an https:// url's server must present a certificate that ca_file (PEM,
 * NULL: the system's trusted CAs) vouches for, else the fetch fails with err "TLS: ...".
 * RB_EINVAL also when ca_file cannot be read. */
int rb_http_fetch_ca(struct rb_http_client *c, enum rb_http_method method, const char *url,
                     const char *const *headers, const char *body, size_t len, double timeout,
                     const char *ca_file, rb_http_fetch_fn fn, void *arg);

#endif
