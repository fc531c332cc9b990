/* The per-route client rates (server.routes) counted by every rabtad process on one database
 * together: net/http.c keeps its own table as the fast path (a flood is refused without a
 * round trip) and asks this module about each request it allowed; this module asks
 * PostgreSQL (rabta_rate_take, migration 0058: one statement on an UNLOGGED table) and
 * sweeps the schedules that have passed once a minute. */
#ifndef RB_RATE_SHARED_H
#define RB_RATE_SHARED_H

struct rb_server;
struct rb_rate_shared;

/* Hooks the shared count into srv->http (needs srv->http, srv->db, srv->base). NULL only
 * when the sweep timer cannot be made. */
struct rb_rate_shared *rb_rate_shared_new(struct rb_server *srv);
/* Unhooks and frees; safe on NULL. Call before srv->http goes. */
void rb_rate_shared_free(struct rb_rate_shared *rs);

#endif
