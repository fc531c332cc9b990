/* The asynchronous HTTP client (core/net/http_client.c) against a libevent HTTP server on
 * loopback in the same loop: answers, bodies and headers both ways, refused connections,
 * timeouts, refused URLs, and freeing with requests in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "net/http_client.h"

struct fixture {
    struct event_base *base;
    struct evhttp *srv;
    int port;
    struct evhttp_request *held; /* /hold: never answered */
};

struct answer {
    int called, status;
    char body[512];
    char err[128];
    struct event_base *base;
};

static void done(int status, const char *body, size_t len, const char *err, void *arg)
{
    struct answer *a = arg;
    a->called++;
    a->status = status;
    snprintf(a->body, sizeof(a->body), "%.*s", (int)len, body);
    snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
    event_base_loopbreak(a->base);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fixture *f = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *out = evbuffer_new();
    if (strncmp(uri, "/hold", 5) == 0) {
        f->held = req;
        evbuffer_free(out);
        return;
    }
    if (strncmp(uri, "/echo", 5) == 0) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Test");
        evbuffer_add_printf(out, "%d|%s|%s|", (int)evhttp_request_get_command(req), uri,
                            h ? h : "");
        evbuffer_add_buffer(out, in);
        evhttp_send_reply(req, 200, "OK", out);
    } else if (strncmp(uri, "/fail", 5) == 0) {
        evbuffer_add_printf(out, "broken");
        evhttp_send_reply(req, 503, "Unavailable", out);
    } else {
        evbuffer_add_printf(out, "0: Accepted for delivery");
        evhttp_send_reply(req, 202, "Accepted", out);
    }
    evbuffer_free(out);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    f->srv = evhttp_new(f->base);
    evhttp_set_gencb(f->srv, on_request, f);
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(f->srv, "127.0.0.1", 0);
    assert_non_null(s);
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sin, &len);
    f->port = ntohs(sin.sin_port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    evhttp_free(f->srv);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void run(struct fixture *f, struct answer *a)
{
    a->base = f->base;
    struct timeval limit = {5, 0};
    event_base_loopexit(f->base, &limit);
    event_base_dispatch(f->base);
}

static char *url(struct fixture *f, const char *path)
{
    static char buf[256];
    snprintf(buf, sizeof(buf), "http://127.0.0.1:%d%s", f->port, path);
    return buf;
}

static void get_returns_status_and_body_and_never_calls_back_early(void **state)
{
    struct fixture *f = *state;
    struct rb_http_client *c = rb_http_client_new(f->base);
    struct answer a = {0};
    a.base = f->base;
    assert_int_equal(rb_http_fetch(c, RB_HTTP_GET, url(f, "/cgi-bin/sendsms?to=%2B92"), NULL,
                                   NULL, 0, 2.0, done, &a), RB_OK);
    assert_int_equal(a.called, 0);
    assert_int_equal(rb_http_client_pending(c), 1);
    run(f, &a);
    assert_int_equal(a.called, 1);
    assert_int_equal(a.status, 202);
    assert_string_equal(a.body, "0: Accepted for delivery");
    assert_string_equal(a.err, "");
    assert_int_equal(rb_http_client_pending(c), 0);
    rb_http_client_free(c);
}

static void post_sends_body_and_headers(void **state)
{
    struct fixture *f = *state;
    struct rb_http_client *c = rb_http_client_new(f->base);
    struct answer a = {0};
    const char *const headers[] = {"X-Test: yes please", "Content-Type: text/plain", NULL};
    assert_int_equal(rb_http_fetch(c, RB_HTTP_POST, url(f, "/echo?q=1"), headers,
                                   "body \xD8\xB3 text", 12, 2.0, done, &a), RB_OK);
    run(f, &a);
    assert_int_equal(a.status, 200);
    char want[128];
    snprintf(want, sizeof(want), "%d|/echo?q=1|yes please|body \xD8\xB3 text", EVHTTP_REQ_POST);
    assert_string_equal(a.body, want);
    rb_http_client_free(c);
}

static void server_errors_come_back_as_their_status(void **state)
{
    struct fixture *f = *state;
    struct rb_http_client *c = rb_http_client_new(f->base);
    struct answer a = {0};
    assert_int_equal(rb_http_fetch(c, RB_HTTP_GET, url(f, "/fail"), NULL, NULL, 0, 2.0, done,
                                   &a), RB_OK);
    run(f, &a);
    assert_int_equal(a.status, 503);
    assert_string_equal(a.body, "broken");
    rb_http_client_free(c);
}

static void refused_connection_is_status_0_with_a_reason(void **state)
{
    struct fixture *f = *state;
    /* a port nobody listens on: bind, note it, close */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
    getsockname(s, (struct sockaddr *)&sin, &len);
    close(s);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", ntohs(sin.sin_port));
    struct rb_http_client *c = rb_http_client_new(f->base);
    struct answer a = {0};
    assert_int_equal(rb_http_fetch(c, RB_HTTP_GET, u, NULL, NULL, 0, 2.0, done, &a), RB_OK);
    run(f, &a);
    assert_int_equal(a.called, 1);
    assert_int_equal(a.status, 0);
    assert_true(a.err[0] != '\0');
    assert_null(strstr(a.err, "outcome unknown")); /* nothing was sent */
    rb_http_client_free(c);
}

/* The request reached the server whole: a missing answer leaves its outcome unknown. */
static void a_silent_server_times_out(void **state)
{
    struct fixture *f = *state;
    struct rb_http_client *c = rb_http_client_new(f->base);
    struct answer a = {0};
    assert_int_equal(rb_http_fetch(c, RB_HTTP_GET, url(f, "/hold"), NULL, NULL, 0, 0.3, done,
                                   &a), RB_OK);
    run(f, &a);
    assert_int_equal(a.called, 1);
    assert_int_equal(a.status, 0);
    assert_string_equal(a.err, "outcome unknown: the request was sent, then timed out");
    rb_http_client_free(c);
}

static void bad_urls_methods_and_headers_are_refused(void **state)
{
    struct fixture *f = *state;
    struct rb_http_client *c = rb_http_client_new(f->base);
    struct answer a = {0};
    assert_int_equal(rb_http_fetch(c, RB_HTTP_GET, "not a url", NULL, NULL, 0, 1, done, &a),
                     RB_EINVAL);
    assert_int_equal(rb_http_fetch(c, RB_HTTP_GET, "ftp://127.0.0.1/", NULL, NULL, 0, 1, done,
                                   &a), RB_EINVAL);
    /* https:// is spoken (test_webhook.py); a CA file that cannot be read refuses it */
    assert_int_equal(rb_http_fetch_ca(c, RB_HTTP_GET, "https://127.0.0.1/", NULL, NULL, 0, 1,
                                      "/nonexistent/ca.pem", done, &a),
                     RB_EINVAL);
    assert_int_equal(rb_http_fetch(c, (enum rb_http_method)0, url(f, "/"), NULL, NULL, 0, 1,
                                   done, &a), RB_EINVAL);
    const char *const split[] = {"X-Test: a\r\nX-Evil: b", NULL};
    assert_int_equal(rb_http_fetch(c, RB_HTTP_GET, url(f, "/"), split, NULL, 0, 1, done, &a),
                     RB_EINVAL);
    const char *const noname[] = {": value", NULL};
    assert_int_equal(rb_http_fetch(c, RB_HTTP_GET, url(f, "/"), noname, NULL, 0, 1, done, &a),
                     RB_EINVAL);
    assert_int_equal(a.called, 0);
    assert_int_equal(rb_http_client_pending(c), 0);
    rb_http_client_free(c);
}

static void freeing_cancels_requests_in_flight_without_calling_back(void **state)
{
    struct fixture *f = *state;
    struct rb_http_client *c = rb_http_client_new(f->base);
    struct answer a = {0};
    a.base = f->base;
    assert_int_equal(rb_http_fetch(c, RB_HTTP_GET, url(f, "/hold"), NULL, NULL, 0, 5.0, done,
                                   &a), RB_OK);
    /* let the request reach the server (10 s at most), then free while it waits */
    for (int i = 0; i < 5000 && !f->held; i++)
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(2000);
    assert_non_null(f->held);
    assert_int_equal(rb_http_client_pending(c), 1);
    rb_http_client_free(c);
    /* A later request on the same loop is answered: the loop ran on past the free, and
     * nothing of the freed client called back meanwhile. */
    struct rb_http_client *c2 = rb_http_client_new(f->base);
    struct answer b = {0};
    assert_int_equal(rb_http_fetch(c2, RB_HTTP_GET, url(f, "/ok"), NULL, NULL, 0, 5.0, done, &b),
                     RB_OK);
    run(f, &b);
    assert_int_equal(b.called, 1);
    assert_int_equal(b.status, 202);
    assert_int_equal(a.called, 0);
    rb_http_client_free(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(get_returns_status_and_body_and_never_calls_back_early,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(post_sends_body_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(server_errors_come_back_as_their_status, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(refused_connection_is_status_0_with_a_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_silent_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_urls_methods_and_headers_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(freeing_cancels_requests_in_flight_without_calling_back,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
