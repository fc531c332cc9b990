"""SIGHUP reloads the configuration; a broken one is refused and the old one stays."""
import signal

import rbtest


class ReloadTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()

    def setUp(self):
        super().setUp()
        self.rd = self.rabtad(pg=self.pgs, start=True)
        self.good = self.rd.config

    def break_config(self):
        """Writes a config with a wrong type (pool_size "four") over rabta.yaml."""
        bad = dict(self.good, database=dict(self.good["database"], pool_size="four"))
        self.rd.write_config(bad)

    def hup_and_wait(self, pattern):
        since = self.rd.log_offset()
        self.rd.send_signal(signal.SIGHUP)
        return self.rd.wait_for_log(pattern, timeout=10.0, since=since)

    def test_broken_config_on_sighup_is_refused_and_serving_continues(self):
        self.break_config()
        self.hup_and_wait(r"refused")
        self.assertTrue(self.rd.running(), "rabtad exited after a broken reload")
        self.assertEqual(self.rd.get("/healthz").status, 200)
        self.assertEqual(self.rd.get("/api/v1/meta").status, 200)

    def test_fixed_config_on_sighup_is_reloaded(self):
        self.break_config()
        self.hup_and_wait(r"refused")
        fixed = dict(self.good, log=dict(self.good["log"], level="debug"))
        self.rd.write_config(fixed)
        line = self.hup_and_wait(r"reloaded")
        self.assertNotRegex(line, r"(?i)refused")
        self.assertEqual(self.rd.get("/healthz").status, 200)

    def test_reload_applies_a_new_max_body(self):
        size = 2 * 1024 * 1024
        self.assertErrorJSON(self.rd.post_big("/api/v1/cases", size), 413)
        self.rd.write_config(dict(self.good, server=dict(self.good["server"], max_body="4MiB")))
        self.hup_and_wait(r"reloaded")
        r = self.rd.post_big("/api/v1/cases", size)
        self.assertNotEqual(r.status, 413, "max_body 4MiB after reload still refuses 2 MiB: %r"
                            % r)

    def test_refused_reload_keeps_the_old_max_body(self):
        size = 2 * 1024 * 1024
        bad = dict(self.good, server=dict(self.good["server"], max_body="4MiB"),
                   database=dict(self.good["database"], pool_size="four"))
        self.rd.write_config(bad)
        self.hup_and_wait(r"refused")
        self.assertErrorJSON(self.rd.post_big("/api/v1/cases", size), 413)


if __name__ == "__main__":
    rbtest.main()
