/* The embedded private PostgreSQL: with no database.url, rabtad keeps a cluster under
 * <state_dir>/pg, created with initdb on first use, reached on a Unix socket only, run as the
 * "postgres" user when we are root (initdb refuses root). Start-up only: blocking is fine. */
#ifndef RB_PGEMBED_H
#define RB_PGEMBED_H

struct rb_pgembed;

/* Creates the cluster if needed and starts it unless it already runs. bindir may be NULL
 * (search the newest /usr/lib/postgresql/N/bin, then PATH). Returns a handle, or NULL with a
 * new message in *err (caller frees). */
struct rb_pgembed *rb_pgembed_start(const char *state_dir, const char *bindir, char **err);
/* libpq conninfo for the cluster's database "rabta". Borrowed. */
const char *rb_pgembed_conninfo(const struct rb_pgembed *pg);
/* Stops the cluster if this handle started it, then frees the handle. */
void rb_pgembed_stop(struct rb_pgembed *pg);

#endif
