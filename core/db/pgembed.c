/* The embedded private PostgreSQL cluster under <state_dir>/pg.
 *
 *   <state_dir>/pg/data          the cluster (initdb on first use)
 *   <state_dir>/pg/run           the Unix socket; no TCP at all (listen_addresses = '')
 *   <state_dir>/pg/postgres.log  the server's log
 *   <state_dir>/pg/initdb.log    initdb's output
 *
 * Our settings live in data/rabta.conf, rewritten at every start (so the paths follow the
 * state directory if it moves) and included from postgresql.conf. When we are root, initdb,
 * pg_ctl and postgres run as the "postgres" user; the directories they write are chowned to
 * it. A server already running on the data directory is reused and left running at exit. */
#include "db/pgembed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/common.h"
#include "base/log.h"
#include "db/db.h"

#define PG_CTX "pgembed"
#define PG_USER "postgres"
#define PG_DB "rabta"
#define SOCKET_NAME_MAX 107 /* sizeof(sockaddr_un.sun_path) - 1 */

struct rb_pgembed {
    char *pgdir, *datadir, *rundir, *logfile; /* owned */
    char *bindir;                             /* owned */
    char *conninfo;                           /* owned */
    char *host;                               /* owned; the socket directory */
    int port;
    int started; /* we started it, so we stop it */
    int as_pg;   /* run server programs as the postgres user */
    uid_t uid;
    gid_t gid;
};

/* ---------------------------------------------------------------------------------------- */
/* Finding the binaries */

static int has_server_binaries(const char *dir)
{
    static const char *const progs[] = {"initdb", "pg_ctl", "postgres"};
    for (size_t i = 0; i < RB_ARRAY_LEN(progs); i++) {
        char *p = rb_sprintf("%s/%s", dir, progs[i]);
        int ok = access(p, X_OK) == 0;
        free(p);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Returns a new path to the newest /usr/lib/postgresql/N/bin, then a PATH entry, holding
 * initdb, pg_ctl and postgres; NULL if none. */
static char *find_bindir(void)
{
    static const char *const roots[] = {"/usr/lib/postgresql", "/usr/local/lib/postgresql"};
    char *best = NULL;
    long best_v = -1;
    for (size_t r = 0; r < RB_ARRAY_LEN(roots); r++) {
        DIR *d = opendir(roots[r]);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char *end;
            long v = strtol(e->d_name, &end, 10);
            if (end == e->d_name || *end != '\0' || v <= best_v)
                continue;
            char *bin = rb_sprintf("%s/%s/bin", roots[r], e->d_name);
            if (has_server_binaries(bin)) {
                free(best);
                best = bin;
                best_v = v;
            } else {
                free(bin);
            }
        }
        closedir(d);
    }
    if (best)
        return best;
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *copy = rb_strdup(path), *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        if (*dir && has_server_binaries(dir)) {
            best = rb_strdup(dir);
            break;
        }
    }
    free(copy);
    return best;
}

/* ---------------------------------------------------------------------------------------- */
/* Running programs */

/* Runs argv (argv[0] a full path) and waits. As the postgres user when pg->as_pg. Output
 * goes to outfile (appended) or /dev/null. Returns the exit status (0 success), or -1 with a
 * message in *err. */
