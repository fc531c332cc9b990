/* Schema migrations: migrations/NNNN_name.sql applied in order, each in its own transaction,
 * under a PostgreSQL advisory lock, recorded with a SHA-256 checksum and the binary version.
 * An applied migration whose file changed, or a database newer than this binary, stops the
 * start with a clear message. Start-up only (blocking). */
#ifndef RB_MIGRATE_H
#define RB_MIGRATE_H

#include <libpq-fe.h>
#include "config/yaml_doc.h"

/* Returns the number applied (>= 0), or RB_ERR with errors added. */
int rb_migrate(PGconn *conn, const char *dir, struct rb_errors *errs);

#endif
