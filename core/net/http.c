/* HTTP on libevent 2.1's evhttp: a route table, one JSON error shape, request ids, metrics.
 *
 * Routing. A pattern is "/" or "/seg/seg/..." where a segment is a literal or ":name". The
 * request path is split on "/" first and each segment is then URL-decoded (so "%2F" stays
 * inside one segment), and matched segment by segment; no regular expressions. Among the
 * patterns that match a path and accept the method, the most specific wins: at the first
 * position where they differ, a literal beats a parameter ("/cases/new" beats "/cases/:id").
 * A path that some pattern matches but none for this method is 405 with an Allow header;
 * a path no pattern matches is 404. Trailing slashes are significant: "/healthz/" does not
 * match "/healthz" (404), and patterns may not end in "/" (except "/" itself).
 * HEAD is served by the GET handler when no route registers HEAD itself; the answer carries
 * the GET body's Content-Length and no body (libevent 2.1 would send the body: we drop it).
 *
 * Errors. Every error answer is {"error":{"code":..,"message":..,"request_id":..}}, including
 * the ones libevent produces by itself (413 for an oversized body, 400 for a malformed
 * request, 501 for an unknown method): see "libevent's own error pages" below. Under a
 * prefix with an owner (rb_http_error_owner: a plugin speaking another protocol) the owner
 * writes the body instead, whenever the path is known: from the request, or for libevent's
 * pages and cut-off connections from the request line http_conn.c kept.
 *
 * Lifetime. A request is dispatched to its handler once its body is complete; the handler
 * may answer at once or later (after a database callback). The wrapper (struct rb_http_req)
 * lives until the answer; then it is freed. If the client went away meanwhile, libevent
 * detaches the evhttp_request from its connection (evcon becomes NULL) and
 * evhttp_send_reply() just frees it, so answering stays safe. rb_http_free() with requests
 * still unanswered leaves their wrappers orphaned: a later answer frees the wrapper and sends
 * nothing. */
#include "net/http.h"

#include <sys/queue.h> /* before event2: TAILQ_INIT, TAILQ_FOREACH over header lists */

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/addr.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/text.h"
#include "net/http_conn.h"
#include "net/ratelimit.h"

#define MAX_SEGMENTS 32      /* paths with more segments are 404 */
#define LISTEN_BACKLOG 1024
#define ERROR_MSG_MAX 1024
#define REWRITE_MAX (64 * 1024) /* libevent's own error pages are far smaller */
#define OWNED_ERROR_MAX 8192    /* bytes of an error body written by a prefix's owner */

struct route_entry {
    unsigned methods;
    rb_http_fn fn;
    void *arg;
    int limit;         /* index in rb_http.route_limits, or -1 */
    unsigned limit_gen; /* rb_http.limits_gen when limit was looked up; 0: never */
};

struct error_owner {
    char *prefix; /* owned; "/open311": the path itself or anything under it */
    size_t len;
    rb_http_error_fn fn;
    void *arg;
};

struct route_limit {
    char *route; /* owned; "METHOD /pattern" */
    size_t max_body;
    double per_second;
    int burst, anonymous_only;
};

struct route {
    char *pattern;           /* owned; as registered, also the metrics label */
    char **segs;             /* owned; literal text, or the parameter name without ':' */
    unsigned char *is_param; /* owned; one per segment */
    size_t nsegs;
    struct route_entry *entries; /* owned; one per registration */
    size_t n_entries;
    unsigned methods; /* union of the entries' methods */
};

struct rb_http {
    struct event_base *base;   /* borrowed */
    struct rb_metrics *metrics; /* borrowed; may be NULL */
    struct evhttp *evh;        /* owned */
    struct route *routes;      /* owned */
    size_t n_routes;
    struct evhttp_bound_socket **bound; /* owned array; the sockets are evhttp's */
    size_t n_bound;
    int port; /* first bound port */
    size_t max_body;
    size_t inflight;
    struct rb_http_req *pending; /* unanswered requests, for rb_http_free */
    int sending;   /* inside our own evhttp_send_reply: output is ours, not libevent's */
    int rewriting; /* inside rewrite_libevent_error */
    int draining;  /* stop_accepting was called: answers close their connection */
    unsigned char rnd[256]; /* random bytes for request ids, refilled when used up */
    size_t rnd_pos;
    struct rb_http_limits lim;
    struct rb_http_conns *conns;       /* owned */
    struct route_limit *route_limits;  /* owned */
    size_t n_route_limits;
    unsigned limits_gen;               /* bumped when route_limits change; starts at 1 */
    struct rb_ratelimit *rl;           /* owned */
    struct rb_cidr *proxies;           /* owned; trusted proxies */
    size_t n_proxies;
    size_t pending_bytes;              /* bodies of unanswered requests */
    struct error_owner *owners;        /* owned; prefixes whose errors a plugin writes */
    size_t n_owners;
    rb_http_rate_fn shared_rate;       /* NULL: the rates are this process's alone */
    void *shared_rate_arg;             /* borrowed */
};

struct rb_http_req {
    struct rb_http *h;          /* borrowed; NULL once rb_http_free ran (orphan) */
    struct evhttp_request *ev;  /* borrowed; libevent frees it after the answer */
    const struct route *route;  /* borrowed; NULL when no route matched */
    enum rb_http_method method;
    double started;
    const char *path;           /* borrowed from ev's URI; raw (not decoded), no query */
    char **values;              /* owned; decoded segment values, route->nsegs of them */
    size_t nvalues;
    struct evkeyvalq query;     /* parsed on first use */
    int query_state;            /* 0 not parsed, 1 parsed, -1 malformed */
    char id[17];
    char peer[64];
    size_t body_bytes; /* counted in h->pending_bytes until the answer */
    struct rb_http_req *prev, *next; /* on h->pending */
    struct local *local;        /* owned; set for a request made by rb_http_local */
    const struct route_entry *waiting; /* borrowed; the handler to run once the shared rate
                                        * allows the request (rb_http_rate_done) */
};

/* What a request made by rb_http_local has instead of an evhttp_request. */
struct local {
    struct evhttp_uri *uri;    /* owned */
    struct evkeyvalq in, out;  /* owned: request and answer headers */
    char *body;                /* owned; len bytes and a NUL */
    size_t len;
    rb_http_local_fn fn;
    void *arg;
};

static struct evkeyvalq *in_headers(struct rb_http_req *req)
{
    return req->local ? &req->local->in : evhttp_request_get_input_headers(req->ev);
}

static struct evkeyvalq *out_headers(struct rb_http_req *req)
{
    return req->local ? &req->local->out : evhttp_request_get_output_headers(req->ev);
}

/* ---- small helpers ------------------------------------------------------------------------ */

static const struct {
    enum rb_http_method m;
    enum evhttp_cmd_type ev;
    const char *name;
} methods_tab[] = {
    {RB_HTTP_GET, EVHTTP_REQ_GET, "GET"},          {RB_HTTP_POST, EVHTTP_REQ_POST, "POST"},
    {RB_HTTP_PUT, EVHTTP_REQ_PUT, "PUT"},          {RB_HTTP_DELETE, EVHTTP_REQ_DELETE, "DELETE"},
    {RB_HTTP_PATCH, EVHTTP_REQ_PATCH, "PATCH"},    {RB_HTTP_HEAD, EVHTTP_REQ_HEAD, "HEAD"},
    {RB_HTTP_OPTIONS, EVHTTP_REQ_OPTIONS, "OPTIONS"},
};

