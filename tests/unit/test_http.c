/* HTTP layer: route matching (literal over parameter, trailing slashes, URL-decoded
 * parameters, 405 against 404, duplicates, bad patterns), the JSON error shape, and a real
 * server on 127.0.0.1 driven by a client thread with raw sockets: 200, 404, 405, 413 for a
 * 2 MiB body, 415, 400 for bad JSON, query arguments, a deferred answer, a client that leaves
 * before its deferred answer, SO_REUSEPORT, an inherited socket, stop_accepting, and the
 * errors of a prefix with an owner (rb_http_error_owner) in its writer's format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "../../core/net/http.c"

static void nop_handler(struct rb_http_req *req, void *arg)
{
    (void)req;
    (void)arg;
}

static void other_handler(struct rb_http_req *req, void *arg)
{
    (void)req;
    (void)arg;
}

/* ---- route table, no I/O --------------------------------------------------------------- */

struct table {
    struct event_base *base;
    struct rb_http *h;
};

static int table_setup(void **state)
{
    struct table *t = calloc(1, sizeof(*t));
    t->base = event_base_new();
    t->h = rb_http_new(t->base, NULL);
    *state = t;
    return 0;
}

static int table_teardown(void **state)
{
    struct table *t = *state;
    rb_http_free(t->h);
    event_base_free(t->base);
    free(t);
    return 0;
}

static enum match_result match(struct rb_http *h, const char *path, unsigned method,
                               const char **pattern, rb_http_fn *fn, unsigned *allow)
{
    struct match m;
    enum match_result r = route_match(h, path, method, &m);
    if (pattern)
        *pattern = r == MATCH_OK ? m.route->pattern : NULL;
    if (fn)
        *fn = r == MATCH_OK ? m.entry->fn : NULL;
    if (allow)
        *allow = m.allow;
    match_clear(&m);
    return r;
}

static void literal_beats_param_whatever_the_order(void **state)
{
    struct table *t = *state;
    const char *pat;
    rb_http_fn fn;
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/cases/:id", nop_handler, NULL), RB_OK);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/cases/new", other_handler, NULL), RB_OK);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/:a/stats", nop_handler, NULL), RB_OK);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/cases/:id/stats", nop_handler, NULL),
                     RB_OK);

    assert_int_equal(match(t->h, "/cases/new", RB_HTTP_GET, &pat, &fn, NULL), MATCH_OK);
    assert_string_equal(pat, "/cases/new");
    assert_ptr_equal(fn, other_handler);
    assert_int_equal(match(t->h, "/cases/42", RB_HTTP_GET, &pat, &fn, NULL), MATCH_OK);
    assert_string_equal(pat, "/cases/:id");
    assert_ptr_equal(fn, nop_handler);
    /* The first differing position decides: "cases" (literal) beats ":a". */
    assert_int_equal(match(t->h, "/cases/stats", RB_HTTP_GET, &pat, NULL, NULL), MATCH_OK);
    assert_string_equal(pat, "/cases/:id");
    assert_int_equal(match(t->h, "/x/stats", RB_HTTP_GET, &pat, NULL, NULL), MATCH_OK);
    assert_string_equal(pat, "/:a/stats");
}

static void literal_wins_when_registered_after_param(void **state)
{
    struct table *t = *state;
    const char *pat;
    /* Registered literal-first this time: the result must not depend on order. */
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/cases/new", other_handler, NULL), RB_OK);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/cases/:id", nop_handler, NULL), RB_OK);
    assert_int_equal(match(t->h, "/cases/new", RB_HTTP_GET, &pat, NULL, NULL), MATCH_OK);
    assert_string_equal(pat, "/cases/new");
}

static void trailing_slash_and_empty_segments_do_not_match(void **state)
{
    struct table *t = *state;
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/healthz", nop_handler, NULL), RB_OK);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/cases/:id", nop_handler, NULL), RB_OK);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/", other_handler, NULL), RB_OK);
    assert_int_equal(match(t->h, "/healthz", RB_HTTP_GET, NULL, NULL, NULL), MATCH_OK);
    assert_int_equal(match(t->h, "/healthz/", RB_HTTP_GET, NULL, NULL, NULL), MATCH_NOT_FOUND);
    assert_int_equal(match(t->h, "//healthz", RB_HTTP_GET, NULL, NULL, NULL), MATCH_NOT_FOUND);
    assert_int_equal(match(t->h, "/cases/", RB_HTTP_GET, NULL, NULL, NULL), MATCH_NOT_FOUND);
    assert_int_equal(match(t->h, "/cases//", RB_HTTP_GET, NULL, NULL, NULL), MATCH_NOT_FOUND);
    rb_http_fn fn;
    assert_int_equal(match(t->h, "/", RB_HTTP_GET, NULL, &fn, NULL), MATCH_OK);
    assert_ptr_equal(fn, other_handler);
}

