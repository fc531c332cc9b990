/* A throwaway PostgreSQL for integration tests: a cluster in a new temporary directory,
 * created and started with rb_pgembed (as the postgres user when we are root), stopped and
 * removed at the end. A watchdog process stops and removes it even if the test crashes.
 *
 *   struct pgtest t;
 *   if (pgtest_start(&t) != 0) fail();
 *   ... t.conninfo ...
 *   pgtest_kill(&t);     // pg_ctl stop -m immediate: the server vanishes under the pool
 *   pgtest_restart(&t);  // start it again on the same data directory
 *   pgtest_stop(&t);
 *
 * Header-only: tests/CMakeLists.txt builds each test from its one source file. */
#ifndef RB_PGTEST_H
#define RB_PGTEST_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/pgembed.h"

#define PGTEST_UNUSED __attribute__((unused))

struct pgtest {
    char dir[64];             /* the state directory; the cluster is in dir/pg */
    struct rb_pgembed *pg;    /* owned */
    char conninfo[512];       /* for database "rabta" */
    int watchdog_fd;          /* write end; closing it lets the watchdog clean up */
    pid_t watchdog;
};

/* Runs pg_ctl args... on the cluster (as postgres when root), waits. Returns its status. */
PGTEST_UNUSED static int pgtest_pg_ctl(const struct pgtest *t, const char *a1, const char *a2,
                                       const char *a3)
{
    glob_t g;
    char pg_ctl[512] = "pg_ctl";
    if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        /* glob sorts: take the last (newest, for versions with the same digit count) */
        snprintf(pg_ctl, sizeof(pg_ctl), "%s", g.gl_pathv[g.gl_pathc - 1]);
    }
    globfree(&g);
    char data[128];
    snprintf(data, sizeof(data), "%s/pg/data", t->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (geteuid() == 0) {
            struct passwd *pw = getpwnam("postgres");
            if (!pw || initgroups("postgres", pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
                setuid(pw->pw_uid) != 0)
                _exit(126);
        }
        if (chdir("/") != 0)
            _exit(126);
        execlp(pg_ctl, pg_ctl, "-D", data, "-w", "-t", "60", a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int pgtest_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

PGTEST_UNUSED static void pgtest_rm_rf(const char *dir)
{
    nftw(dir, pgtest_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Starts (again) with rb_pgembed; fills t->pg and t->conninfo. */
PGTEST_UNUSED static int pgtest_restart(struct pgtest *t)
{
    char *err = NULL;
    t->pg = rb_pgembed_start(t->dir, NULL, &err);
    if (!t->pg) {
        fprintf(stderr, "pgtest: cannot start PostgreSQL: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    snprintf(t->conninfo, sizeof(t->conninfo), "%s", rb_pgembed_conninfo(t->pg));
    return 0;
}

PGTEST_UNUSED static int pgtest_start(struct pgtest *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/rbpg-XXXXXX");
    if (!mkdtemp(t->dir)) {
        perror("pgtest: mkdtemp");
        return -1;
    }
    chmod(t->dir, 0711); /* the postgres user must pass through */
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    t->watchdog = fork();
    if (t->watchdog == 0) {
        /* Wait until the test closes the pipe or dies, then make sure nothing is left. */
        close(fds[1]);
        for (int fd = 3; fd < 1024; fd++)
            if (fd != fds[0])
                close(fd);
        signal(SIGINT, SIG_IGN);
        char c;
        while (read(fds[0], &c, 1) < 0 && errno == EINTR)
            ;
        pgtest_pg_ctl(t, "-m", "immediate", "stop");
        pgtest_rm_rf(t->dir);
        _exit(0);
    }
    close(fds[0]);
    t->watchdog_fd = fds[1];
    return pgtest_restart(t);
}

/* Stops the server at once, under whoever is connected (the handle from the last start is
 * dropped: it would otherwise stop the next server at pgtest_stop). */
PGTEST_UNUSED static int pgtest_kill(struct pgtest *t)
{
    int rc = pgtest_pg_ctl(t, "-m", "immediate", "stop");
    rb_pgembed_stop(t->pg); /* its own stop finds nothing running */
    t->pg = NULL;
    return rc;
}

PGTEST_UNUSED static void pgtest_stop(struct pgtest *t)
{
    if (t->pg)
        rb_pgembed_stop(t->pg);
    t->pg = NULL;
    if (t->watchdog > 0) {
        close(t->watchdog_fd);
        while (waitpid(t->watchdog, NULL, 0) < 0 && errno == EINTR)
            ;
        t->watchdog = 0;
    }
}

/* conninfo for another database of the cluster (later keywords win). */
PGTEST_UNUSED static void pgtest_conninfo_db(const struct pgtest *t, const char *dbname,
                                             char *out, size_t cap)
{
    snprintf(out, cap, "%s dbname=%s", t->conninfo, dbname);
}

#endif