#define ALL_METHODS                                                                           \
    (RB_HTTP_GET | RB_HTTP_POST | RB_HTTP_PUT | RB_HTTP_DELETE | RB_HTTP_PATCH | RB_HTTP_HEAD | \
     RB_HTTP_OPTIONS)

static const char *method_name(unsigned m)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(methods_tab); i++)
        if (methods_tab[i].m == m)
            return methods_tab[i].name;
    return "OTHER";
}

static enum rb_http_method method_from_ev(enum evhttp_cmd_type t)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(methods_tab); i++)
        if (methods_tab[i].ev == t)
            return methods_tab[i].m;
    return 0;
}

/* "GET, HEAD, POST" for an Allow header. HEAD is implied by GET. */
static void allow_header(unsigned methods, char *buf, size_t cap)
{
    if (methods & RB_HTTP_GET)
        methods |= RB_HTTP_HEAD;
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < RB_ARRAY_LEN(methods_tab); i++)
        if (methods & methods_tab[i].m) {
            int n = snprintf(buf + pos, cap - pos, "%s%s", pos ? ", " : "", methods_tab[i].name);
            if (n < 0 || (size_t)n >= cap - pos)
                break;
            pos += (size_t)n;
        }
}

static void new_request_id(struct rb_http *h, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    if (h->rnd_pos == 0 || h->rnd_pos + 8 > sizeof(h->rnd)) {
        randombytes_buf(h->rnd, sizeof(h->rnd));
        h->rnd_pos = 0;
    }
    const unsigned char *r = h->rnd + h->rnd_pos;
    h->rnd_pos += 8;
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[16] = '\0';
}

/* ---- the route table ---------------------------------------------------------------------- */

static int valid_param_name(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (c >= '0' && c <= '9' && i > 0)))
            return 0;
    }
    return 1;
}

static int valid_literal(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' || c == ':')
            return 0;
    }
    return 1;
}

static void route_clear(struct route *r)
{
    for (size_t i = 0; i < r->nsegs; i++)
        free(r->segs[i]);
    free(r->segs);
    free(r->is_param);
    free(r->entries);
    free(r->pattern);
}

/* Parses pattern into r. RB_OK or RB_EINVAL (nothing allocated then). */
static int route_parse(const char *pattern, struct route *r)
{
    memset(r, 0, sizeof(*r));
    if (!pattern || pattern[0] != '/')
        return RB_EINVAL;
    if (strcmp(pattern, "/") == 0) {
        r->pattern = rb_strdup(pattern);
        return RB_OK;
    }
    size_t n = 0;
    for (const char *p = pattern; *p; p++)
        n += *p == '/';
    if (n > MAX_SEGMENTS)
        return RB_EINVAL;
    r->segs = rb_calloc(n, sizeof(char *));
    r->is_param = rb_calloc(n, 1);
    const char *p = pattern + 1;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int param = len > 0 && p[0] == ':';
        if (param ? !valid_param_name(p + 1, len - 1) : !valid_literal(p, len))
            goto bad;
        if (param)
            for (size_t i = 0; i < r->nsegs; i++)
                if (r->is_param[i] && strlen(r->segs[i]) == len - 1 &&
                    memcmp(r->segs[i], p + 1, len - 1) == 0)
                    goto bad; /* the same name twice */
        r->is_param[r->nsegs] = (unsigned char)param;
        r->segs[r->nsegs++] = param ? rb_strndup(p + 1, len - 1) : rb_strndup(p, len);
        if (!end)
            break;
        p = end + 1;
    }
    r->pattern = rb_strdup(pattern);
    return RB_OK;
bad:
    route_clear(r);
    memset(r, 0, sizeof(*r));
    return RB_EINVAL;
}

/* Same shape: same length, parameters at the same places, same literals. */
static int same_shape(const struct route *a, const struct route *b)
{
    if (a->nsegs != b->nsegs)
        return 0;
    for (size_t i = 0; i < a->nsegs; i++) {
        if (a->is_param[i] != b->is_param[i])
            return 0;
        if (!a->is_param[i] && strcmp(a->segs[i], b->segs[i]) != 0)
            return 0;
    }
    return 1;
}

int rb_http_route(struct rb_http *h, unsigned methods, const char *pattern, rb_http_fn fn,
                  void *arg)
{
    if (!h || !fn || methods == 0 || (methods & ~(unsigned)ALL_METHODS)) {
        rb_error("http", "route %s: no handler or bad method mask 0x%x", pattern ? pattern : "?",
                 methods);
        return RB_EINVAL;
    }
    struct route parsed;
    if (route_parse(pattern, &parsed) != RB_OK) {
        rb_error("http", "route pattern \"%s\" is not valid: it must start with \"/\", have no "
                         "empty segment or trailing \"/\", and use \":name\" parameters "
                         "(letters, digits, _) at most once each",
                 pattern ? pattern : "(null)");
        return RB_EINVAL;
    }
    /* Same shape with overlapping methods would be ambiguous, whatever the parameter names. */
    struct route *exact = NULL;
    for (size_t i = 0; i < h->n_routes; i++) {
        struct route *r = &h->routes[i];
        if (!same_shape(r, &parsed))
            continue;
        if (r->methods & methods) {
            char a[64];
            allow_header(r->methods & methods, a, sizeof(a));
            rb_error("http", "route %s %s is already registered (as %s)", a, pattern, r->pattern);
            route_clear(&parsed);
            return RB_EEXIST;
        }
        if (strcmp(r->pattern, parsed.pattern) == 0)
            exact = r;
    }
    if (!exact) {
        h->routes = rb_realloc(h->routes, (h->n_routes + 1) * sizeof(struct route));
        h->routes[h->n_routes] = parsed;
        exact = &h->routes[h->n_routes++];
    } else {
        route_clear(&parsed);
    }
    exact->entries =
        rb_realloc(exact->entries, (exact->n_entries + 1) * sizeof(struct route_entry));
    exact->entries[exact->n_entries++] = (struct route_entry){methods, fn, arg, -1, 0};
    exact->methods |= methods;
    return RB_OK;
}

/* Is a more specific than b? Both matched the same path. */
static int more_specific(const struct route *a, const struct route *b)
{
    for (size_t i = 0; i < a->nsegs; i++)
        if (a->is_param[i] != b->is_param[i])
            return !a->is_param[i];
    return 0;
}

enum match_result { MATCH_OK, MATCH_NOT_FOUND, MATCH_BAD_METHOD, MATCH_BAD_PATH };

struct match {
    const struct route *route;       /* the winner (MATCH_OK) */
    const struct route_entry *entry; /* its handler */
    char *decoded[MAX_SEGMENTS];     /* owned; decoded segments of the path */
    size_t n;
    unsigned allow; /* MATCH_BAD_METHOD: the methods the path accepts */
};

static void match_clear(struct match *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->decoded[i]);
    m->n = 0;
}

static const struct route_entry *entry_for(const struct route *r, unsigned method)
{
    for (size_t i = 0; i < r->n_entries; i++)
        if (r->entries[i].methods & method)
            return &r->entries[i];
    return NULL;
}

/* Splits and decodes raw_path, then finds the best route. m->decoded is filled whatever the
 * result (free with match_clear). */