static void params_are_url_decoded_after_splitting(void **state)
{
    struct table *t = *state;
    assert_int_equal(
        rb_http_route(t->h, RB_HTTP_GET, "/cases/:id/notes/:note", nop_handler, NULL), RB_OK);
    struct match m;
    assert_int_equal(route_match(t->h, "/cases/a%20b/notes/x%2Fy+z", RB_HTTP_GET, &m), MATCH_OK);
    assert_int_equal(m.n, 4);
    assert_string_equal(m.decoded[1], "a b");
    assert_string_equal(m.decoded[3], "x/y+z"); /* %2F stays in its segment; '+' is literal */
    match_clear(&m);
    /* Literals are compared decoded too. */
    assert_int_equal(match(t->h, "/c%61ses/1/notes/2", RB_HTTP_GET, NULL, NULL, NULL), MATCH_OK);
    /* An encoded NUL is refused rather than truncated. */
    assert_int_equal(match(t->h, "/cases/a%00b/notes/1", RB_HTTP_GET, NULL, NULL, NULL),
                     MATCH_BAD_PATH);
}

static void wrong_method_is_405_unknown_path_is_404(void **state)
{
    struct table *t = *state;
    unsigned allow = 0;
    const char *pat;
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET | RB_HTTP_POST, "/x", nop_handler, NULL),
                     RB_OK);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_POST, "/cases/new", nop_handler, NULL), RB_OK);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/cases/:id", other_handler, NULL), RB_OK);

    assert_int_equal(match(t->h, "/x", RB_HTTP_DELETE, NULL, NULL, &allow), MATCH_BAD_METHOD);
    assert_int_equal(allow, RB_HTTP_GET | RB_HTTP_POST);
    char hdr[96];
    allow_header(allow, hdr, sizeof(hdr));
    assert_string_equal(hdr, "GET, POST, HEAD");
    assert_int_equal(match(t->h, "/y", RB_HTTP_DELETE, NULL, NULL, NULL), MATCH_NOT_FOUND);
    /* HEAD is served by the GET handler. */
    assert_int_equal(match(t->h, "/x", RB_HTTP_HEAD, NULL, NULL, NULL), MATCH_OK);
    /* The literal route lacks GET, so GET falls back to the parameter route... */
    assert_int_equal(match(t->h, "/cases/new", RB_HTTP_GET, &pat, NULL, NULL), MATCH_OK);
    assert_string_equal(pat, "/cases/:id");
    /* ...and a method neither accepts is 405 listing both routes' methods. */
    assert_int_equal(match(t->h, "/cases/new", RB_HTTP_PUT, NULL, NULL, &allow),
                     MATCH_BAD_METHOD);
    assert_int_equal(allow, RB_HTTP_GET | RB_HTTP_POST);
}

static void duplicate_route_is_eexist(void **state)
{
    struct table *t = *state;
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/cases/:id", nop_handler, NULL), RB_OK);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/cases/:id", nop_handler, NULL),
                     RB_EEXIST);
    /* Same shape under another parameter name is the same route. */
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET | RB_HTTP_PUT, "/cases/:case_id",
                                   other_handler, NULL),
                     RB_EEXIST);
    /* Another method on the same pattern is fine, and dispatches separately. */
    assert_int_equal(rb_http_route(t->h, RB_HTTP_PUT, "/cases/:id", other_handler, NULL), RB_OK);
    rb_http_fn fn;
    assert_int_equal(match(t->h, "/cases/7", RB_HTTP_PUT, NULL, &fn, NULL), MATCH_OK);
    assert_ptr_equal(fn, other_handler);
    assert_int_equal(match(t->h, "/cases/7", RB_HTTP_GET, NULL, &fn, NULL), MATCH_OK);
    assert_ptr_equal(fn, nop_handler);
}

