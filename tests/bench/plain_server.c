/* The baseline for the HTTP benchmark: the least a libevent evhttp server can do. One route,
 * GET /healthz, answers {"status":"ok"}; everything else is libevent's 404. No routing table,
 * no request ids, no metrics, no logging: what is left is libevent's own cost.
 *
 *   bench_plain_server [ADDR] PORT      (default ADDR 127.0.0.1; SIGTERM/SIGINT stop it) */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static void on_healthz(struct evhttp_request *req, void *arg)
{
    static const char body[] = "{\"status\":\"ok\"}";
    struct evbuffer *out = arg;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add_reference(out, body, sizeof(body) - 1, NULL, NULL);
    evhttp_send_reply(req, 200, "OK", out);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    const char *addr = argc > 2 ? argv[1] : "127.0.0.1";
    const char *port_s = argc > 2 ? argv[2] : argc > 1 ? argv[1] : NULL;
    if (!port_s) {
        fprintf(stderr, "usage: %s [ADDR] PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    struct evbuffer *out = evbuffer_new();
    if (!http || !out) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    evhttp_set_cb(http, "/healthz", on_healthz, out);
    if (!evhttp_bind_socket_with_handle(http, addr, (ev_uint16_t)atoi(port_s))) {
        fprintf(stderr, "cannot listen on %s:%s\n", addr, port_s);
        return 1;
    }
    struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
    event_add(term, NULL);
    event_add(intr, NULL);
    printf("listening on http://%s:%s/healthz\n", addr, port_s);
    fflush(stdout);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
    evbuffer_free(out);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
