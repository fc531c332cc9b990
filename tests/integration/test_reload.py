"""SIGHUP reloads the configuration; a broken one is refused and the old one stays."""
import json
import os
import shutil
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



class TemplatesReloadTest(rbtest.TestCase):
    """lua/templates.lua is reloaded with the rules; a broken one is refused (file:line) and
    the old templates stay in force."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()

    def otp_body(self, phone):
        r = self.rd.post("/api/v1/register", {"phone": phone, "language": "en"})
        self.assertEqual(r.status, 202, "register: %r" % r)
        return self.pgs.scalar("SELECT body FROM messages WHERE to_address = '%s'"
                               " ORDER BY id DESC LIMIT 1" % phone)

    def test_templates_reload_and_a_broken_file_is_refused(self):
        lua = os.path.join(self.tmp, "lua")
        shutil.copytree(os.path.join(rbtest.SOURCE_DIR, "lua"), lua)
        self.rd = self.rabtad(pg=self.pgs, start=False)
        self.rd.config["lua_dir"] = lua
        self.rd.start()
        self.assertIn("Your Rabta code is", self.otp_body("+923005550001"))
        path = os.path.join(lua, "templates.lua")
        text = open(path, encoding="utf-8").read()
        new = text.replace('en = "Your Rabta code is {code}.', 'en = "NEW: Rabta code {code}.')
        self.assertNotEqual(new, text)
        open(path, "w", encoding="utf-8").write(new)
        since = self.rd.log_offset()
        self.rd.send_signal(signal.SIGHUP)
        self.rd.wait_for_log(r"reloaded", timeout=10.0, since=since)
        self.assertTrue(self.otp_body("+923005550002").startswith("NEW: Rabta code "))
        # a misspelled placeholder: refused with the file and line, the old text stays
        line = new[:new.index('en = "NEW: Rabta code {code}.')].count("\n") + 1
        open(path, "w", encoding="utf-8").write(new.replace("NEW: Rabta code {code}.",
                                                            "BROKEN {cod}."))
        since = self.rd.log_offset()
        self.rd.send_signal(signal.SIGHUP)
        self.rd.wait_for_log(r"refused", timeout=10.0, since=since)
        with open(self.rd.logfile, "rb") as f:
            f.seek(since)
            msgs = [json.loads(x).get("msg", "") for x in f.read().decode().splitlines()
                    if x.startswith("{")]
        want = 'template "otp" (en): unknown placeholder {cod}'
        hits = [m for m in msgs if want in m]
        self.assertTrue(hits, "the refusal names the template: %r" % msgs[-5:])
        self.assertRegex(hits[0], r"^lua/templates\.lua:(%d|%d): " % (line - 1, line))
        self.assertTrue(self.otp_body("+923005550003").startswith("NEW: Rabta code "),
                        "the old templates stay after a refused reload")


if __name__ == "__main__":
    rbtest.main()
