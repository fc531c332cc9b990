/* Core routes: /healthz, /metrics, /api/v1/meta, and the process gauges. */
#ifndef RB_STATUS_H
#define RB_STATUS_H

struct rb_server;

/* Registers the routes and gauges. Needs srv->http and srv->metrics. */
int rb_status_init(struct rb_server *srv);

#endif
