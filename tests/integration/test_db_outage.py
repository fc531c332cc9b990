"""PostgreSQL goes away under a running rabtad: answers turn 503 JSON at once (no hang), and
come back to 200 by themselves once PostgreSQL is back."""
import time

import rbtest

PATHS = ("/healthz", "/api/v1/meta")


class DbOutageTest(rbtest.TestCase):
    def timed_get(self, rd, path):
        t0 = time.monotonic()
        try:
            r = rd.get(path, timeout=5.0)
        except OSError as e:
            self.fail("%s gave no answer (%s) after %.2f s with the database down"
                      % (path, e, time.monotonic() - t0))
        took = time.monotonic() - t0
        rbtest.log("GET %s -> %d in %.3f s" % (path, r.status, took))
        return r, took

    def test_db_down_gives_503_within_1s_and_recovers_within_15s(self):
        pg = self.pg()
        rd = self.rabtad(pg=pg, start=True)
        for p in PATHS:
            self.assertEqual(rd.get(p).status, 200, "%s before the outage" % p)

        pg.stop("fast")
        time.sleep(0.2)  # let the loop see the connections close
        for p in PATHS:
            r, took = self.timed_get(rd, p)
            self.assertErrorJSON(r, 503)
            self.assertLess(took, 1.0, "%s took %.2f s to answer 503" % (p, took))
        # Still answering promptly a little later (no hang while reconnecting).
        time.sleep(1.0)
        for p in PATHS:
            r, took = self.timed_get(rd, p)
            self.assertErrorJSON(r, 503)
            self.assertLess(took, 1.0, "%s took %.2f s to answer 503 (2nd)" % (p, took))

        pg.start()
        t0 = time.monotonic()

        def all_ok():
            return all(rd.get(p, timeout=2.0).status == 200 for p in PATHS)

        rbtest.wait_until(all_ok, 15.0, interval=0.2,
                          what="/healthz and /api/v1/meta to answer 200 after PostgreSQL restart")
        rbtest.log("recovered %.1f s after PostgreSQL came back" % (time.monotonic() - t0))
        self.assertTrue(rd.running())


if __name__ == "__main__":
    rbtest.main()