static void bad_patterns_are_refused(void **state)
{
    struct table *t = *state;
    const char *bad[] = {"",      "healthz", "/a//b",     "/a/",   "/:",    "/:1x",
                         "/a/:id/:id", "/a b", "/a?b", "/a%20", "/a:b", "/a/#"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rb_http_route(t->h, RB_HTTP_GET, bad[i], nop_handler, NULL) != RB_EINVAL)
            fail_msg("pattern \"%s\" was accepted", bad[i]);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, NULL, nop_handler, NULL), RB_EINVAL);
    assert_int_equal(rb_http_route(t->h, 0, "/ok", nop_handler, NULL), RB_EINVAL);
    assert_int_equal(rb_http_route(t->h, RB_HTTP_GET, "/ok", NULL, NULL), RB_EINVAL);
    assert_int_equal(t->h->n_routes, 0);
}

static void error_body_has_the_one_shape(void **state)
{
    (void)state;
    char *s = error_body("payload_too_large", "request body is 2097152 bytes; the limit is 1048576",
                         "0123456789abcdef", -1);
    assert_string_equal(s, "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"request body "
                           "is 2097152 bytes; the limit is 1048576\",\"request_id\":"
                           "\"0123456789abcdef\"}}");
    free(s);
    /* With a Retry-After: its seconds in the body too. */
    s = error_body("rate_limited", "try again in 42 seconds", "0123456789abcdef", 42);
    assert_string_equal(s, "{\"error\":{\"code\":\"rate_limited\",\"message\":\"try again in "
                           "42 seconds\",\"request_id\":\"0123456789abcdef\","
                           "\"retry_after\":42}}");
    free(s);
}

static void json_content_types(void **state)
{
    (void)state;
    assert_true(json_content_type("application/json"));
    assert_true(json_content_type("Application/JSON"));
    assert_true(json_content_type("application/json; charset=utf-8"));
    assert_true(json_content_type("application/json;charset=\"UTF-8\""));
    assert_false(json_content_type(NULL));
    assert_false(json_content_type("text/plain"));
    assert_false(json_content_type("application/jsonx"));
    assert_false(json_content_type("application/json; charset=latin1"));
}

/* ---- a real server ------------------------------------------------------------------------- */

struct server {
    struct event_base *base;
    struct rb_http *h;
    struct rb_metrics *m;
    int port;
    int done_pipe[2];
    struct event *done_ev;
    int deferred_answered;
    int later_started; /* h_later ran: set on the loop, read by the client thread (atomics) */
    size_t inflight_seen;
    int stop_in_handler;
};

static struct server *S; /* the client thread and the handlers share it */

static void h_ok(struct rb_http_req *req, void *arg)
{
    (void)arg;
    static const char body[] = "{\"status\":\"ok\"}";
    rb_http_reply(req, 200, NULL, body, sizeof(body) - 1);
}

static void h_echo(struct rb_http_req *req, void *arg)
{
    (void)arg;
    json_t *j = rb_http_req_json(req);
    if (!j)
        return;
    rb_http_reply_json(req, 200, j);
}

static void h_query(struct rb_http_req *req, void *arg)
{
    (void)arg;
    const char *name = rb_http_req_query(req, "name");
    const char *n = rb_http_req_query(req, "n");
    const char *id = rb_http_req_param(req, "id");
    json_t *j = json_pack("{s:s*, s:s*, s:s*, s:s*}", "name", name, "n", n, "id", id, "missing",
                          rb_http_req_query(req, "missing"));
    rb_http_reply_json(req, 200, j);
}

static void answer_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rb_http_req *req = arg;
    S->inflight_seen = rb_http_inflight(S->h);
    S->deferred_answered++;
    json_t *j = json_pack("{s:s}", "status", "late");
    rb_http_reply_json(req, 200, j);
}

static void h_later(struct rb_http_req *req, void *arg)
{
    (void)arg;
    __atomic_store_n(&S->later_started, 1, __ATOMIC_RELEASE);
    if (S->stop_in_handler)
        rb_http_stop_accepting(S->h);
    struct timeval tv = {0, 100 * 1000};
    event_base_once(S->base, -1, EV_TIMEOUT, answer_later, req, &tv);
}