static enum match_result route_match(const struct rb_http *h, const char *raw_path,
                                     unsigned method, struct match *m)
{
    memset(m, 0, sizeof(*m));
    if (!raw_path || raw_path[0] != '/')
        return MATCH_NOT_FOUND;
    if (raw_path[1] != '\0') {
        const char *p = raw_path + 1;
        for (;;) {
            if (m->n == MAX_SEGMENTS)
                return MATCH_NOT_FOUND;
            const char *end = strchr(p, '/');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            char *raw = rb_strndup(p, len);
            size_t dlen = 0;
            char *dec = evhttp_uridecode(raw, 0, &dlen);
            free(raw);
            if (!dec)
                rb_fatal("out of memory decoding a path");
            m->decoded[m->n++] = rb_strndup(dec, dlen);
            int has_nul = strlen(dec) != dlen;
            free(dec);
            if (has_nul)
                return MATCH_BAD_PATH;
            if (!end)
                break;
            p = end + 1;
        }
    }
    const struct route *best = NULL;
    const struct route_entry *best_entry = NULL;
    unsigned allow = 0;
    for (size_t i = 0; i < h->n_routes; i++) {
        const struct route *r = &h->routes[i];
        if (r->nsegs != m->n)
            continue;
        size_t k = 0;
        while (k < r->nsegs && (r->is_param[k] || strcmp(r->segs[k], m->decoded[k]) == 0) &&
               m->decoded[k][0] != '\0')
            k++;
        if (k != r->nsegs)
            continue;
        allow |= r->methods;
        const struct route_entry *e = entry_for(r, method);
        if (!e && method == RB_HTTP_HEAD)
            e = entry_for(r, RB_HTTP_GET);
        if (e && (!best || more_specific(r, best))) {
            best = r;
            best_entry = e;
        }
    }
    if (best) {
        m->route = best;
        m->entry = best_entry;
        return MATCH_OK;
    }
    m->allow = allow;
    return allow ? MATCH_BAD_METHOD : MATCH_NOT_FOUND;
}

/* ---- answering ------------------------------------------------------------------------------ */

static void req_unlink(struct rb_http *h, struct rb_http_req *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else
        h->pending = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    h->inflight--;
}

static void req_free(struct rb_http_req *req)
{
    for (size_t i = 0; i < req->nvalues; i++)
        free(req->values[i]);
    free(req->values);
    if (req->query_state == 1)
        evhttp_clear_headers(&req->query);
    if (req->local) {
        evhttp_uri_free(req->local->uri);
        evhttp_clear_headers(&req->local->in);
        evhttp_clear_headers(&req->local->out);
        free(req->local->body);
        free(req->local);
    }
    free(req);
}

void rb_http_add_header(struct rb_http_req *req, const char *name, const char *value)
{
    if (!req || !req->h || !name || !value)
        return;
    if (evhttp_add_header(out_headers(req), name, value) != 0)
        rb_warn(req->id, "header %s not added: its name or value holds a line break", name);
}

/* After the answer: metrics, the debug line, and the wrapper freed. */
static void finish(struct rb_http *h, struct rb_http_req *req, int status)
{
    double secs = rb_now_mono() - req->started;
    const char *route = req->route ? req->route->pattern : "unmatched";
    rb_metrics_http(h->metrics, route, method_name(req->method), status, secs);
    rb_debug(req->id, "%s %s -> %d (%s, %.3f ms, %s%s)", method_name(req->method), req->path,
             status, route, secs * 1e3, req->peer, req->local ? ", local" : "");
    req_unlink(h, req);
    req_free(req);
}

void rb_http_reply(struct rb_http_req *req, int status, const char *content_type,
                   const char *body, size_t len)
{
    if (!req)
        return;
    struct rb_http *h = req->h;
    if (!h) { /* the server was freed while this request waited: nothing to send */
        req_free(req);
        return;
    }
    if (status < 100 || status > 599) {
        rb_error(req->id, "handler answered with status %d; sending 500 instead", status);
        status = 500;
    }
    h->pending_bytes -= req->body_bytes;
    req->body_bytes = 0;
    if (req->local) {
        req->local->fn(status, content_type ? content_type : "application/json", body, len,
                       req->local->arg);
        finish(h, req, status);
        return;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req->ev);
    evhttp_add_header(out, "Content-Type", content_type ? content_type : "application/json");
    evhttp_add_header(out, "Server", "rabta");
    evhttp_add_header(out, "X-Request-Id", req->id);
    if (h->draining && !evhttp_find_header(out, "Connection"))
        evhttp_add_header(out, "Connection", "close");
    struct evbuffer *buf = evbuffer_new();
    if (!buf)
        rb_fatal("out of memory");
    if (req->method == RB_HTTP_HEAD) {
        /* libevent 2.1 would send the body of a HEAD answer: send only its length. */
        char cl[24];
        snprintf(cl, sizeof(cl), "%zu", len);
        evhttp_remove_header(out, "Content-Length");
        evhttp_add_header(out, "Content-Length", cl);
    } else if (len && evbuffer_add(buf, body, len) != 0) {
        rb_fatal("out of memory");
    }
    rb_http_conn_idle(rb_http_conn_of(h->conns, req->ev));
    h->sending = 1;
    evhttp_send_reply(req->ev, status, NULL, buf); /* frees ev if the client is gone */
    h->sending = 0;
    evbuffer_free(buf);
    finish(h, req, status);
}

/* {"error":{"code":..,"message":..,"request_id":..}} as a new string; caller frees. */
/* retry_after: seconds for "retry_after" (the Retry-After header's value), or -1 for none. */
/* A message may echo what the client sent: bytes that are not UTF-8 become U+FFFD. */
static void message_utf8(const char *msg, char *fixed, size_t cap)
{
    size_t len = strlen(msg), pos = 0, out = 0;
    while (pos < len && out + 4 < cap) {
        size_t at = pos;
        uint32_t cp;
        if (rb_text_decode(msg, len, &pos, &cp) == RB_OK && cp != 0) {
            memcpy(fixed + out, msg + at, pos - at);
            out += pos - at;
        } else {
            memcpy(fixed + out, "\xef\xbf\xbd", 3);
            out += 3;
            pos = at + 1;
        }
    }
    fixed[out] = '\0';
}

static char *error_body(const char *code, const char *msg, const char *id,
                        long long retry_after)
{
    char fixed[ERROR_MSG_MAX * 3 + 1];
    message_utf8(msg, fixed, sizeof(fixed));
    json_t *j = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "message", fixed,
                          "request_id", id);
    if (!j)
        rb_fatal("cannot build an error body for code %s", code);
    if (retry_after >= 0)
        json_object_set_new(json_object_get(j, "error"), "retry_after",
                            json_integer(retry_after));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        rb_fatal("out of memory");
    return s;
}

static const struct error_owner *owner_of(const struct rb_http *h, const char *path)
{
    for (size_t i = 0; h && path && i < h->n_owners; i++) {
        const struct error_owner *o = &h->owners[i];
        if (strncmp(path, o->prefix, o->len) == 0 && (path[o->len] == '\0' || path[o->len] == '/'))
            return o;
    }
    return NULL;
}

/* An error answer's body: in the format of the plugin that owns path's prefix
 * (rb_http_error_owner) when there is one and it writes it, else the core's JSON shape.
 * path may be NULL (unknown). A new string; *ctype: its content type (static). */
static char *error_answer(const struct rb_http *h, const char *path, int status,
                          const char *code, const char *msg, const char *id,
                          long long retry_after, const char **ctype)
{
    const struct error_owner *o = owner_of(h, path);
    if (o) {
        char fixed[ERROR_MSG_MAX * 3 + 1];
        message_utf8(msg, fixed, sizeof(fixed));
        char *buf = rb_calloc(1, OWNED_ERROR_MAX);
        const char *ct = NULL;
        int n = o->fn(path, status, fixed, &ct, buf, OWNED_ERROR_MAX, o->arg);
        if (n >= 0 && n < OWNED_ERROR_MAX && ct && strlen(buf) == (size_t)n) {
            *ctype = ct;
            return buf;
        }
        rb_warn(id, "the error writer of %s declined a %d; answered in JSON", o->prefix,
                status);
        free(buf);
    }
    *ctype = "application/json";
    return error_body(code, msg, id, retry_after);
}

