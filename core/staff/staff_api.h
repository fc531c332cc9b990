/* core/staff/: the people who work the cases. Accounts, roles, scope, passwords and sessions
 * (staff_account), the staff API routes (staff_api), their notifications and contact details
 * (staff_notify) and the SLA reports (reports). Calls: base,
 * config, net, db, cases, sla. */
/* The staff API under /api/v1/staff/: sign-in and sign-out, the department inbox, a case with
 * its whole timeline, and every staff action on a case (each a state-machine step and its
 * case event written by one SQL statement). See docs/api.md "Staff API".
 *
 *   POST /api/v1/staff/login                       {username, password} → token
 *   POST /api/v1/staff/logout
 *   GET  /api/v1/staff/me
 *   GET  /api/v1/staff/inbox                       ?status service district priority
 *                                                  overdue department limit cursor
 *   GET  /api/v1/staff/cases/:tracking
 *   POST /api/v1/staff/cases/:tracking/{acknowledge,start,assign,comment,ask,transfer,
 *                                       resolve,reject,answer,actions}
 */
#ifndef RB_STAFF_API_H
#define RB_STAFF_API_H

struct rb_server;
struct rb_http_req;
struct rb_staff_user;
struct rb_staff;

/* Registers the routes and starts the password threads. Needs srv->http, srv->db and
 * srv->base. RB_OK or RB_ERR (logged). */
int rb_staff_api_init(struct rb_server *srv);
/* Stops the password threads and frees what rb_staff_api_init made (call it before the
 * database pool and the event base are freed). Safe without init. */
void rb_staff_api_free(void);

/* The staff door for routes outside this file (core/staff/reports.c): authenticates the request's
 * bearer token as every staff route does. Calls fn(req, u, arg) exactly once, possibly before
 * this returns: with the signed-in staff member (borrowed for the call), or with u NULL after
 * answering 401 or 503 itself (fn then only frees what arg holds). Scope checks are the
 * caller's (rb_staff_scope in staff.h). */
typedef void (*rb_staff_api_authed_fn)(struct rb_http_req *req, const struct rb_staff_user *u,
                                       void *arg);
void rb_staff_api_authenticate(struct rb_http_req *req, rb_staff_api_authed_fn fn, void *arg);

/* The password pool the staff API runs (borrowed; NULL before init): for routes outside
 * this file that hash or verify passwords (core/staff/staff_admin.c). */
struct rb_staff *rb_staff_api_pool(void);

#endif
