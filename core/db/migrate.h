/* Schema migrations: migrations/NNNN_name.sql (and each plugin's plugins/<name>/migrations/)
 * applied in order, each in its own transaction,
 * under a PostgreSQL advisory lock, recorded with a SHA-256 checksum and the binary version.
 * An applied migration whose file changed, or a database newer than this binary, stops the
 * start with a clear message. Start-up only (blocking). */
#ifndef RB_MIGRATE_H
#define RB_MIGRATE_H

#include <libpq-fe.h>
#include "config/yaml_doc.h"

/* Core's migrations only. Returns the number applied (>= 0), or RB_ERR with errors added. */
int rb_migrate(PGconn *conn, const char *dir, struct rb_errors *errs);

/* The migrations of one owner: core's (migrations/) or a plugin's own tables
 * (plugins/<name>/migrations/; a missing folder is a plugin without tables). Each owner
 * numbers from 0001; rabta_migrations records the owner with each version. */
struct rb_migration_set {
    const char *owner; /* "core" or the plugin's name; borrowed */
    const char *dir;   /* borrowed */
};

/* Applies sets in order (core first, then each loaded plugin's) under ONE advisory lock,
 * each checked as rb_migrate checks core's (checksums, gaps, a newer schema). Returns the
 * number applied (>= 0), or RB_ERR with errors added (a set that fails stops the rest). */
int rb_migrate_sets(PGconn *conn, const struct rb_migration_set *sets, size_t n,
                    struct rb_errors *errs);

#endif