static void on_client_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static int server_setup(void **state)
{
    S = calloc(1, sizeof(*S));
    S->base = event_base_new();
    S->m = rb_metrics_new();
    S->h = rb_http_new(S->base, S->m);
    rb_http_set_max_body(S->h, 1024 * 1024);
    rb_http_set_timeout(S->h, 5);
    assert_int_equal(rb_http_route(S->h, RB_HTTP_GET, "/ok", h_ok, NULL), RB_OK);
    assert_int_equal(rb_http_route(S->h, RB_HTTP_POST, "/echo", h_echo, NULL), RB_OK);
    assert_int_equal(rb_http_route(S->h, RB_HTTP_GET, "/q/:id", h_query, NULL), RB_OK);
    assert_int_equal(rb_http_route(S->h, RB_HTTP_GET, "/later", h_later, NULL), RB_OK);
    assert_int_equal(rb_http_listen(S->h, "127.0.0.1", 0), RB_OK);
    S->port = rb_http_bound_port(S->h);
    assert_true(S->port > 0);
    assert_int_equal(pipe(S->done_pipe), 0);
    S->done_ev = event_new(S->base, S->done_pipe[0], EV_READ, on_client_done, S->base);
    *state = S;
    return 0;
}

static int server_teardown(void **state)
{
    (void)state;
    event_free(S->done_ev);
    close(S->done_pipe[0]);
    close(S->done_pipe[1]);
    rb_http_free(S->h);
    rb_metrics_free(S->m);
    event_base_free(S->base);
    free(S);
    S = NULL;
    return 0;
}

struct client_job {
    void (*fn)(struct client_job *);
    int port;
    int fail; /* set by the thread; checked on the main thread */
    char why[256];
    void *data;
};

static void *client_main(void *arg)
{
    struct client_job *job = arg;
    job->fn(job);
    char c = 1;
    ssize_t w = write(S->done_pipe[1], &c, 1);
    (void)w;
    return NULL;
}

/* Runs job->fn on a thread while the server's loop runs here; returns when it finished. */
static void run_client(struct client_job *job)
{
    pthread_t t;
    job->port = S->port;
    event_add(S->done_ev, NULL);
    assert_int_equal(pthread_create(&t, NULL, client_main, job), 0);
    event_base_dispatch(S->base);
    pthread_join(t, NULL);
    char c;
    ssize_t r = read(S->done_pipe[0], &c, 1);
    (void)r;
    if (job->fail)
        fail_msg("%s", job->why);
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

struct response {
    int status;
    int reset;    /* the read ended with an error (ECONNRESET) rather than EOF */
    char head[4096];
    char *body;   /* NUL-terminated */
    size_t body_len;
};

/* Sends req (len bytes) on a new connection and reads the answer until the server closes. */
static int roundtrip(int port, const char *req, size_t len, struct response *r)
{
    memset(r, 0, sizeof(*r));
    int fd = connect_port(port);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer and close before reading everything */
        off += (size_t)n;
    }
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (got + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n < 0) {
            r->reset = 1;
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep || got < 12) {
        free(buf);
        return -1;
    }
    size_t hl = (size_t)(sep - buf);
    if (hl >= sizeof(r->head))
        hl = sizeof(r->head) - 1;
    memcpy(r->head, buf, hl);
    r->status = atoi(buf + 9);
    r->body_len = got - (size_t)(sep + 4 - buf);
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, sep + 4, r->body_len);
    r->body[r->body_len] = '\0';
    free(buf);
    return 0;
}

