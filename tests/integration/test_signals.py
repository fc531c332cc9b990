"""SIGTERM and SIGINT stop rabtad cleanly: exit 0, nothing left behind, and a request in
flight is answered before the process exits."""
import os
import signal
import time

import rbtest


def good_plugin():
    return os.path.join(rbtest.TEST_PLUGIN_DIR, "good.so")


class SignalsTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()

    def stops_cleanly_on(self, sig):
        # With nothing in flight there is nothing to wait for: the exit comes without waiting
        # out shutdown_grace (60 s here), whatever the machine's load (no wall-clock limit).
        grace = 60.0
        rd = self.rabtad(pg=self.pgs, start=False)
        rd.config["server"]["shutdown_grace"] = "%ds" % grace
        rd.start()
        pid = rd.pid
        kids = rbtest.descendants_of(pid)
        t0 = time.monotonic()
        rd.send_signal(sig)
        code = rd.wait(2 * grace)
        took = time.monotonic() - t0
        self.assertEqual(code, 0, "exit code after %s" % sig.name)
        self.assertLess(took, grace, "waited out shutdown_grace with nothing in flight")
        self.assertFalse(rbtest.pid_alive(pid), "pid %d still there" % pid)
        left = rbtest.processes_in_group(pid) + [k for k in kids if rbtest.pid_alive(k)]
        self.assertEqual(left, [], "processes left behind after %s: %r" % (sig.name, left))
        self.assertRegex(rd.log_text(), r"(?i)stop", "no shutdown in the log")

    def test_sigterm_exits_0_without_waiting_out_the_grace_leaving_no_process(self):
        self.stops_cleanly_on(signal.SIGTERM)

    def test_sigint_exits_0_without_waiting_out_the_grace_leaving_no_process(self):
        self.stops_cleanly_on(signal.SIGINT)

    def slow_server(self, **server):
        """rabtad with good.so, whose GET /test/sleep?s=N is a slow request."""
        self.assertTrue(os.path.exists(good_plugin()),
                        "test plugin %s not built (it provides the slow route)" % good_plugin())
        rd = self.rabtad(pg=self.pgs)
        rd.config["plugins"] = rd.config["plugins"] + [{"name": "good", "path": good_plugin()}]
        rd.config["server"].update(server)
        rd.start()
        return rd

    def wait_in_flight(self):
        """In flight = PostgreSQL is running the slow request's pg_sleep."""
        rbtest.wait_until(
            lambda: int(self.pgs.scalar("SELECT count(*) FROM pg_stat_activity WHERE query "
                                        "LIKE 'SELECT pg_sleep%' AND state = 'active'")) > 0,
            30.0, what="the slow request to reach PostgreSQL")

    def test_sigterm_finishes_the_request_in_flight_and_stops_accepting(self):
        rd = self.slow_server()
        # the slow request's failure, if any, reaches this test through join()
        th = rbtest.BackgroundThread(lambda: rd.get("/test/sleep?s=2", timeout=15.0)).start()
        self.wait_in_flight()
        since = rd.log_offset()
        rd.send_signal(signal.SIGTERM)
        # Once the server says it stopped accepting (a loaded machine may take a moment):
        rd.wait_for_log(r"no longer accepting", timeout=10.0, since=since)
        refused = False
        try:
            r = rd.get("/healthz", timeout=2.0)
            refused = r.status != 200
        except OSError:
            refused = True
        self.assertTrue(refused, "a new request was served after SIGTERM")
        code = rd.wait(10.0)
        resp = th.join(20.0)
        self.assertIsNotNone(resp, "the in-flight request got no answer")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json, {"slept": True})
        self.assertEqual(code, 0)

    def test_a_request_longer_than_shutdown_grace_does_not_hold_the_exit(self):
        # docs/config.md, server.shutdown_grace: how long requests in flight may take.
        rd = self.slow_server(shutdown_grace="1s")
        th = rbtest.BackgroundThread(lambda: self.slow_get(rd)).start()
        self.wait_in_flight()
        since = rd.log_offset()
        rd.send_signal(signal.SIGTERM)
        # The request would take two minutes; the process is gone long before.
        self.assertEqual(rd.wait(60.0), 0)
        rd.wait_for_log(r"shutdown grace period over with 1 request", since=since, timeout=5)
        self.assertNotEqual(th.join(60.0), 200, "the two-minute request was answered")
        # Its pg_sleep outlived the process: end it, so the next test's wait_in_flight sees
        # only its own request.
        sleeping = ("FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND "
                    "pid <> pg_backend_pid()")
        self.pgs.psql("SELECT pg_terminate_backend(pid) " + sleeping)
        rbtest.wait_until(lambda: self.pgs.scalar("SELECT count(*) " + sleeping) == "0", 30,
                          what="the orphaned pg_sleep to end")

    def slow_get(self, rd):
        try:
            return rd.get("/test/sleep?s=120", timeout=150.0).status
        except OSError:
            return None


if __name__ == "__main__":
    rbtest.main()