/* The SQLSTATE of a database error's text ("... (SQLSTATE 22021)"), or NULL. */
static const char *db_sqlstate(const char *msg)
{
    const char *p = msg ? strstr(msg, "(SQLSTATE ") : NULL;
    return p && strlen(p + 10) >= 5 ? p + 10 : NULL;
}

void rb_http_reply_db_error(struct rb_http_req *req, const char *err, const char *what)
{
    if (!req)
        return;
    const char *state = db_sqlstate(err);
    if (!what)
        what = "not done";
    rb_error(req->id, "database: %s (%s)", err ? err : "(no message)", what);
    if (state && strncmp(state, "22", 2) == 0) {
        rb_http_reply_error(req, 400, "bad_request",
                            "%s: the request holds a value the server cannot store or look up "
                            "(not valid UTF-8 text, or out of range)",
                            what);
        return;
    }
    rb_http_add_header(req, "Retry-After", "1");
    rb_http_reply_error(req, 503, "unavailable", "%s: the database could not do it right now; "
                        "nothing was changed, try again shortly", what);
}

void rb_http_reply_busy(struct rb_http_req *req)
{
    rb_http_add_header(req, "Retry-After", "1");
    rb_http_reply_error(req, 503, "overloaded", "the server is busy; try again in a moment");
}

void rb_http_reply_error(struct rb_http_req *req, int status, const char *code, const char *fmt,
                         ...)
{
    if (!req)
        return;
    char msg[ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *state = db_sqlstate(msg);
    if (state) { /* never the database's own words to a client: they go to the log */
        rb_error(req->id, "database: %s", msg);
        if (strncmp(state, "22", 2) == 0) {
            status = 400;
            code = "bad_request";
            snprintf(msg, sizeof(msg), "the request holds a value the server cannot store or "
                                       "look up (not valid UTF-8 text, or out of range)");
        } else {
            snprintf(msg, sizeof(msg), "the database could not do this right now; nothing was "
                                       "changed, try again shortly (request %s)", req->id);
        }
    }
    /* A Retry-After in seconds set before the error is repeated in the body. */
    const char *ra = req->ev || req->local ? evhttp_find_header(out_headers(req), "Retry-After")
                                           : NULL;
    long long secs = -1;
    if (ra && ra[0] && strlen(ra) <= 9 && strspn(ra, "0123456789") == strlen(ra))
        secs = atoll(ra);
    const char *ctype;
    char *body = error_answer(req->h, req->path, status, code ? code : "error", msg, req->id,
                              secs, &ctype);
    rb_http_reply(req, status, ctype, body, strlen(body));
    free(body);
}

void rb_http_reply_json(struct rb_http_req *req, int status, json_t *body)
{
    if (!req) {
        json_decref(body);
        return;
    }
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        rb_error(req->id, "the handler's answer could not be encoded as JSON");
        rb_http_reply_error(req, 500, "internal_error", "the server could not encode its answer");
        return;
    }
    rb_http_reply(req, status, "application/json", s, strlen(s));
    free(s);
}

/* ---- libevent's own error pages ------------------------------------------------------------
 *
 * libevent answers some requests itself, with an HTML page, before any callback of ours runs:
 * a body over the size limit (413), a malformed request line or header (400), a method it
 * does not know (501), an Expect it does not support (417).
 *
 * The obvious fix - check Content-Length in a header callback installed for each request by
 * evhttp_set_newreqcb() - is not available: evhttp_set_newreqcb() first appeared in libevent
 * 2.2, and Debian bookworm ships 2.1.12 (the symbol is absent from libevent-2.1.so.7). Without
 * it there is no way to reach a server request before its body is read: 2.1 offers no
 * per-request hook, and evhttp_connection has no public accessor for its current request.
 *
 * So we let libevent enforce the limit (evhttp_set_max_body_size, for Content-Length and for
 * chunked bodies alike, so no body above the limit is ever buffered) and rewrite its answer:
 * every connection's bufferevent is made by us (evhttp_set_bevcb), with a callback on its
 * output buffer. libevent writes an error page synchronously (status line, headers, body, all
 * in one call chain), and the socket write happens later from the loop; so when the callback
 * sees a complete response that we did not write ourselves (h->sending is set around our own
 * evhttp_send_reply) with a status of 400 or more, it replaces those bytes with the JSON
 * shape before anything reaches the wire. libevent has already marked such answers
 * "Connection: close" and closes the connection once they are written.
 *
 * With EVHTTP_SERVER_LINGERING_CLOSE, libevent reads and discards an oversized body (up to its
 * declared Content-Length, never buffering it) before answering 413, so a client that sends
 * the whole body before reading gets the 413 instead of a connection reset. A client that
 * sent "Expect: 100-continue" gets no "100 Continue" and the 413 after its body. */

static const char *libevent_error_code(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 413:
        return "payload_too_large";
    case 431:
        return "header_too_large";
    case 417:
        return "expectation_failed";
    case 501:
        return "not_implemented";
    default:
        return status >= 500 ? "internal_error" : "bad_request";
    }
}

static void libevent_error_message(const struct rb_http *h, int status, char *buf, size_t cap)
{
    switch (status) {
    case 413:
        snprintf(buf, cap, "the request body is larger than the limit of %zu bytes", h->max_body);
        break;
    case 501:
        snprintf(buf, cap, "this HTTP method is not supported");
        break;
    case 431:
        snprintf(buf, cap, "the request line and headers are larger than the limit of %zu bytes",
                 h->lim.max_header_bytes);
        break;
    case 417:
        snprintf(buf, cap, "only \"Expect: 100-continue\" is supported");
        break;
    default:
        snprintf(buf, cap, "the request is not valid HTTP/1.1 (status %d)", status);
        break;
    }
}

/* Value of header name (followed by ':') within head[0..len), or -1. */
static long head_number(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 3 < len; i++)
        if (head[i] == '\n' && strncasecmp(head + i + 1, name, nl) == 0 && head[i + 1 + nl] == ':')
            return strtol(head + i + 2 + nl, NULL, 10);
    return -1;
}

