/* The asynchronous HTTP client (see http_client.h).
 *
 * Each fetch owns one evhttp_connection. The connection is never freed inside libevent's
 * own callback (libevent still touches it afterwards): the finished fetch is unlinked,
 * its callback runs, and the connection is freed from a zero-delay timer on the next loop
 * turn. */
#include "net/http_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/common.h"
#include "base/log.h"

struct fetch {
    struct rb_http_client *client;    /* borrowed */
    struct evhttp_connection *conn;   /* owned */
    struct evhttp_request *req;       /* owned by conn once made; NULL after it finished */
    struct event *reaper;             /* owned: frees conn on the next loop turn */
    rb_http_fetch_fn fn;
    void *arg;
    enum evhttp_request_error error;  /* from the error callback */
    int errored, done;
    int sent;                         /* the whole request reached the socket: from then on,
                                         a missing answer leaves the outcome unknown */
    char *url;                        /* owned, for log lines; no query string */
    SSL *ssl;                         /* https: owned by the connection's bufferevent */
    struct fetch *prev, *next;        /* the client's list of fetches in flight */
};

/* One TLS context per CA file (NULL: the system's trusted CAs), made on first use. */
struct tls_ctx {
    char *ca_file;    /* owned; NULL: the system's */
    SSL_CTX *ctx;     /* owned */
    struct tls_ctx *next;
};

struct rb_http_client {
    struct event_base *base; /* borrowed */
    struct evdns_base *dns;  /* owned; NULL: blocking resolver */
    struct tls_ctx *tls;     /* owned list */
    struct fetch *head;      /* owned: fetches not yet reaped */
    size_t pending;          /* fetches whose callback has not run */
};

struct rb_http_client *rb_http_client_new(struct event_base *base)
{
    struct rb_http_client *c = rb_calloc(1, sizeof(*c));
    c->base = base;
    /* Without a usable resolv.conf evdns cannot start; numeric hosts still work then. */
    c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                      EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    return c;
}

static void fetch_unlink(struct fetch *f)
{
    struct rb_http_client *c = f->client;
    if (f->prev)
        f->prev->next = f->next;
    else
        c->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->prev = f->next = NULL;
}

static void fetch_free(struct fetch *f)
{
    if (f->conn)
        evhttp_connection_free(f->conn); /* frees a request still queued on it */
    if (f->reaper)
        event_free(f->reaper);
    free(f->url);
    free(f);
}

void rb_http_client_free(struct rb_http_client *c)
{
    if (!c)
        return;
    while (c->head) {
        struct fetch *f = c->head;
        fetch_unlink(f);
        fetch_free(f);
    }
    if (c->dns)
        evdns_base_free(c->dns, 0);
    while (c->tls) {
        struct tls_ctx *t = c->tls;
        c->tls = t->next;
        SSL_CTX_free(t->ctx);
        free(t->ca_file);
        free(t);
    }
    free(c);
}

size_t rb_http_client_pending(const struct rb_http_client *c)
{
    return c ? c->pending : 0;
}

static void reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch *f = arg;
    fetch_unlink(f);
    fetch_free(f);
}

static const char *error_text(enum evhttp_request_error e)
{
    switch (e) {
    case EVREQ_HTTP_TIMEOUT:
        return "timed out";
    case EVREQ_HTTP_EOF:
        return "connection closed before an answer";
    case EVREQ_HTTP_INVALID_HEADER:
        return "invalid answer";
    case EVREQ_HTTP_BUFFER_ERROR:
        return "connection refused or reset";
    case EVREQ_HTTP_REQUEST_CANCEL:
        return "cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG:
        return "response too large";
    }
    return "failed";
}

/* Calls back once, then arranges for the connection to be freed on the next loop turn. */
static void finish(struct fetch *f, int status, const char *body, size_t len, const char *err)
{
    if (f->done)
        return;
    f->done = 1;
    f->req = NULL;
    f->client->pending--;
    f->fn(status, body ? body : "", body ? len : 0, err, f->arg);
    f->reaper = evtimer_new(f->client->base, reap, f);
    if (!f->reaper)
        rb_fatal("out of memory arming a timer");
    const struct timeval zero = {0, 0};
    evtimer_add(f->reaper, &zero);
}

static void on_error(enum evhttp_request_error e, void *arg)
{
    struct fetch *f = arg;
    f->errored = 1;
    f->error = e;
}

