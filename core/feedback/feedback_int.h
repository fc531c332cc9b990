/* Inside core/feedback/: what its files share. Not for other folders. */
#ifndef RB_FEEDBACK_INT_H
#define RB_FEEDBACK_INT_H

#include <jansson.h>

struct rb_server;
struct rb_http_req;

/* The routes of feedback_tx.c and feedback_reports.c. RB_OK or an error code. */
int rb_feedback_tx_init(struct rb_server *srv);
int rb_feedback_reports_init(struct rb_server *srv);

/* A share k of n with its 95% Wilson score interval: {"n", "k", "share", "low", "high",
 * "small_sample" (n < RB_FEEDBACK_SMALL_N)}; share, low and high are null when n is 0. New. */
#define RB_FEEDBACK_SMALL_N 30
json_t *rb_feedback_share(long long k, long long n);
/* The Wilson interval alone (z = 1.96). n > 0. */
void rb_feedback_wilson(long long k, long long n, double *low, double *high);

#endif