static void rewrite_libevent_error(struct rb_http *h, struct rb_http_conn *c, struct evbuffer *buf)
{
    size_t len = evbuffer_get_length(buf);
    if (len < 16 || len > REWRITE_MAX)
        return;
    const char *p = (const char *)evbuffer_pullup(buf, -1);
    size_t pos = 0;
    while (pos < len) {
        const char *head = p + pos;
        const char *end = memmem(head, len - pos, "\r\n\r\n", 4);
        if (!end)
            return; /* not complete yet */
        size_t head_len = (size_t)(end - head) + 4;
        if (head_len < 13 || memcmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
            return; /* not something we recognise: leave it alone */
        int status = atoi(head + 9);
        if (status < 200) { /* "100 Continue", no body */
            pos += head_len;
            continue;
        }
        long cl = head_number(head, head_len, "Content-Length");
        if (cl < 0)
            cl = 0;
        if (len - pos < head_len + (size_t)cl)
            return; /* body not added yet */
        if (len - pos != head_len + (size_t)cl || status < 400)
            return;

        char id[17], msg[256];
        new_request_id(h, id);
        if (status == 400 && rb_http_conn_head_too_big(c))
            status = 431; /* libevent's header limit: it says 400 for every bad head */
        libevent_error_message(h, status, msg, sizeof(msg));
        char path[1024];
        const char *ctype;
        char *body = error_answer(h, rb_http_conn_path(c, path, sizeof(path)), status,
                                  libevent_error_code(status), msg, id, -1, &ctype);
        const char *eol = memchr(head, '\r', head_len);
        struct evbuffer *tmp = evbuffer_new();
        if (!tmp)
            rb_fatal("out of memory");
        evbuffer_add(tmp, p, pos); /* a "100 Continue" still waiting to be written */
        if (status == 431)
            evbuffer_add_printf(tmp, "HTTP/1.1 431 Request Header Fields Too Large");
        else
            evbuffer_add(tmp, head, (size_t)(eol - head));
        evbuffer_add_printf(tmp,
                            "\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\nServer: rabta\r\nX-Request-Id: %s\r\n\r\n%s",
                            ctype, strlen(body), id, body);
        h->rewriting = 1;
        /* A socket bufferevent keeps the start of its output frozen (only its own writer
         * drains it); we are not inside that writer, so thaw it for this one drain. */
        if (evbuffer_drain(buf, len) != 0) {
            evbuffer_unfreeze(buf, 1);
            evbuffer_drain(buf, len);
            evbuffer_freeze(buf, 1);
        }
        if (evbuffer_get_length(buf) == 0)
            evbuffer_add_buffer(buf, tmp);
        else
            rb_warn(id, "could not replace libevent's %d page; it goes out as HTML", status);
        h->rewriting = 0;
        evbuffer_free(tmp);
        free(body);
        rb_metrics_http(h->metrics, "unmatched", "OTHER", status, 0);
        rb_debug(id, "libevent answered %d by itself; sent as JSON (%s)", status, msg);
        return;
    }
}

static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct rb_http_conn *c = arg;
    struct rb_http *h = rb_http_conn_owner(c);
    if (info->n_added == 0 || h->sending || h->rewriting)
        return;
    rewrite_libevent_error(h, c, buf);
}

/* The whole answer for a connection cut off by http_conn.c (408, 503); caller frees. */
static char *cut_page(void *owner, int status, const char *path)
{
    struct rb_http *h = owner;
    char id[17];
    new_request_id(h, id);
    int late = status == 408;
    const char *ctype;
    char *body = error_answer(h, path, status, late ? "request_timeout" : "overloaded",
                              late ? "the request did not arrive in time; the connection is "
                                     "closed"
                                   : "the server has too many connections; try again shortly",
                              id, late ? -1 : 1, &ctype);
    size_t cap = strlen(body) + strlen(ctype) + 256;
    char *page = rb_calloc(1, cap);
    snprintf(page, cap,
             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n%sServer: rabta\r\nX-Request-Id: %s\r\n\r\n%s",
             status, late ? "Request Timeout" : "Service Unavailable", ctype, strlen(body),
             late ? "" : "Retry-After: 1\r\n", id, body);
    free(body);
    rb_metrics_http(h->metrics, "unmatched", "OTHER", status, 0);
    return page;
}

/* evhttp_set_bevcb: the bufferevent for a new connection, tracked by http_conn.c and with our
 * output hook. Options 0, as libevent uses itself: evhttp_connection_free closes the socket. */
static struct bufferevent *make_bufferevent(struct event_base *base, void *arg)
{
    struct rb_http *h = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    if (bev)
        rb_http_conn_open(h->conns, bev, on_output);
    return bev; /* NULL: libevent makes a plain one */
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static void dispatch(struct rb_http *h, struct rb_http_req *req);

/* The client behind a trusted proxy: the rightmost X-Forwarded-For address that is not
 * itself a trusted proxy (every header of that name, in order, read as one list). */
static void forwarded_client(struct rb_http *h, struct rb_http_req *req,
                             const struct evkeyvalq *hdrs)
{
    if (!h->n_proxies || !rb_cidr_match(h->proxies, h->n_proxies, req->peer))
        return;
    char found[64] = "";
    const struct evkeyval *kv;
    TAILQ_FOREACH(kv, hdrs, next)
    {
        if (strcasecmp(kv->key, "X-Forwarded-For") != 0)
            continue;
        const char *p = kv->value;
        while (*p) { /* keep the last address not a proxy's; stop at one that is no address */
            size_t n = strcspn(p, ",");
            char one[64];
            const char *b = p, *e = p + n;
            while (b < e && (*b == ' ' || *b == '\t'))
                b++;
            while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            unsigned char key[RB_ADDR_KEY_LEN];
            if ((size_t)(e - b) >= sizeof(one))
                break;
            memcpy(one, b, (size_t)(e - b));
            one[e - b] = '\0';
            if (rb_addr_key(one, key) != RB_OK)
                break;
            if (!rb_cidr_match(h->proxies, h->n_proxies, one))
                memcpy(found, one, sizeof(found));
            p += n + (p[n] == ',');
        }
    }
    if (found[0])
        memcpy(req->peer, found, sizeof(req->peer));
}

/* The checks on a request's head before routing (RFC 9112: one Content-Length, not with
 * Transfer-Encoding; Host in HTTP/1.1) and on the server's limits. 1 when it was answered. */
static int refuse_head(struct rb_http *h, struct rb_http_req *req, struct rb_http_conn *c)
{
    struct evhttp_request *ev = req->ev;
    if (rb_http_conn_over(c) && strcmp(req->path, "/healthz") != 0) {
        rb_http_add_header(req, "Connection", "close");
        rb_http_add_header(req, "Retry-After", "1");
        rb_http_reply_error(req, 503, "overloaded",
                            "the server has too many connections; try again shortly");
        return 1;
    }
    const struct evkeyvalq *hdrs = evhttp_request_get_input_headers(ev);
    size_t n = 0, n_cl = 0;
    const char *cl = NULL;
    int te = 0, host = 0, cl_differ = 0;
    const struct evkeyval *kv;
    TAILQ_FOREACH(kv, hdrs, next)
    {
        n++;
        char k = (char)(kv->key[0] | 0x20); /* only these three names matter here */
        if (k != 'c' && k != 't' && k != 'h')
            continue;
        if (strcasecmp(kv->key, "Content-Length") == 0) {
            cl_differ |= cl && strcmp(cl, kv->value) != 0;
            cl = kv->value;
            n_cl++;
        } else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
            te = 1;
        } else if (strcasecmp(kv->key, "Host") == 0) {
            host++;
        }
    }
    const char *why = NULL;
    int status = 400;
    if (h->lim.max_headers && n > h->lim.max_headers) {
        why = "too many header lines";
        status = 431;
    } else if (cl_differ)
        why = "two different Content-Length headers";
    else if (n_cl && te)
        why = "both Content-Length and Transfer-Encoding";
    else if (host > 1 || (!host && ev->major == 1 && ev->minor >= 1))
        why = host ? "more than one Host header" : "no Host header (HTTP/1.1 requires one)";
    if (why) {
        rb_http_add_header(req, "Connection", "close");
        if (status == 431)
            rb_http_reply_error(req, 431, "header_too_large",
                                "the request has %zu header lines; the limit is %zu", n,
                                h->lim.max_headers);
        else
            rb_http_reply_error(req, 400, "bad_request", "the request has %s", why);
        return 1;
    }
    forwarded_client(h, req, hdrs);
    return 0;
}

/* 429 with Retry-After: wait seconds, rounded up. */
static void reply_rate_limited(struct rb_http_req *req, double wait)
{
    char ra[24];
    long long secs = (long long)wait + ((double)(long long)wait < wait);
    snprintf(ra, sizeof(ra), "%lld", secs);
    rb_http_add_header(req, "Retry-After", ra);
    rb_http_reply_error(req, 429, "rate_limited",
                        "too many requests from your address; try again in %lld second%s", secs,
                        secs == 1 ? "" : "s");
}

