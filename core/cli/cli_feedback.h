/* The registry and transactions of proactive feedback from CSV files (docs/feedback.md):
 *
 *   rabtad offices import FILE       id,name_en,name_ur,department,district,services,supervisor
 *   rabtad offices key OFFICE        a new API key that submits that office's transactions
 *   rabtad officials import FILE     id,name,designation,office,phone
 *   rabtad transactions import FILE  reference,office,service,official,citizen_name,phone,
 *                                    completed_at[,language]
 *
 * The first line names the columns (any order). A bad row is reported on stderr as
 * FILE:LINE: reason and the good rows are kept; the exit code is 0 when every row was taken,
 * 1 when some were refused, 2 when the file cannot be read at all. Transactions go in by
 * COPY, committed every RB_CLI_TX_CHUNK rows, with a progress bar when stderr is a terminal. */
#ifndef RB_CLI_FEEDBACK_H
#define RB_CLI_FEEDBACK_H

struct rb_server;

#define RB_CLI_TX_CHUNK 50000

int rb_cli_offices(struct rb_server *srv, int nargs, char **args);
int rb_cli_officials(struct rb_server *srv, int nargs, char **args);
int rb_cli_transactions(struct rb_server *srv, int nargs, char **args);

#endif