static const char *header_in(const struct response *r, const char *name, char *out, size_t cap)
{
    char key[128];
    snprintf(key, sizeof(key), "\r\n%s: ", name);
    const char *p = strcasestr(r->head, key);
    if (!p)
        return NULL;
    p += strlen(key);
    size_t n = strcspn(p, "\r");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

#define CHECK(job, cond, ...)                                                                  \
    do {                                                                                       \
        if (!(cond) && !(job)->fail) {                                                         \
            (job)->fail = 1;                                                                   \
            snprintf((job)->why, sizeof((job)->why), __VA_ARGS__);                             \
        }                                                                                      \
    } while (0)

/* Checks the one error shape and the code; returns the message (borrowed from j). */
static void check_error(struct client_job *job, const struct response *r, int status,
                        const char *code, const char *needle)
{
    CHECK(job, r->status == status, "status %d, wanted %d", r->status, status);
    json_error_t e;
    json_t *j = json_loads(r->body, 0, &e);
    CHECK(job, j != NULL, "error body is not JSON: %s", r->body);
    if (!j)
        return;
    json_t *err = json_object_get(j, "error");
    CHECK(job, json_object_size(j) == 1 && json_is_object(err) && json_object_size(err) == 3,
          "error body is not {\"error\":{3 keys}}: %s", r->body);
    const char *c = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *id = json_string_value(json_object_get(err, "request_id"));
    CHECK(job, c && strcmp(c, code) == 0, "code %s, wanted %s", c ? c : "(none)", code);
    CHECK(job, msg && (!needle || strstr(msg, needle)), "message \"%s\" lacks \"%s\"",
          msg ? msg : "", needle ? needle : "");
    char hid[64];
    CHECK(job, id && strlen(id) == 16 && header_in(r, "X-Request-Id", hid, sizeof(hid)) &&
                   strcmp(hid, id) == 0,
          "request_id %s is not the 16-hex X-Request-Id header", id ? id : "(none)");
    CHECK(job, header_in(r, "Content-Type", hid, sizeof(hid)) &&
                   strcmp(hid, "application/json") == 0,
          "error Content-Type is not application/json");
    json_decref(j);
}

#define REQ(s) (s), sizeof(s) - 1

static void c_ok_and_head(struct client_job *job)
{
    struct response r;
    char v[64];
    CHECK(job, roundtrip(job->port, REQ("GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
                         &r) == 0,
          "no answer to GET /ok");
    CHECK(job, r.status == 200, "GET /ok: status %d", r.status);
    CHECK(job, r.body && strcmp(r.body, "{\"status\":\"ok\"}") == 0, "GET /ok body: %s", r.body);
    CHECK(job, header_in(&r, "Server", v, sizeof(v)) && strcmp(v, "rabta") == 0, "no Server");
    CHECK(job, header_in(&r, "X-Request-Id", v, sizeof(v)) && strlen(v) == 16 &&
                   strspn(v, "0123456789abcdef") == 16,
          "X-Request-Id is not 16 hex digits");
    CHECK(job, header_in(&r, "Content-Type", v, sizeof(v)) && strcmp(v, "application/json") == 0,
          "Content-Type is not application/json");
    free(r.body);
    CHECK(job, roundtrip(job->port, REQ("HEAD /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
                         &r) == 0,
          "no answer to HEAD /ok");
    CHECK(job, r.status == 200 && r.body_len == 0, "HEAD /ok: status %d, %zu body bytes",
          r.status, r.body_len);
    free(r.body);
}

static void serves_200_json_and_head(void **state)
{
    (void)state;
    struct client_job job = {.fn = c_ok_and_head};
    run_client(&job);
    struct evbuffer *b = evbuffer_new();
    rb_metrics_render(S->m, b);
    evbuffer_add(b, "", 1);
    const char *text = (const char *)evbuffer_pullup(b, -1);
    if (!strstr(text, "rabta_http_requests_total{route=\"/ok\",method=\"GET\",status=\"200\"} 1\n") ||
        !strstr(text, "rabta_http_requests_total{route=\"/ok\",method=\"HEAD\",status=\"200\"} 1\n"))
        fail_msg("metrics lack the two /ok requests:\n%s", text);
    evbuffer_free(b);
    assert_int_equal(rb_http_inflight(S->h), 0);
}

static void c_errors(struct client_job *job)
{
    struct response r;
    char v[64];
    roundtrip(job->port, REQ("GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), &r);
    check_error(job, &r, 404, "not_found", "/nope");
    free(r.body);
    roundtrip(job->port, REQ("GET /ok/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), &r);
    check_error(job, &r, 404, "not_found", NULL);
    free(r.body);
    roundtrip(job->port, REQ("DELETE /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), &r);
    check_error(job, &r, 405, "method_not_allowed", "DELETE");
    CHECK(job, header_in(&r, "Allow", v, sizeof(v)) && strcmp(v, "GET, HEAD") == 0,
          "405 without \"Allow: GET, HEAD\"");
    free(r.body);
    roundtrip(job->port,
              REQ("POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: "
                  "text/plain\r\nContent-Length: 2\r\n\r\n{}"),
              &r);
    check_error(job, &r, 415, "unsupported_media_type", "text/plain");
    free(r.body);
    roundtrip(job->port,
              REQ("POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: "
                  "application/json\r\nContent-Length: 12\r\n\r\n{\n  \"a\": 1,}"),
              &r);
    check_error(job, &r, 400, "invalid_json", "line 2, column");
    free(r.body);
    roundtrip(job->port,
              REQ("POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: "
                  "application/json\r\nContent-Length: 15\r\n\r\n{\"a\":1,\"a\":2}  "),
              &r);
    check_error(job, &r, 400, "invalid_json", "duplicate");
    free(r.body);
    roundtrip(job->port,
              REQ("POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: "
                  "application/json\r\nContent-Length: 3\r\n\r\n[1]"),
              &r);
    check_error(job, &r, 400, "invalid_json", "object");
    free(r.body);
    roundtrip(job->port,
              REQ("POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: "
                  "application/json; charset=utf-8\r\nContent-Length: 9\r\n\r\n{\"a\":[1]}"),
              &r);
    CHECK(job, r.status == 200 && strcmp(r.body, "{\"a\":[1]}") == 0, "echo: %d %s", r.status,
          r.body);
    free(r.body);
    /* libevent's own errors come out in the same shape. */
    roundtrip(job->port, REQ("GARBAGE\r\n\r\n"), &r);
    check_error(job, &r, 400, "bad_request", NULL);
    free(r.body);
    roundtrip(job->port, REQ("TRACE /ok HTTP/1.1\r\nHost: t\r\n\r\n"), &r);
    check_error(job, &r, 501, "not_implemented", NULL);
    free(r.body);
}

static void errors_use_one_json_shape(void **state)
{
    (void)state;
    struct client_job job = {.fn = c_errors};
    run_client(&job);
    assert_int_equal(rb_http_inflight(S->h), 0);
}

static void c_too_large(struct client_job *job)
{
    size_t n = 2 * 1024 * 1024;
    const char *head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                       "Content-Length: 2097152\r\n\r\n";
    size_t hl = strlen(head);
    char *req = malloc(hl + n);
    memcpy(req, head, hl);
    memset(req + hl, ' ', n);
    struct response r;
    CHECK(job, roundtrip(job->port, req, hl + n, &r) == 0, "no answer to a 2 MiB POST");
    check_error(job, &r, 413, "payload_too_large", "1048576");
    CHECK(job, !r.reset, "the connection was reset instead of closed after the 413");
    char v[32];
    CHECK(job, header_in(&r, "Connection", v, sizeof(v)) && strcmp(v, "close") == 0,
          "413 without Connection: close");
    free(r.body);
    /* Chunked: no Content-Length to check up front. */
    const char *chead = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n";
    size_t ch = strlen(chead), pos = ch;
    char *creq = malloc(ch + n + 64 * 16 + 16);
    memcpy(creq, chead, ch);
    for (int i = 0; i < 32; i++) { /* 32 chunks of 64 KiB */
        pos += (size_t)sprintf(creq + pos, "10000\r\n");
        memset(creq + pos, ' ', 65536);
        pos += 65536;
        memcpy(creq + pos, "\r\n", 2);
        pos += 2;
    }
    memcpy(creq + pos, "0\r\n\r\n", 5);
    pos += 5;
    CHECK(job, roundtrip(job->port, creq, pos, &r) == 0, "no answer to a 2 MiB chunked POST");
    check_error(job, &r, 413, "payload_too_large", NULL);
    free(r.body);
    free(creq);
    free(req);
    /* The server keeps serving. */
    CHECK(job, roundtrip(job->port, REQ("GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
                         &r) == 0 && r.status == 200,
          "GET /ok after the 413s failed");
    free(r.body);
}

/* The writer of errors under /own: "E<status> <path>: <message>" as text/plain; it declines
 * (-1) for paths under /own/decline. */
static int own_errors(const char *path, int status, const char *message, const char **ctype,
                      char *buf, size_t cap, void *arg)
{
    (void)arg;
    if (strncmp(path, "/own/decline", 12) == 0)
        return -1;
    *ctype = "text/plain";
    return snprintf(buf, cap, "E%d %s: %s", status, path, message);
}

static void c_owned(struct client_job *job)
{
    size_t n = 2 * 1024 * 1024;
    const char *head = "POST /own/x.xml?a=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n";
    size_t hl = strlen(head);
    char *req = malloc(hl + n), v[64];
    memcpy(req, head, hl);
    memset(req + hl, ' ', n);
    struct response r;
    CHECK(job, roundtrip(job->port, req, hl + n, &r) == 0, "no answer to a 2 MiB POST");
    CHECK(job, r.status == 413 && r.body && strncmp(r.body, "E413 /own/x.xml: ", 17) == 0,
          "the owner's 413: %d %s", r.status, r.body);
    CHECK(job, header_in(&r, "Content-Type", v, sizeof(v)) && strcmp(v, "text/plain") == 0,
          "the owner's content type: %s", v);
    free(r.body);
    free(req);
    char deep[512] = "GET /own";
    for (int i = 0; i < 40; i++)
        strcat(deep, "/s");
    strcat(deep, " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    roundtrip(job->port, deep, strlen(deep), &r);
    CHECK(job, r.status == 404 && r.body && strncmp(r.body, "E404 /own/s/", 12) == 0,
          "past 32 segments: %d %s", r.status, r.body);
    free(r.body);
    roundtrip(job->port, REQ("GET /own/decline HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
              &r);
    check_error(job, &r, 404, "not_found", "/own/decline");
    free(r.body);
    roundtrip(job->port, REQ("GET /owner HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), &r);
    check_error(job, &r, 404, "not_found", "/owner"); /* not under /own */
    free(r.body);
}

static void an_owned_prefix_gets_its_writers_errors(void **state)
{
    (void)state;
    assert_int_equal(rb_http_error_owner(S->h, "/own", own_errors, NULL), RB_OK);
    assert_int_equal(rb_http_error_owner(S->h, "/own", own_errors, NULL), RB_EEXIST);
    assert_int_equal(rb_http_error_owner(S->h, "own", own_errors, NULL), RB_EINVAL);
    assert_int_equal(rb_http_error_owner(S->h, "/own/", own_errors, NULL), RB_EINVAL);
    assert_int_equal(rb_http_error_owner(S->h, "/", own_errors, NULL), RB_EINVAL);
    struct client_job job = {.fn = c_owned};
    run_client(&job);
}

static void body_over_limit_is_json_413_and_closes(void **state)
{
    (void)state;
    struct client_job job = {.fn = c_too_large};
    run_client(&job);
    assert_int_equal(rb_http_inflight(S->h), 0);
}

static void c_query(struct client_job *job)
{
    struct response r;
    roundtrip(job->port,
              REQ("GET /q/a%2Fb?name=Ali+Raza%20Khan&n=3 HTTP/1.1\r\nHost: t\r\nConnection: "
                  "close\r\n\r\n"),
              &r);
    CHECK(job, r.status == 200, "GET /q: %d", r.status);
    CHECK(job, r.body && strcmp(r.body, "{\"name\":\"Ali Raza Khan\",\"n\":\"3\",\"id\":\"a/b\"}") == 0,
          "query/param values: %s", r.body);
    free(r.body);
    roundtrip(job->port, REQ("GET /q/1?broken HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
              &r);
    CHECK(job, r.status == 400 && r.body && strstr(r.body, "query string is malformed"),
          "a malformed query must be refused, not read as empty: %d %s", r.status, r.body);
    free(r.body);
}

static void query_args_and_params_are_decoded(void **state)
{
    (void)state;
    struct client_job job = {.fn = c_query};
    run_client(&job);
}

static void c_later(struct client_job *job)
{
    struct response r;
    roundtrip(job->port, REQ("GET /later HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), &r);
    CHECK(job, r.status == 200 && strcmp(r.body, "{\"status\":\"late\"}") == 0,
          "deferred answer: %d %s", r.status, r.body);
    free(r.body);
}

static void deferred_answer_arrives(void **state)
{
    (void)state;
    struct client_job job = {.fn = c_later};
    run_client(&job);
    assert_int_equal(S->deferred_answered, 1);
    assert_int_equal(S->inflight_seen, 1); /* counted while it waited */
    assert_int_equal(rb_http_inflight(S->h), 0);
}

static void c_leave_early(struct client_job *job)
{
    int fd = connect_port(job->port);
    CHECK(job, fd >= 0, "connect failed");
    if (fd < 0)
        return;
    static const char req[] = "GET /later HTTP/1.1\r\nHost: t\r\n\r\n";
    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
    /* Leave once the server holds the request (its handler ran), not before. */
    for (int i = 0; i < 10000 && !__atomic_load_n(&S->later_started, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    CHECK(job, __atomic_load_n(&S->later_started, __ATOMIC_ACQUIRE), "the request never arrived");
    /* Reset rather than FIN, the harshest way to leave. */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* Runs the server's loop until the deferred answer went out and no request is in flight
 * (10 s at most). */
static void run_until_answered(void)
{
    for (int i = 0; i < 10000 && !(S->deferred_answered && rb_http_inflight(S->h) == 0); i++) {
        event_base_loop(S->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static void client_gone_before_deferred_answer_is_safe(void **state)
{
    (void)state;
    struct client_job job = {.fn = c_leave_early};
    run_client(&job);
    run_until_answered(); /* the server answers into the void */
    assert_int_equal(S->deferred_answered, 1);
    assert_int_equal(rb_http_inflight(S->h), 0);
    /* And the server still serves. */
    struct client_job again = {.fn = c_ok_and_head};
    run_client(&again);
}

static void c_stop(struct client_job *job)
{
    struct response r;
    char v[32];
    roundtrip(job->port, REQ("GET /later HTTP/1.1\r\nHost: t\r\n\r\n"), &r);
    CHECK(job, r.status == 200, "request under way at stop_accepting: %d", r.status);
    CHECK(job, header_in(&r, "Connection", v, sizeof(v)) && strcmp(v, "close") == 0,
          "answers after stop_accepting should close their connection");
    free(r.body);
    errno = 0;
    int fd = connect_port(job->port);
    CHECK(job, fd < 0 && errno == ECONNREFUSED, "connect after stop_accepting: fd %d errno %d",
          fd, errno);
    if (fd >= 0)
        close(fd);
}

static void stop_accepting_refuses_new_connections(void **state)
{
    (void)state;
    S->stop_in_handler = 1;
    struct client_job job = {.fn = c_stop};
    run_client(&job);
    assert_int_equal(rb_http_bound_port(S->h), 0);
    assert_int_equal(rb_http_inflight(S->h), 0);
}

static void c_plain_ok(struct client_job *job)
{
    struct response r;
    int port = *(int *)job->data;
    CHECK(job, roundtrip(port, REQ("GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
                         &r) == 0 && r.status == 200,
          "GET /ok on port %d failed", port);
    free(r.body);
}

static void inherited_socket_and_reuseport(void **state)
{
    (void)state;
    /* A second server may bind the same port (SO_REUSEPORT). */
    struct rb_http *h2 = rb_http_new(S->base, NULL);
    assert_int_equal(rb_http_listen(h2, "127.0.0.1", S->port), RB_OK);
    assert_int_equal(rb_http_bound_port(h2), S->port);
    rb_http_free(h2);

    /* An already-bound socket. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    struct rb_http *h3 = rb_http_new(S->base, NULL);
    assert_int_equal(rb_http_route(h3, RB_HTTP_GET, "/ok", h_ok, NULL), RB_OK);
    assert_int_equal(rb_http_listen_fd(h3, fd), RB_OK);
    int port = rb_http_bound_port(h3);
    assert_int_equal(port, ntohs(sa.sin_port));
    struct client_job job = {.fn = c_plain_ok, .data = &port};
    run_client(&job);
    rb_http_free(h3); /* closes fd */
}

static void free_with_unanswered_request_orphans_it(void **state)
{
    (void)state;
    /* A wrapper whose server is gone: answering frees it and sends nothing. */
    struct rb_http_req *req = rb_calloc(1, sizeof(*req));
    strcpy(req->id, "0000000000000000");
    rb_http_reply_error(req, 503, "unavailable", "the server is gone");
    struct rb_http_req *req2 = rb_calloc(1, sizeof(*req2));
    rb_http_reply_json(req2, 200, json_object());
    /* valgrind/ASan show a leak or a bad access if either path is wrong */
}

int main(void)
{
    rb_log_min_level = RB_LOG_ERROR + 1; /* quiet: the tests trigger errors on purpose */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(literal_beats_param_whatever_the_order, table_setup,
                                        table_teardown),
        cmocka_unit_test_setup_teardown(literal_wins_when_registered_after_param, table_setup,
                                        table_teardown),
        cmocka_unit_test_setup_teardown(trailing_slash_and_empty_segments_do_not_match,
                                        table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(params_are_url_decoded_after_splitting, table_setup,
                                        table_teardown),
        cmocka_unit_test_setup_teardown(wrong_method_is_405_unknown_path_is_404, table_setup,
                                        table_teardown),
        cmocka_unit_test_setup_teardown(duplicate_route_is_eexist, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(bad_patterns_are_refused, table_setup, table_teardown),
        cmocka_unit_test(error_body_has_the_one_shape),
        cmocka_unit_test(json_content_types),
        cmocka_unit_test_setup_teardown(serves_200_json_and_head, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(errors_use_one_json_shape, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(body_over_limit_is_json_413_and_closes, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(an_owned_prefix_gets_its_writers_errors, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(query_args_and_params_are_decoded, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(deferred_answer_arrives, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(client_gone_before_deferred_answer_is_safe, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(stop_accepting_refuses_new_connections, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(inherited_socket_and_reuseport, server_setup,
                                        server_teardown),
        cmocka_unit_test(free_with_unanswered_request_orphans_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