/* The route's own limits (body size, rate per client) and the server's bound on the bytes
 * held by unanswered requests. 1 when it was answered, 2 when the shared rate was asked
 * (rb_http_rate_done runs the handler or answers), 0 when the handler may run now. */
static int refuse_for_route(struct rb_http *h, struct rb_http_req *req, const struct route *r,
                            struct route_entry *e, size_t body_len)
{
    if (e->limit_gen != h->limits_gen) { /* look the route's limits up once per change */
        e->limit = -1;
        for (size_t i = 0; i < h->n_route_limits; i++) {
            const char *sp = strchr(h->route_limits[i].route, ' ');
            unsigned m = 0;
            for (size_t k = 0; sp && k < RB_ARRAY_LEN(methods_tab); k++)
                if (strlen(methods_tab[k].name) == (size_t)(sp - h->route_limits[i].route) &&
                    strncmp(methods_tab[k].name, h->route_limits[i].route,
                            (size_t)(sp - h->route_limits[i].route)) == 0)
                    m = methods_tab[k].m;
            if ((m & e->methods) && strcmp(sp + 1, r->pattern) == 0)
                e->limit = (int)i;
        }
        e->limit_gen = h->limits_gen;
    }
    const struct route_limit *rl = e->limit >= 0 ? &h->route_limits[e->limit] : NULL;
    if (rl && rl->max_body && body_len > rl->max_body) {
        rb_http_reply_error(req, 413, "payload_too_large",
                            "request body is %zu bytes; the limit here is %zu", body_len,
                            rl->max_body);
        return 1;
    }
    unsigned char key[RB_ADDR_KEY_LEN];
    int limited = rl && rl->per_second > 0 &&
                  !(rl->anonymous_only && rb_http_req_header(req, "Authorization")) &&
                  rb_addr_key(req->peer, key) == RB_OK;
    if (limited) { /* the fast path: a flood is refused here without asking the database */
        double wait = rb_ratelimit_take(h->rl, (unsigned)e->limit, rl->per_second, rl->burst,
                                        key, req->started);
        if (wait > 0) {
            reply_rate_limited(req, wait);
            return 1;
        }
    }
    if (body_len && h->lim.max_pending_bytes &&
        h->pending_bytes + body_len > h->lim.max_pending_bytes) {
        rb_http_add_header(req, "Retry-After", "1");
        rb_http_reply_error(req, 503, "overloaded",
                            "the server is holding too many requests; try again shortly");
        return 1;
    }
    req->body_bytes = body_len;
    h->pending_bytes += body_len;
    if (limited && h->shared_rate) { /* the same rate, counted by every process */
        req->waiting = e;
        if (h->shared_rate(req, rl->route, rl->per_second, rl->burst, key,
                           h->shared_rate_arg) != RB_OK) {
            req->waiting = NULL;
            rb_http_add_header(req, "Retry-After", "1");
            rb_http_reply_error(req, 503, "unavailable",
                                "the server is overloaded; try again shortly");
            return 1;
        }
        return 2;
    }
    return 0;
}

void rb_http_set_shared_rate(struct rb_http *h, rb_http_rate_fn fn, void *arg)
{
    if (!h)
        return;
    h->shared_rate = fn;
    h->shared_rate_arg = arg;
}

void rb_http_rate_done(struct rb_http_req *req, double wait)
{
    const struct route_entry *e = req->waiting;
    req->waiting = NULL;
    if (!e || !req->h) { /* the server was freed while the request waited */
        rb_http_reply_error(req, 503, "unavailable", "the server is shutting down");
    } else if (wait > 0) {
        reply_rate_limited(req, wait);
    } else if (wait < 0) {
        rb_http_add_header(req, "Retry-After", "1");
        rb_http_reply_error(req, 503, "unavailable",
                            "the server cannot check how often you asked; try again shortly");
    } else {
        e->fn(req, e->arg); /* req may be freed from here on */
    }
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    struct rb_http *h = arg;
    struct rb_http_req *req = rb_calloc(1, sizeof(*req));
    req->h = h;
    req->ev = ev;
    req->started = rb_now_mono();
    new_request_id(h, req->id);
    req->method = method_from_ev(evhttp_request_get_command(ev));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    req->path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!req->path || !*req->path)
        req->path = "/";
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    if (evcon) {
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evcon, &addr, &port);
        snprintf(req->peer, sizeof(req->peer), "%s", addr ? addr : "");
    }
    req->next = h->pending;
    if (h->pending)
        h->pending->prev = req;
    h->pending = req;
    h->inflight++;
    struct rb_http_conn *c = rb_http_conn_of(h->conns, ev);
    rb_http_conn_busy(c);

    if (!req->method) {
        rb_http_reply_error(req, 501, "not_implemented", "this HTTP method is not supported");
        return;
    }
    size_t body_len = evbuffer_get_length(evhttp_request_get_input_buffer(ev));
    if (body_len > h->max_body) { /* libevent enforces this already; a backstop */
        rb_http_add_header(req, "Connection", "close");
        rb_http_reply_error(req, 413, "payload_too_large",
                            "request body is %zu bytes; the limit is %zu", body_len, h->max_body);
        return;
    }
    if (refuse_head(h, req, c))
        return;
    dispatch(h, req);
}

/* Matches req's path to a route and calls its handler, or answers 400/404/405/413/429/503:
 * every request, from a socket or made inside the process (rb_http_local), passes here, so
 * the routes' limits hold for both. */
static void dispatch(struct rb_http *h, struct rb_http_req *req)
{
    const struct evhttp_uri *uri =
        req->local ? req->local->uri : evhttp_request_get_evhttp_uri(req->ev);
    size_t body_len = req->local ? req->local->len
                                 : evbuffer_get_length(evhttp_request_get_input_buffer(req->ev));
    /* The query is parsed now, so that a malformed one is refused rather than read as empty
     * (a filter must not silently vanish); an encoded NUL would cut a value short. */
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (q && *q) {
        TAILQ_INIT(&req->query);
        req->query_state = 1;
        if (strstr(q, "%00") || evhttp_parse_query_str(q, &req->query) != 0) {
            rb_http_reply_error(req, 400, "bad_request",
                                "the query string is malformed: use name=value pairs joined "
                                "by &, with %%XX escapes (no %%00)");
            return;
        }
    }
    struct match m;
    enum match_result r = route_match(h, req->path, req->method, &m);
    switch (r) {
    case MATCH_OK: {
        int refused = refuse_for_route(h, req, m.route, (struct route_entry *)m.entry, body_len);
        if (refused == 1) {
            match_clear(&m);
            return;
        }
        req->route = m.route;
        req->values = rb_calloc(m.n ? m.n : 1, sizeof(char *));
        req->nvalues = m.n;
        for (size_t i = 0; i < m.n; i++) { /* keep the values of the parameters */
            if (m.route->is_param[i]) {
                req->values[i] = m.decoded[i];
                m.decoded[i] = NULL;
            }
        }
        match_clear(&m);
        if (refused == 0)
            m.entry->fn(req, m.entry->arg); /* req may be freed from here on */
        return;
    }
    case MATCH_BAD_METHOD: {
        char allow[96];
        allow_header(m.allow, allow, sizeof(allow));
        match_clear(&m);
        rb_http_add_header(req, "Allow", allow);
        rb_http_reply_error(req, 405, "method_not_allowed", "%s is not allowed on %s; use %s",
                            method_name(req->method), req->path, allow);
        return;
    }
    case MATCH_BAD_PATH:
        match_clear(&m);
        rb_http_reply_error(req, 400, "bad_request", "the path holds an encoded NUL byte");
        return;
    case MATCH_NOT_FOUND:
    default:
        match_clear(&m);
        rb_http_reply_error(req, 404, "not_found", "nothing here: %s", req->path);
        return;
    }
}

