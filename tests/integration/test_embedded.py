"""With no database url rabtad runs its own PostgreSQL under <state_dir>/pg: it creates the
cluster, serves, stops it on SIGTERM, and reuses the same data on the next start."""
import os
import signal
import subprocess

import rbtest


postmaster_info = rbtest.postmaster_info


class EmbeddedTest(rbtest.TestCase):
    def make(self):
        rd = self.rabtad(db_url="")  # no url: the embedded PostgreSQL
        rd.config["database"].pop("url", None)
        os.makedirs(rd.state_dir, exist_ok=True)
        os.chmod(rd.state_dir, 0o755)  # the postgres user must reach <state>/pg
        return rd

    def start(self, rd):
        """Starts rd on its state dir; returns the embedded cluster's data directory."""
        rd.start(args=["--state-dir", rd.state_dir], timeout=60.0)
        self.assertTrue(os.path.isdir(os.path.join(rd.state_dir, "pg")),
                        "no %s/pg" % rd.state_dir)
        pgdir = rd.embedded_datadir()
        self.assertIsNotNone(pgdir, "no cluster (PG_VERSION) under %s/pg" % rd.state_dir)
        return pgdir

    def psql(self, pgdir, sql):
        """SQL on the embedded cluster's Unix socket, as the postgres user."""
        info = postmaster_info(pgdir)
        self.assertIsNotNone(info, "no readable postmaster.pid in %s" % pgdir)
        _, port, sockdir = info
        self.assertTrue(sockdir, "the embedded postgres has no Unix socket directory")
        r = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", sockdir,
                            "-p", str(port), "-d", "rabta", "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/",
                           timeout=30, **rbtest.as_postgres())
        self.assertEqual(r.returncode, 0, "psql on the embedded cluster: %s"
                         % r.stderr.decode("utf-8", "replace"))
        return r.stdout.decode().strip()

    def test_creates_the_cluster_serves_and_stops_it_on_sigterm(self):
        rd = self.make()
        pgdir = self.start(rd)
        self.assertTrue(os.path.exists(os.path.join(pgdir, "PG_VERSION")),
                        "no cluster in %s" % pgdir)
        r = rd.get("/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json.get("database"), "ok", r)
        info = postmaster_info(pgdir)
        self.assertIsNotNone(info, "embedded postgres not running (no postmaster.pid)")
        pg_pid = info[0]
        self.assertTrue(rbtest.pid_alive(pg_pid))

        self.assertEqual(rd.stop(signal.SIGTERM, timeout=20.0), 0)
        self.assertFalse(os.path.exists(os.path.join(pgdir, "postmaster.pid")),
                         "postmaster.pid still there: the embedded postgres was not stopped")
        rbtest.wait_until(lambda: not rbtest.pid_alive(pg_pid), 5.0,
                          what="embedded postmaster %d to be gone" % pg_pid)

    def test_second_start_reuses_the_data_without_initdb(self):
        rd = self.make()
        pgdir = self.start(rd)
        self.psql(pgdir, "CREATE TABLE rbtest_marker (x int); INSERT INTO rbtest_marker VALUES (42)")
        st = os.stat(os.path.join(pgdir, "PG_VERSION"))
        self.assertEqual(rd.stop(signal.SIGTERM, timeout=20.0), 0)

        self.start(rd)
        st2 = os.stat(os.path.join(pgdir, "PG_VERSION"))
        self.assertEqual((st.st_ino, st.st_mtime_ns), (st2.st_ino, st2.st_mtime_ns),
                         "PG_VERSION was rewritten: initdb ran again")
        self.assertEqual(self.psql(pgdir, "SELECT x FROM rbtest_marker"), "42")
        self.assertEqual(self.psql(pgdir, "SELECT to_regclass('rabta_migrations') IS NOT NULL"),
                         "t")
        self.assertEqual(rd.get("/healthz").status, 200)
        self.assertEqual(rd.stop(signal.SIGTERM, timeout=20.0), 0)

    def test_state_dir_option_wins_and_the_cluster_has_no_tcp_and_its_own_settings(self):
        # docs/config.md: --state-dir overrides state_dir. docs/database.md: data/rabta.conf
        # (no TCP, the socket in pg/run, fsync on, UTC) is rewritten at every start; the
        # socket's directory is the owner's alone; initdb's and the server's logs are kept.
        rd = self.make()
        unused = os.path.join(self.tmp, "unused-state")
        rd.config["state_dir"] = unused
        pgdir = self.start(rd)
        self.assertFalse(os.path.exists(unused), "state_dir was used despite --state-dir")
        pg = os.path.join(rd.state_dir, "pg")
        self.assertEqual(os.path.realpath(pgdir), os.path.realpath(os.path.join(pg, "data")))
        for log in ("initdb.log", "postgres.log"):
            self.assertTrue(os.path.isfile(os.path.join(pg, log)), log)
        self.assertEqual(os.stat(os.path.join(pg, "run")).st_mode & 0o777, 0o700)
        conf = os.path.join(pgdir, "rabta.conf")
        with open(conf) as f:
            text = f.read()
        for line in ("listen_addresses = ''", "fsync = on", "timezone = 'UTC'"):
            self.assertIn(line, text)
        self.assertIn(os.path.join(pg, "run"), text)
        self.assertEqual(self.psql(pgdir, "SHOW listen_addresses"), "")
        self.assertEqual(self.psql(pgdir, "SHOW TimeZone"), "UTC")

        self.assertEqual(rd.stop(signal.SIGTERM, timeout=20.0), 0)
        with open(conf, "a") as f:
            f.write("fsync = off\n")
        self.start(rd)
        with open(conf) as f:
            self.assertNotIn("fsync = off", f.read(), "rabta.conf was not rewritten at start")
        self.assertEqual(self.psql(pgdir, "SHOW fsync"), "on")
        self.assertEqual(rd.stop(signal.SIGTERM, timeout=20.0), 0)


if __name__ == "__main__":
    rbtest.main()