static int run(const struct rb_pgembed *pg, char *const argv[], const char *outfile, char **err)
{
    pid_t pid = fork();
    if (pid < 0) {
        *err = rb_sprintf("cannot fork to run %s: %s", argv[0], strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = outfile ? open(outfile, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
        if (out < 0)
            out = open("/dev/null", O_WRONLY);
        if (in >= 0)
            dup2(in, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        if (pg->as_pg && outfile)
            (void)fchown(1, pg->uid, pg->gid);
        long maxfd = sysconf(_SC_OPEN_MAX);
        for (int fd = 3; fd < (maxfd > 0 && maxfd < 65536 ? maxfd : 65536); fd++)
            close(fd);
        if (pg->as_pg &&
            (initgroups(PG_USER, pg->gid) != 0 || setgid(pg->gid) != 0 || setuid(pg->uid) != 0)) {
            fprintf(stderr, "cannot switch to user %s: %s\n", PG_USER, strerror(errno));
            _exit(126);
        }
        if (chdir(pg->pgdir) != 0 && chdir("/") != 0)
            _exit(126);
        umask(077);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            *err = rb_sprintf("waiting for %s: %s", argv[0], strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Returns a new string with the last lines of path (at most ~2 KB), or a note. */
static char *file_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return rb_sprintf("(no %s)", path);
    char buf[2048];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    char *p = buf + n;
    int seen = 0;
    while (p > buf) {
        if (p[-1] == '\n' && ++seen == lines)
            break;
        p--;
    }
    return rb_sprintf("%s", *p ? p : "(empty)");
}

/* ---------------------------------------------------------------------------------------- */
/* Directories */

static int mkdir_p(const char *path, mode_t mode, char **err)
{
    char *p = rb_strdup(path);
    for (char *s = p + 1; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            *err = rb_sprintf("cannot create directory %s: %s", p, strerror(errno));
            free(p);
            return RB_ERR;
        }
        *s = saved;
        if (!saved)
            break;
    }
    free(p);
    return RB_OK;
}

static int own_dir(const struct rb_pgembed *pg, const char *dir, char **err)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        *err = rb_sprintf("cannot create directory %s: %s", dir, strerror(errno));
        return RB_ERR;
    }
    if (pg->as_pg && chown(dir, pg->uid, pg->gid) != 0) {
        *err = rb_sprintf("cannot give directory %s to user %s: %s", dir, PG_USER,
                          strerror(errno));
        return RB_ERR;
    }
    return RB_OK;
}

/* As root: checks, with the postgres user's identity (effective ids only, restored before
 * returning; start-up is single-threaded), that every directory on the way to pgdir can be
 * passed and pgdir written. Names the first one that cannot. */
static int check_reachable(const struct rb_pgembed *pg, char **err)
{
    gid_t saved[256], groups[256];
    int nsaved = getgroups((int)RB_ARRAY_LEN(saved), saved);
    int ng = (int)RB_ARRAY_LEN(groups);
    gid_t egid = getegid();
    if (nsaved < 0 || getgrouplist(PG_USER, pg->gid, groups, &ng) < 0) {
        groups[0] = pg->gid;
        ng = 1;
    }
    if (nsaved < 0 || setgroups((size_t)ng, groups) != 0 || setegid(pg->gid) != 0 ||
        seteuid(pg->uid) != 0) {
        *err = rb_sprintf("cannot take user %s's identity to check %s: %s", PG_USER, pg->pgdir,
                          strerror(errno));
        if (seteuid(0) != 0 || setegid(egid) != 0 ||
            (nsaved >= 0 && setgroups((size_t)nsaved, saved) != 0))
            rb_fatal("cannot restore root's identity: %s", strerror(errno));
        return RB_ERR;
    }
    char *p = rb_strdup(pg->pgdir), *bad = NULL;
    for (char *s = p + 1; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved_ch = *s;
        *s = '\0';
        if (euidaccess(p, saved_ch ? X_OK : (R_OK | W_OK | X_OK)) != 0) {
            bad = rb_strdup(p);
            break;
        }
        *s = saved_ch;
        if (!saved_ch)
            break;
    }
    free(p);
    if (seteuid(0) != 0 || setegid(egid) != 0 || setgroups((size_t)nsaved, saved) != 0)
        rb_fatal("cannot restore root's identity: %s", strerror(errno));
    if (!bad)
        return RB_OK;
    *err = rb_sprintf("directory %s is not reachable by the %s user, which runs the embedded "
                      "PostgreSQL: choose a state_dir the %s user can reach (every parent "
                      "directory needs o+x), or set database.url to use an existing server",
                      bad, PG_USER, PG_USER);
    free(bad);
    return RB_ERR;
}

/* ---------------------------------------------------------------------------------------- */
/* Cluster set-up */

/* Returns value quoted for a libpq conninfo or postgresql.conf when needed; new string. */
static char *quote(const char *v, int always)
{
    int need = always || !*v;
    for (const char *s = v; *s; s++)
        if (*s == ' ' || *s == '\'' || *s == '\\')
            need = 1;
    if (!need)
        return rb_strdup(v);
    char *out = rb_malloc(strlen(v) * 2 + 3), *o = out;
    *o++ = '\'';
    for (const char *s = v; *s; s++) {
        if (*s == '\'' || *s == '\\')
            *o++ = always ? '\'' : '\\';
        *o++ = *s;
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

static int write_file(const char *path, const char *text, char **err)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        *err = rb_sprintf("cannot write %s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return RB_ERR;
    }
    return RB_OK;
}

static int run_initdb(struct rb_pgembed *pg, char **err)
{
    char *log = rb_sprintf("%s/initdb.log", pg->pgdir);
    unlink(log);
    locale_t l = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    const char *locale = l ? "--locale=C.UTF-8" : "--locale=C";
    if (l)
        freelocale(l);
    char *initdb = rb_sprintf("%s/initdb", pg->bindir);
    char *argv[] = {initdb,     "-D",           pg->datadir, "-U",          PG_USER,
                    "-E",       "UTF8",         (char *)locale, "--auth-local=trust",
                    "--auth-host=reject", NULL};
    rb_info(PG_CTX, "creating the embedded PostgreSQL cluster in %s", pg->datadir);
    int rc = run(pg, argv, log, err);
    free(initdb);
    if (rc != 0 && !*err) {
        char *tail = file_tail(log, 15);
        *err = rb_sprintf("initdb failed (exit %d) for %s; its output (%s) ends with: %s", rc,
                          pg->datadir, log, tail);
        free(tail);
    }
    if (rc == 0) {
        char *conf = rb_sprintf("%s/postgresql.conf", pg->datadir);
        FILE *f = fopen(conf, "a");
        if (!f || fputs("\n# Rabta's settings (socket, paths): rewritten at every start.\n"
                        "include_if_exists = 'rabta.conf'\n",
                        f) < 0 || fclose(f) != 0) {
            *err = rb_sprintf("cannot append to %s: %s", conf, strerror(errno));
            rc = -1;
        }
        free(conf);
    }
    free(log);
    return rc == 0 ? RB_OK : RB_ERR;
}

static int write_settings(const struct rb_pgembed *pg, char **err)
{
    char *run_q = quote(pg->rundir, 1);
    char *text = rb_sprintf("# Written by rabtad at every start of the embedded cluster.\n"
                            "listen_addresses = ''\n"
                            "unix_socket_directories = %s\n"
                            "unix_socket_permissions = 0700\n"
                            "fsync = on\n"
                            "logging_collector = off\n"
                            "timezone = 'UTC'\n"
                            "log_timezone = 'UTC'\n",
                            run_q);
    char *path = rb_sprintf("%s/rabta.conf", pg->datadir);
    int rc = write_file(path, text, err);
    if (rc == RB_OK && pg->as_pg && chown(path, pg->uid, pg->gid) != 0) {
        *err = rb_sprintf("cannot give %s to user %s: %s", path, PG_USER, strerror(errno));
        rc = RB_ERR;
    }
    free(path);
    free(text);
    free(run_q);
    return rc;
}

static void set_conninfo(struct rb_pgembed *pg, const char *host, int port)
{
    char *h = quote(host, 0);
    char *host_copy = rb_strdup(host);
    free(pg->host);
    pg->host = host_copy;
    pg->port = port;
    free(pg->conninfo);
    if (port == 5432)
        pg->conninfo = rb_sprintf("host=%s dbname=%s user=%s", h, PG_DB, PG_USER);
    else
        pg->conninfo = rb_sprintf("host=%s port=%d dbname=%s user=%s", h, port, PG_DB, PG_USER);
    free(h);
}

/* Is a server running on our data directory? Reads postmaster.pid; when its process lives,
 * points the conninfo at the socket it lists. Returns its pid or 0. */
static pid_t running_pid(struct rb_pgembed *pg)
{
    char *path = rb_sprintf("%s/postmaster.pid", pg->datadir);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return 0;
    char line[PATH_MAX];
    long pid = 0;
    int port = 5432;
    char sockdir[PATH_MAX] = "";
    for (int i = 1; fgets(line, sizeof(line), f); i++) {
        line[strcspn(line, "\n")] = '\0';
        if (i == 1)
            pid = strtol(line, NULL, 10);
        else if (i == 4)
            port = (int)strtol(line, NULL, 10);
        else if (i == 5)
            snprintf(sockdir, sizeof(sockdir), "%s", line);
    }
    fclose(f);
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM))
        return 0;
    set_conninfo(pg, *sockdir ? sockdir : pg->rundir, port > 0 ? port : 5432);
    return (pid_t)pid;
}

/* Connects to database dbname of the cluster (blocking). Returns NULL with *err set. */
static PGconn *connect_db(const struct rb_pgembed *pg, const char *dbname, double timeout,
                          char **err)
{
    char *h = quote(pg->host, 0);
    char *ci = rb_sprintf("host=%s port=%d dbname=%s user=%s", h, pg->port, dbname, PG_USER);
    PGconn *c = rb_db_connect_blocking(ci, timeout, err);
    free(ci);
    free(h);
    return c;
}

static int ensure_database(struct rb_pgembed *pg, char **err)
{
    PGconn *c = connect_db(pg, "postgres", 30, err);
    if (!c)
        return RB_ERR;
    const char *params[] = {PG_DB};
    PGresult *r = PQexecParams(c, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL,
                               params, NULL, NULL, 0);
    int rc = RB_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        *err = rb_sprintf("cannot look up database %s: %s", PG_DB, PQerrorMessage(c));
        rc = RB_ERR;
    } else if (PQntuples(r) == 0) {
        PQclear(r);
        r = PQexec(c, "CREATE DATABASE " PG_DB);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            *err = rb_sprintf("cannot create database %s: %s", PG_DB, PQerrorMessage(c));
            rc = RB_ERR;
        } else {
            rb_info(PG_CTX, "created database %s", PG_DB);
        }
    }
    PQclear(r);
    PQfinish(c);
    if (*err) {
        size_t n = strlen(*err);
        while (n > 0 && ((*err)[n - 1] == '\n' || (*err)[n - 1] == ' '))
            (*err)[--n] = '\0';
    }
    return rc;
}