/* ---- the server object --------------------------------------------------------------------- */

struct rb_http *rb_http_new(struct event_base *base, struct rb_metrics *m)
{
    if (!base)
        return NULL;
    if (sodium_init() < 0)
        rb_fatal("libsodium could not be initialised");
    struct rb_http *h = rb_calloc(1, sizeof(*h));
    h->base = base;
    h->metrics = m;
    h->evh = evhttp_new(base);
    if (!h->evh)
        rb_fatal("out of memory creating the HTTP server");
    h->max_body = 1024 * 1024;
    evhttp_set_max_body_size(h->evh, (ev_ssize_t)h->max_body);
    evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                           EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                           EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
    evhttp_set_flags(h->evh, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_default_content_type(h->evh, "application/json");
    h->conns = rb_http_conns_new(base, cut_page, h);
    h->rl = rb_ratelimit_new(1u << 16);
    h->limits_gen = 1;
    struct rb_http_limits lim = {0};
    rb_http_set_limits(h, &lim);
    evhttp_set_bevcb(h->evh, make_bufferevent, h);
    evhttp_set_gencb(h->evh, on_request, h);
    return h;
}

void rb_http_free(struct rb_http *h)
{
    if (!h)
        return;
    /* Unanswered requests become orphans: evhttp_free frees their evhttp_requests. */
    for (struct rb_http_req *r = h->pending; r; r = r->next) {
        r->h = NULL;
        r->ev = NULL;
        r->route = NULL;
        r->path = ""; /* it pointed into the evhttp_request */
    }
    if (h->pending)
        rb_warn("http", "%zu request%s still unanswered at shutdown", h->inflight,
                h->inflight == 1 ? "" : "s");
    evhttp_free(h->evh); /* closes every connection: h->conns is empty afterwards */
    rb_http_conns_free(h->conns);
    rb_ratelimit_free(h->rl);
    for (size_t i = 0; i < h->n_route_limits; i++)
        free(h->route_limits[i].route);
    free(h->route_limits);
    free(h->proxies);
    for (size_t i = 0; i < h->n_owners; i++)
        free(h->owners[i].prefix);
    free(h->owners);
    free(h->bound);
    for (size_t i = 0; i < h->n_routes; i++)
        route_clear(&h->routes[i]);
    free(h->routes);
    free(h);
}

void rb_http_set_max_body(struct rb_http *h, size_t bytes)
{
    if (!h)
        return;
    h->max_body = bytes;
    /* New connections take the new limit; libevent copies it at accept. */
    evhttp_set_max_body_size(h->evh, (ev_ssize_t)bytes);
}

void rb_http_set_timeout(struct rb_http *h, double seconds)
{
    if (!h)
        return;
    if (seconds <= 0) {
        evhttp_set_timeout_tv(h->evh, NULL);
        return;
    }
    struct timeval tv;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    evhttp_set_timeout_tv(h->evh, &tv);
}

void rb_http_set_limits(struct rb_http *h, const struct rb_http_limits *lim)
{
    if (!h || !lim)
        return;
    h->lim = *lim;
    /* libevent's own limit keeps a never-ending head from growing the input buffer; past it
     * libevent answers 400, which the output hook turns into 431. */
    evhttp_set_max_headers_size(h->evh, lim->max_header_bytes ? (ev_ssize_t)lim->max_header_bytes
                                                               : EV_SSIZE_MAX);
    rb_http_conns_set_limits(h->conns, lim);
}

void rb_http_set_route_limits(struct rb_http *h, const struct rb_http_route_limit *lims,
                              size_t n)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_route_limits; i++)
        free(h->route_limits[i].route);
    free(h->route_limits);
    h->route_limits = n ? rb_calloc(n, sizeof(struct route_limit)) : NULL;
    h->n_route_limits = n;
    for (size_t i = 0; i < n; i++)
        h->route_limits[i] = (struct route_limit){rb_strdup(lims[i].route), lims[i].max_body,
                                                  lims[i].per_second, lims[i].burst,
                                                  lims[i].anonymous_only};
    if (++h->limits_gen == 0)
        h->limits_gen = 1;
}

void rb_http_set_trusted_proxies(struct rb_http *h, const struct rb_cidr *list, size_t n)
{
    if (!h)
        return;
    free(h->proxies);
    h->proxies = n ? rb_calloc(n, sizeof(*list)) : NULL;
    if (n)
        memcpy(h->proxies, list, n * sizeof(*list));
    h->n_proxies = n;
}

int rb_http_error_owner(struct rb_http *h, const char *prefix, rb_http_error_fn fn, void *arg)
{
    size_t len = prefix ? strlen(prefix) : 0;
    if (!h || !fn || len < 2 || prefix[0] != '/' || prefix[len - 1] == '/' ||
        strcspn(prefix, "?# ") != len)
        return RB_EINVAL;
    for (size_t i = 0; i < h->n_owners; i++)
        if (strcmp(h->owners[i].prefix, prefix) == 0)
            return RB_EEXIST;
    h->owners = rb_realloc(h->owners, (h->n_owners + 1) * sizeof(*h->owners));
    h->owners[h->n_owners++] = (struct error_owner){rb_strdup(prefix), len, fn, arg};
    return RB_OK;
}

double rb_http_rate(struct rb_http *h, const char *scope, const char *key, double per_second,
                    int burst, int take)
{
    if (!h || !scope || !key)
        return 0;
    /* The table's keys are address keys; family byte 0xff marks a hashed text key. */
    unsigned char k[RB_ADDR_KEY_LEN], dig[crypto_generichash_BYTES_MIN];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(dig));
    crypto_generichash_update(&st, (const unsigned char *)scope, strlen(scope) + 1);
    crypto_generichash_update(&st, (const unsigned char *)key, strlen(key));
    crypto_generichash_final(&st, dig, sizeof(dig));
    k[0] = 0xff;
    memcpy(k + 1, dig, RB_ADDR_KEY_LEN - 1);
    const unsigned rule = 0x80000000u; /* apart from the route rules (their indexes) */
    double now = rb_now_mono();
    return take ? rb_ratelimit_take(h->rl, rule, per_second, burst, k, now)
                : rb_ratelimit_peek(h->rl, rule, per_second, burst, k, now);
}

size_t rb_http_connections(const struct rb_http *h)
{
    return h ? rb_http_conns_open(h->conns) : 0;
}

size_t rb_http_pending_bytes(const struct rb_http *h)
{
    return h ? h->pending_bytes : 0;
}

int rb_http_listen_fd(struct rb_http *h, int fd)
{
    if (!h || fd < 0)
        return RB_ERR;
    if (listen(fd, LISTEN_BACKLOG) != 0) { /* harmless if it listens already */
        rb_error("http", "listen on socket %d: %s", fd, strerror(errno));
        return RB_ERR;
    }
    if (evutil_make_socket_nonblocking(fd) != 0 || evutil_make_socket_closeonexec(fd) != 0) {
        rb_error("http", "cannot make socket %d non-blocking: %s", fd, strerror(errno));
        return RB_ERR;
    }
    struct evhttp_bound_socket *b = evhttp_accept_socket_with_handle(h->evh, fd);
    if (!b) {
        rb_error("http", "cannot accept on socket %d", fd);
        return RB_ERR;
    }
    h->bound = rb_realloc(h->bound, (h->n_bound + 1) * sizeof(*h->bound));
    h->bound[h->n_bound++] = b;
    if (h->n_bound == 1) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        h->port = 0;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET)
                h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    return RB_OK;
}