/* Watches the request's bytes leave: the output buffer emptied by a write (the connection
 * still has its socket; a reset closes the socket first and then drains the buffer) means the
 * whole request was handed to the kernel, so the receiver may have acted on it. */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct fetch *f = arg;
    if (info->n_deleted > 0 && evbuffer_get_length(buf) == 0 && f->conn &&
        bufferevent_getfd(evhttp_connection_get_bufferevent(f->conn)) >= 0)
        f->sent = 1;
}

static void on_done(struct evhttp_request *req, void *arg)
{
    struct fetch *f = arg;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (!req || code <= 0 || f->errored) {
        const char *why = f->errored ? error_text(f->error) : "connection refused or reset";
        char tls_why[200];
        long v = f->ssl ? SSL_get_verify_result(f->ssl) : X509_V_OK;
        if (v != X509_V_OK) {
            snprintf(tls_why, sizeof(tls_why), "TLS: the server's certificate is not trusted (%s)",
                     X509_verify_cert_error_string(v));
            why = tls_why;
        } else if (f->sent) {
            snprintf(tls_why, sizeof(tls_why), "%sthe request was sent, then %s",
                     RB_OUTCOME_UNKNOWN, why);
            why = tls_why;
        }
        /* A refused connect shows up as a buffer error without errno detail; keep it short. */
        rb_debug("http_client", "%s: %s", f->url, why);
        finish(f, 0, NULL, 0, why);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = rb_malloc(len + 1);
    if (len)
        evbuffer_copyout(in, body, len);
    body[len] = '\0';
    finish(f, code, body, len, NULL);
    free(body);
}

/* The one-shot callback for a request that could not even be started. */
static void fail_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch *f = arg;
    event_free(f->reaper);
    f->reaper = NULL;
    finish(f, 0, NULL, 0, "could not start the request");
}

static int method_type(enum rb_http_method m, enum evhttp_cmd_type *out)
{
    switch (m) {
    case RB_HTTP_GET: *out = EVHTTP_REQ_GET; return RB_OK;
    case RB_HTTP_POST: *out = EVHTTP_REQ_POST; return RB_OK;
    case RB_HTTP_PUT: *out = EVHTTP_REQ_PUT; return RB_OK;
    case RB_HTTP_DELETE: *out = EVHTTP_REQ_DELETE; return RB_OK;
    case RB_HTTP_PATCH: *out = EVHTTP_REQ_PATCH; return RB_OK;
    case RB_HTTP_HEAD: *out = EVHTTP_REQ_HEAD; return RB_OK;
    case RB_HTTP_OPTIONS: *out = EVHTTP_REQ_OPTIONS; return RB_OK;
    }
    return RB_EINVAL;
}

/* Header lines: "Name: value", a token name, no CR/LF anywhere. */
static int header_split(const char *h, char **name, char **value)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h || strpbrk(h, "\r\n"))
        return RB_EINVAL;
    for (const char *p = h; p < colon; p++)
        if (*p <= ' ' || *p >= 127)
            return RB_EINVAL;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    *name = rb_strndup(h, (size_t)(colon - h));
    *value = rb_strdup(v);
    return RB_OK;
}

/* The TLS context for ca_file (NULL: the system's CAs), made once per client; NULL when the
 * file cannot be read as PEM certificates (logged). Peers are always verified. */
static SSL_CTX *tls_ctx(struct rb_http_client *c, const char *ca_file)
{
    for (struct tls_ctx *t = c->tls; t; t = t->next)
        if ((!t->ca_file && !ca_file) || (t->ca_file && ca_file && !strcmp(t->ca_file, ca_file)))
            return t->ctx;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        rb_fatal("out of memory making a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if ((ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                 : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        rb_error("http_client", "cannot load the CA certificates %s", ca_file ? ca_file : "");
        SSL_CTX_free(ctx);
        return NULL;
    }
    struct tls_ctx *t = rb_calloc(1, sizeof(*t));
    t->ca_file = ca_file ? rb_strdup(ca_file) : NULL;
    t->ctx = ctx;
    t->next = c->tls;
    c->tls = t;
    return ctx;
}

/* The connection for one fetch: plain, or TLS checked against ca_file with the host's name
 * (or IP address) verified. NULL when the CA file is unusable. */
static struct evhttp_connection *connect_to(struct rb_http_client *c, struct fetch *f, int tls,
                                            const char *host, int port, const char *ca_file)
{
    if (!tls)
        return evhttp_connection_base_new(c->base, c->dns, host, (unsigned short)port);
    SSL_CTX *ctx = tls_ctx(c, ca_file);
    if (!ctx)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        rb_fatal("out of memory making a TLS session");
    unsigned char addr[16];
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    } else {
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        rb_fatal("out of memory making a TLS connection");
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    f->ssl = ssl;
    return evhttp_connection_base_bufferevent_new(c->base, c->dns, bev, host,
                                                  (unsigned short)port);
}

