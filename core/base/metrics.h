/* Process metrics in Prometheus text format: HTTP requests by route and status, a latency
 * histogram per route, and gauges that other modules register (DB pool, jobs). */
#ifndef RB_METRICS_H
#define RB_METRICS_H

#include <stddef.h>

struct evbuffer;
struct rb_metrics;

struct rb_metrics *rb_metrics_new(void);
void rb_metrics_free(struct rb_metrics *m);

/* route is the route's pattern ("/api/v1/cases/:id") or "unmatched"; copied on first use. */
void rb_metrics_http(struct rb_metrics *m, const char *route, const char *method, int status,
                     double seconds);

/* A counter by name with an optional single label ("kind=\"sla.check\""); created on first use. */
void rb_metrics_count(struct rb_metrics *m, const char *name, const char *help,
                      const char *labels, double delta);

/* A gauge read at render time. name and help are copied; fn(arg) gives the value. */
typedef double (*rb_metrics_gauge_fn)(void *arg);
void rb_metrics_gauge(struct rb_metrics *m, const char *name, const char *help,
                      rb_metrics_gauge_fn fn, void *arg);

/* Appends the whole exposition to out. */
void rb_metrics_render(struct rb_metrics *m, struct evbuffer *out);

#endif