int rb_http_listen(struct rb_http *h, const char *addr, int port)
{
    if (!h || port < 0 || port > 65535)
        return RB_ERR;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(addr && *addr ? addr : NULL, portstr, &hints, &res);
    if (gai != 0) {
        rb_error("http", "cannot resolve listen address %s: %s", addr ? addr : "*",
                 gai_strerror(gai));
        return RB_ERR;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rb_error("http", "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return RB_ERR;
    }
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
        rb_error("http", "setsockopt(SO_REUSEADDR/SO_REUSEPORT): %s", strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return RB_ERR;
    }
    /* Answers are written whole; without TCP_NODELAY (inherited by accepted sockets on
     * Linux) a reply leaving in two segments waits for the client's delayed ACK: ~40 ms. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0)
        rb_warn("http", "setsockopt(TCP_NODELAY): %s", strerror(errno));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        int e = errno;
        rb_error("http", "cannot listen on %s:%d: %s", addr ? addr : "*", port, strerror(e));
        close(fd);
        freeaddrinfo(res);
        return RB_ERR;
    }
    freeaddrinfo(res);
    if (rb_http_listen_fd(h, fd) != RB_OK) {
        close(fd);
        return RB_ERR;
    }
    return RB_OK;
}

int rb_http_bound_port(const struct rb_http *h)
{
    return h && h->n_bound ? h->port : 0;
}

void rb_http_stop_accepting(struct rb_http *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_bound; i++)
        evhttp_del_accept_socket(h->evh, h->bound[i]); /* closes the listening socket */
    h->n_bound = 0;
    h->draining = 1;
}

size_t rb_http_inflight(const struct rb_http *h)
{
    return h ? h->inflight : 0;
}

/* ---- request accessors ------------------------------------------------------------------- */

enum rb_http_method rb_http_req_method(struct rb_http_req *req)
{
    return req ? req->method : 0;
}

const char *rb_http_req_path(struct rb_http_req *req)
{
    return req ? req->path : NULL;
}

const char *rb_http_req_param(struct rb_http_req *req, const char *name)
{
    if (!req || !req->route || !name)
        return NULL;
    for (size_t i = 0; i < req->route->nsegs && i < req->nvalues; i++)
        if (req->route->is_param[i] && strcmp(req->route->segs[i], name) == 0)
            return req->values[i];
    return NULL;
}

/* A non-empty query string was parsed (and a malformed one refused with 400) before the
 * handler ran. */
const char *rb_http_req_query(struct rb_http_req *req, const char *name)
{
    if (!req || !req->h || !name)
        return NULL;
    if (req->query_state == 0) {
        const struct evhttp_uri *uri =
            req->local ? req->local->uri : evhttp_request_get_evhttp_uri(req->ev);
        const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
        req->query_state = evhttp_parse_query_str(q ? q : "", &req->query) == 0 ? 1 : -1;
    }
    return req->query_state == 1 ? evhttp_find_header(&req->query, name) : NULL;
}

const char *rb_http_req_header(struct rb_http_req *req, const char *name)
{
    if (!req || !req->h || !name)
        return NULL;
    return evhttp_find_header(in_headers(req), name);
}

const char *rb_http_req_body(struct rb_http_req *req, size_t *len)
{
    if (len)
        *len = 0;
    if (!req || !req->h)
        return "";
    if (req->local) {
        if (len)
            *len = req->local->len;
        return req->local->body;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req->ev);
    size_t n = evbuffer_get_length(in);
    if (len)
        *len = n;
    if (n == 0)
        return "";
    return (const char *)evbuffer_pullup(in, -1);
}

const char *rb_http_req_id(struct rb_http_req *req)
{
    return req ? req->id : "";
}

const char *rb_http_req_peer(struct rb_http_req *req)
{
    return req ? req->peer : "";
}

/* "application/json", optionally with parameters; a charset other than utf-8 is refused. */
static int json_content_type(const char *ct)
{
    static const char mt[] = "application/json";
    if (!ct)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, mt, sizeof(mt) - 1) != 0)
        return 0;
    const char *p = ct + sizeof(mt) - 1;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0')
        return 1;
    if (*p != ';')
        return 0;
    const char *cs = strcasestr(p, "charset=");
    if (!cs)
        return 1;
    cs += 8;
    if (*cs == '"')
        cs++;
    return strncasecmp(cs, "utf-8", 5) == 0 && (cs[5] == '\0' || cs[5] == '"' || cs[5] == ';' ||
                                                cs[5] == ' ');
}

json_t *rb_http_req_json(struct rb_http_req *req)
{
    if (!req)
        return NULL;
    const char *ct = rb_http_req_header(req, "Content-Type");
    if (!json_content_type(ct)) {
        rb_http_reply_error(req, 415, "unsupported_media_type",
                            "the body must be sent as Content-Type: application/json, not %s",
                            ct ? ct : "(none)");
        return NULL;
    }
    size_t len;
    const char *body = rb_http_req_body(req, &len);
    json_error_t err;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        rb_http_reply_error(req, 400, "invalid_json",
                            "the body is not valid JSON: %s at line %d, column %d", err.text,
                            err.line, err.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        rb_http_reply_error(req, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ---- requests from inside the process ------------------------------------------------------ */

int rb_http_local(struct rb_http *h, enum rb_http_method method, const char *uri,
                  const char *const *headers, const char *body, size_t len, const char *peer,
                  rb_http_local_fn fn, void *arg)
{
    if (!h || !uri || uri[0] != '/' || !fn || !method_name(method) ||
        strcmp(method_name(method), "OTHER") == 0 || len > h->max_body)
        return RB_EINVAL;
    struct evhttp_uri *u = evhttp_uri_parse(uri);
    if (!u)
        return RB_EINVAL;
    struct rb_http_req *req = rb_calloc(1, sizeof(*req));
    struct local *l = rb_calloc(1, sizeof(*l));
    TAILQ_INIT(&l->in);
    TAILQ_INIT(&l->out);
    l->uri = u;
    l->fn = fn;
    l->arg = arg;
    l->body = rb_malloc(len + 1);
    if (len)
        memcpy(l->body, body, len);
    l->body[len] = '\0';
    l->len = len;
    req->local = l;
    for (size_t i = 0; headers && headers[i]; i++) {
        const char *colon = strchr(headers[i], ':');
        if (!colon || colon == headers[i] || (size_t)(colon - headers[i]) >= 128) {
            req_free(req);
            return RB_EINVAL;
        }
        char name[128];
        memcpy(name, headers[i], (size_t)(colon - headers[i]));
        name[colon - headers[i]] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        if (evhttp_add_header(&l->in, name, v) != 0) {
            req_free(req);
            return RB_EINVAL;
        }
    }
    req->h = h;
    req->started = rb_now_mono();
    new_request_id(h, req->id);
    req->method = method;
    req->path = evhttp_uri_get_path(u);
    if (!req->path || !*req->path)
        req->path = "/";
    snprintf(req->peer, sizeof(req->peer), "%s", peer ? peer : "");
    req->next = h->pending;
    if (h->pending)
        h->pending->prev = req;
    h->pending = req;
    h->inflight++;
    dispatch(h, req);
    return RB_OK;
}