int rb_http_fetch(struct rb_http_client *c, enum rb_http_method method, const char *url,
                  const char *const *headers, const char *body, size_t len, double timeout,
                  rb_http_fetch_fn fn, void *arg)
{
    return rb_http_fetch_ca(c, method, url, headers, body, len, timeout, NULL, fn, arg);
}

int rb_http_fetch_ca(struct rb_http_client *c, enum rb_http_method method, const char *url,
                     const char *const *headers, const char *body, size_t len, double timeout,
                     const char *ca_file, rb_http_fetch_fn fn, void *arg)
{
    enum evhttp_cmd_type type;
    if (!c || !url || !fn || method_type(method, &type) != RB_OK)
        return RB_EINVAL;
    struct evhttp_uri *uri = evhttp_uri_parse(url);
    if (!uri)
        return RB_EINVAL;
    const char *scheme = evhttp_uri_get_scheme(uri), *host = evhttp_uri_get_host(uri);
    int tls = scheme && strcmp(scheme, "https") == 0;
    if (!scheme || (!tls && strcmp(scheme, "http") != 0) || !host || !*host) {
        evhttp_uri_free(uri);
        return RB_EINVAL;
    }
    int port = evhttp_uri_get_port(uri), default_port = tls ? 443 : 80;
    if (port < 0)
        port = default_port;
    const char *path = evhttp_uri_get_path(uri), *query = evhttp_uri_get_query(uri);
    char *target = rb_sprintf("%s%s%s", path && *path ? path : "/", query ? "?" : "",
                              query ? query : "");
    char *hostport = port == default_port ? rb_strdup(host) : rb_sprintf("%s:%d", host, port);

    struct fetch *f = rb_calloc(1, sizeof(*f));
    f->client = c;
    f->fn = fn;
    f->arg = arg;
    /* For log lines: without the query, which may carry a gateway's password or secret. */
    f->url = rb_strndup(url, strcspn(url, "?#"));
    f->conn = connect_to(c, f, tls, host, port, ca_file);
    evhttp_uri_free(uri);
    if (!f->conn) {
        free(f->url);
        free(f);
        free(target);
        free(hostport);
        return RB_EINVAL;
    }
    if (timeout <= 0)
        timeout = 30.0;
    struct timeval tv = {(time_t)timeout, (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6)};
    evhttp_connection_set_timeout_tv(f->conn, &tv);
    evhttp_connection_set_retries(f->conn, 0);
    evhttp_connection_set_max_body_size(f->conn, RB_HTTP_CLIENT_MAX_BODY);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(f->conn);
    if (!bev || !evbuffer_add_cb(bufferevent_get_output(bev), on_output, f))
        rb_fatal("out of memory watching an HTTP request's output");

    f->req = evhttp_request_new(on_done, f);
    if (!f->req)
        rb_fatal("out of memory making an HTTP request");
    evhttp_request_set_error_cb(f->req, on_error);
    struct evkeyvalq *out = evhttp_request_get_output_headers(f->req);
    evhttp_add_header(out, "Host", hostport);
    evhttp_add_header(out, "Connection", "close");
    int bad = 0;
    for (size_t i = 0; headers && headers[i] && !bad; i++) {
        char *n = NULL, *v = NULL;
        if (header_split(headers[i], &n, &v) != RB_OK || evhttp_add_header(out, n, v) != 0)
            bad = 1;
        free(n);
        free(v);
    }
    free(hostport);
    if (bad) {
        evhttp_request_free(f->req);
        evhttp_connection_free(f->conn);
        free(f->url);
        free(f);
        free(target);
        return RB_EINVAL;
    }
    if (body && len)
        evbuffer_add(evhttp_request_get_output_buffer(f->req), body, len);

    f->next = c->head;
    if (c->head)
        c->head->prev = f;
    c->head = f;
    c->pending++;
    /* evhttp_make_request frees the request itself when it fails. */
    if (evhttp_make_request(f->conn, f->req, type, target) != 0) {
        f->req = NULL;
        f->reaper = evtimer_new(c->base, fail_later, f);
        if (!f->reaper)
            rb_fatal("out of memory arming a timer");
        const struct timeval zero = {0, 0};
        evtimer_add(f->reaper, &zero);
    }
    free(target);
    return RB_OK;
}