static int start_server(struct rb_pgembed *pg, char **err)
{
    char *pg_ctl = rb_sprintf("%s/pg_ctl", pg->bindir);
    char *argv[] = {pg_ctl, "-D", pg->datadir, "-l", pg->logfile, "-w", "-t", "60", "start",
                    NULL};
    char *out = rb_sprintf("%s/pg_ctl.log", pg->pgdir);
    unlink(out);
    rb_info(PG_CTX, "starting the embedded PostgreSQL (%s)", pg->datadir);
    int rc = run(pg, argv, out, err);
    free(pg_ctl);
    if (rc != 0 && !*err) {
        char *tail = file_tail(pg->logfile, 15);
        char *ctl = file_tail(out, 3);
        *err = rb_sprintf("PostgreSQL did not start (pg_ctl exit %d: %s); %s ends with: %s", rc,
                          ctl, pg->logfile, tail);
        free(tail);
        free(ctl);
    }
    free(out);
    if (rc == 0) {
        pg->started = 1;
        set_conninfo(pg, pg->rundir, 5432);
    }
    return rc == 0 ? RB_OK : RB_ERR;
}

/* ---------------------------------------------------------------------------------------- */
/* Public API */

static void pgembed_free(struct rb_pgembed *pg)
{
    free(pg->pgdir);
    free(pg->datadir);
    free(pg->rundir);
    free(pg->logfile);
    free(pg->bindir);
    free(pg->conninfo);
    free(pg->host);
    free(pg);
}

