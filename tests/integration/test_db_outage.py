"""PostgreSQL goes away under a running rabtad: answers turn 503 JSON at once (no hang), and
come back to 200 by themselves once PostgreSQL is back. A write whose connection is lost after
it reached PostgreSQL is answered as of unknown outcome (503 outcome_unknown), never "nothing
was saved", and its retry with the same Idempotency-Key stores it once."""
import os
import secrets
import signal
import subprocess
import time

import rbtest
from test_app_auth import SignIn

PATHS = ("/healthz", "/api/v1/meta")


class DbOutageTest(SignIn, rbtest.TestCase):
    def timed_get(self, rd, path):
        # The client waits 10 s; the pool would wait 30 s for a connection (connect_timeout
        # below): an answer at all means the pool failed the request at once, as
        # docs/database.md says, rather than after a timeout. How fast is a benchmark's matter.
        t0 = time.monotonic()
        try:
            r = rd.get(path, timeout=10.0)
        except OSError as e:
            self.fail("%s gave no answer (%s) after %.2f s with the database down"
                      % (path, e, time.monotonic() - t0))
        rbtest.log("GET %s -> %d in %.3f s" % (path, r.status, time.monotonic() - t0))
        return r

    def test_db_down_gives_503_at_once_and_recovers_by_itself(self):
        pg = self.pg()
        rd = self.rabtad(pg=pg)
        rd.config["database"]["connect_timeout"] = "30s"
        rd.config["log"]["level"] = "debug"
        rd.start()
        for p in PATHS:
            self.assertEqual(rd.get(p).status, 200, "%s before the outage" % p)

        since = rd.log_offset()
        pg.stop("fast")
        rd.wait_for_log(r"database unavailable", since=since, timeout=30)
        for p in PATHS:
            self.assertErrorJSON(self.timed_get(rd, p), 503)
        # Still answered at once while it tries to reconnect (a failed attempt seen first).
        since = rd.log_offset()
        rd.wait_for_log(r"connection \d+: connecting -. down", since=since, timeout=30)
        for p in PATHS:
            self.assertErrorJSON(self.timed_get(rd, p), 503)

        pg.start()
        t0 = time.monotonic()

        def all_ok():
            return all(rd.get(p, timeout=2.0).status == 200 for p in PATHS)

        rbtest.wait_until(all_ok, 30.0, interval=0.2,
                          what="/healthz and /api/v1/meta to answer 200 after PostgreSQL restart")
        rbtest.log("recovered %.1f s after PostgreSQL came back" % (time.monotonic() - t0))
        self.assertTrue(rd.running())

    def test_write_cut_off_inside_the_database_is_of_unknown_outcome(self):
        self.pgs = pg = self.pg()
        self.rd = rd = self.rabtad(pg=pg, start=True)
        _, token = self.sign_in()
        # A transaction holding cases in SHARE mode: the submission's INSERT waits inside
        # PostgreSQL, where the test cuts its connection.
        locker = subprocess.Popen(
            [os.path.join(pg.bindir, "psql"), "-X", "-h", "127.0.0.1", "-p", str(pg.port),
             "-U", rbtest.PG_USER, "-d", pg.dbname, "-c",
             "BEGIN; LOCK TABLE cases IN SHARE MODE; SELECT pg_sleep(120); COMMIT;"],
            env=dict(os.environ, PGAPPNAME="locker"), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: locker.poll() is None and locker.kill())
        rbtest.wait_until(lambda: pg.scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE"
            " a.application_name = 'locker' AND l.relation = 'cases'::regclass AND l.granted")
            == "1", 20.0, what="the locker to hold cases")
        body = {"kind": "complaint", "service": "birth_certificate", "district": "lahore",
                "text": "Cut off " + secrets.token_hex(6)}
        h = dict(self.auth(token), **{"Idempotency-Key": "k-" + secrets.token_hex(8)})
        post = rbtest.BackgroundThread(
            lambda: rd.post("/api/v1/cases", body, headers=h, timeout=60)).start()
        waiting = rbtest.wait_until(lambda: pg.scalar(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND application_name <> 'locker' AND datname = '%s'" % pg.dbname), 20.0,
            what="the submission to wait on the lock inside PostgreSQL")
        # The backend dies without a word (as in a crash or a cut network): rabtad cannot
        # know whether PostgreSQL got as far as COMMIT. (pg_terminate_backend would send an
        # error first, which says the transaction was rolled back.)
        os.kill(int(waiting), signal.SIGKILL)
        r = post.join(60)
        self.assertErrorJSON(r, 503, "outcome_unknown")
        self.assertIn("may or may not", r.json["error"]["message"])
        self.assertIn("Idempotency-Key", r.json["error"]["message"])
        self.assertNotIn("nothing was saved", r.json["error"]["message"])
        locker.wait(30)  # PostgreSQL's crash restart ended its session too
        again = rbtest.wait_until(
            lambda: (lambda x: x if x.status != 503 else None)(
                rd.post("/api/v1/cases", body, headers=h)), 15.0, interval=0.2,
            what="the retry to be answered once the pool has reconnected")
        self.assertEqual(again.status, 201, again)
        self.assertEqual(pg.scalar("SELECT count(*) FROM cases WHERE text = '%s'"
                                   % body["text"]), "1", "stored once")


if __name__ == "__main__":
    rbtest.main()
