/* Fuzz: the HTTP request path and query as rabtad parses them (net/http.c): the path split and
 * URL-decoded segment by segment and matched against a route table like the server's, and
 * the query string parsed with libevent's parser. */
#include "net/http.c"
#include "tests/fuzz/fuzz.h"

static struct rb_http *h;
static struct event_base *base;

static void nop(struct rb_http_req *req, void *arg)
{
    (void)req;
    (void)arg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    rb_log_min_level = RB_LOG_ERROR + 1;
    base = event_base_new();
    h = rb_http_new(base, NULL);
    static const char *const routes[] = {"/healthz", "/api/v1/cases", "/api/v1/cases/:tracking",
                                         "/api/v1/cases/:tracking/timeline", "/api/v1/cases/new",
                                         "/api/v1/staff/cases/:tracking/:action", "/"};
    for (size_t i = 0; i < RB_ARRAY_LEN(routes); i++)
        rb_http_route(h, RB_HTTP_GET | RB_HTTP_POST, routes[i], nop, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char *q = strchr(s, '?');
    if (q)
        *q++ = '\0';
    struct match m;
    enum match_result r = route_match(h, s, RB_HTTP_GET, &m);
    if (r == MATCH_OK && (!m.route || !m.entry))
        abort();
    match_clear(&m);
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (evhttp_parse_query_str(q ? q : s, &kv) == 0)
        evhttp_clear_headers(&kv);
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(s, EVHTTP_URI_NONCONFORMANT);
    if (u)
        evhttp_uri_free(u);
    free(s);
    return 0;
}