struct rb_pgembed *rb_pgembed_start(const char *state_dir, const char *bindir, char **err)
{
    *err = NULL;
    if (!state_dir || !*state_dir) {
        *err = rb_strdup("no state directory for the embedded PostgreSQL");
        return NULL;
    }
    struct rb_pgembed *pg = rb_calloc(1, sizeof(*pg));
    char abs[PATH_MAX];
    if (state_dir[0] != '/' && getcwd(abs, sizeof(abs)))
        pg->pgdir = rb_sprintf("%s/%s/pg", abs, state_dir);
    else
        pg->pgdir = rb_sprintf("%s/pg", state_dir);
    pg->datadir = rb_sprintf("%s/data", pg->pgdir);
    pg->rundir = rb_sprintf("%s/run", pg->pgdir);
    pg->logfile = rb_sprintf("%s/postgres.log", pg->pgdir);
    set_conninfo(pg, pg->rundir, 5432);

    if (bindir && !has_server_binaries(bindir)) {
        *err = rb_sprintf("database.pg_bindir %s does not hold initdb, pg_ctl and postgres",
                          bindir);
        goto fail;
    }
    pg->bindir = bindir ? rb_strdup(bindir) : find_bindir();
    if (!pg->bindir) {
        *err = rb_strdup("no PostgreSQL server binaries found (initdb, pg_ctl and postgres, "
                         "searched in /usr/lib/postgresql/*/bin and PATH): install the "
                         "\"postgresql\" package, set database.pg_bindir, or set database.url "
                         "to use an existing server");
        goto fail;
    }
    if (strlen(pg->rundir) + strlen("/.s.PGSQL.5432") > SOCKET_NAME_MAX) {
        *err = rb_sprintf("state directory path too long for a Unix socket: %s/.s.PGSQL.5432 "
                          "exceeds %d bytes; choose a shorter state_dir",
                          pg->rundir, SOCKET_NAME_MAX);
        goto fail;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam(PG_USER);
        if (!pw) {
            *err = rb_sprintf("running as root, the embedded PostgreSQL must run as user %s, "
                              "which does not exist: install the \"postgresql\" package or "
                              "create the user",
                              PG_USER);
            goto fail;
        }
        pg->as_pg = 1;
        pg->uid = pw->pw_uid;
        pg->gid = pw->pw_gid;
    }
    if (mkdir_p(state_dir, 0755, err) != RB_OK || own_dir(pg, pg->pgdir, err) != RB_OK ||
        own_dir(pg, pg->rundir, err) != RB_OK)
        goto fail;
    if (pg->as_pg && check_reachable(pg, err) != RB_OK)
        goto fail;

