#include <stdlib.h>
#include "ivr.h"
#include "ivr_agi.h"
struct rb_ivr_calls { int x; };
struct rb_ivr_calls *rb_ivr_calls_new(void) { return calloc(1, sizeof(struct rb_ivr_calls)); }
void rb_ivr_calls_free(struct rb_ivr_calls *cs) { free(cs); }
void rb_ivr_calls_ami_state(int up) { (void)up; }
void rb_ivr_calls_ami_msg(const struct rb_ami_msg *m) { (void)m; }
void rb_ivr_call_session(struct rb_agi_conn *c) { rb_agi_close(c); }
void rb_ivr_call_place(struct rb_job_run *run, const struct rb_job_info *job) { (void)job; rb_ivr_api->job_finish(run, 0, "todo", 60, 0); }