    char *version = rb_sprintf("%s/PG_VERSION", pg->datadir);
    int fresh = access(version, F_OK) != 0;
    free(version);
    if (fresh && run_initdb(pg, err) != RB_OK)
        goto fail;
    if (write_settings(pg, err) != RB_OK)
        goto fail;

    pid_t pid = running_pid(pg);
    if (pid > 0) {
        char *cerr = NULL;
        PGconn *c = connect_db(pg, "postgres", 10, &cerr);
        if (!c) {
            *err = rb_sprintf("a PostgreSQL server (pid %ld) runs on %s but does not answer: %s",
                              (long)pid, pg->datadir, cerr);
            free(cerr);
            goto fail;
        }
        PQfinish(c);
        rb_info(PG_CTX, "reusing the PostgreSQL server already running on %s (pid %ld)",
                pg->datadir, (long)pid);
    } else if (start_server(pg, err) != RB_OK) {
        goto fail;
    }
    if (ensure_database(pg, err) != RB_OK) {
        rb_pgembed_stop(pg);
        return NULL;
    }
    return pg;
fail:
    pgembed_free(pg);
    return NULL;
}

const char *rb_pgembed_conninfo(const struct rb_pgembed *pg)
{
    return pg->conninfo;
}

void rb_pgembed_stop(struct rb_pgembed *pg)
{
    if (!pg)
        return;
    if (pg->started) {
        char *pg_ctl = rb_sprintf("%s/pg_ctl", pg->bindir);
        char *argv[] = {pg_ctl, "-D", pg->datadir, "-m", "fast", "-w", "-t", "60", "stop", NULL};
        char *err = NULL;
        char *out = rb_sprintf("%s/pg_ctl.log", pg->pgdir);
        int rc = run(pg, argv, out, &err);
        if (rc != 0) {
            char *tail = err ? rb_strdup(err) : file_tail(out, 3);
            rb_warn(PG_CTX, "stopping the embedded PostgreSQL failed: %s", tail);
            free(tail);
        } else {
            rb_info(PG_CTX, "stopped the embedded PostgreSQL");
        }
        free(err);
        free(out);
        free(pg_ctl);
    }
    pgembed_free(pg);
}
