"""What Open311 keeps between requests (plugins/open311, docs/open311.md "API keys" and
"Services"): a key found good is trusted for the plugin's api_key_cache (30 s by default)
without asking the database again, so a revoked key stops working within that time on every
server, and at once with api_key_cache 0; a value over 5 minutes stops the start, naming the
file, line and key. The service list is read once per configuration: a reload shows a new
service at once, and a POST for it is stored."""
import glob
import os
import shutil
import signal
import time
import urllib.parse

import rbtest
import test_open311
from test_open311 import FORM, V2

CACHE = 4.0  # seconds: api_key_cache of this test's server


class Open311KeyCacheTest(test_open311.Open311Server, rbtest.TestCase):
    @classmethod
    def configure(cls, config):
        cls.open311_config(config, api_key_cache="%gs" % CACHE)

    def key_answer(self, key):
        """POST with only the key: 403 when the key is refused, 400 (no service_code) when it
        is accepted. Nothing is stored either way."""
        body = urllib.parse.urlencode({"api_key": key})
        return self.rd.post(V2 + "/requests.json", body, headers=FORM).status

    def test_a_revoked_key_stops_working_within_the_cache_time(self):
        key = self.make_key("revoked-later")
        self.assertEqual(self.key_answer(key), 400, "a good key was refused")
        cached_at = time.monotonic()
        self.pgs.psql("UPDATE api_keys SET revoked_at = now() WHERE name = 'revoked-later'")
        revoked_at = time.monotonic()
        # The plugin trusts what it found a moment ago (the cache is what makes intake fast);
        # only meaningful while the cache time has not passed on this loaded machine.
        if revoked_at - cached_at < CACHE - 1.0:
            self.assertEqual(self.key_answer(key), 400,
                             "the key was looked up again: the cache is not used")
        rbtest.wait_until(lambda: self.key_answer(key) == 403, CACHE + 10,
                          what="the revoked key to be refused")
        refused_after = time.monotonic() - cached_at
        self.assertLessEqual(refused_after, CACHE + 2.0,
                             "a revoked key kept working %.1f s (cache %g s)"
                             % (refused_after, CACHE))
        self.assertEqual(self.key_answer(key), 403)

    def test_an_unknown_key_is_never_cached(self):
        key = self.make_key("added-later")
        self.pgs.psql("UPDATE api_keys SET revoked_at = now() WHERE name = 'added-later'")
        self.assertEqual(self.key_answer(key), 403)
        self.pgs.psql("UPDATE api_keys SET revoked_at = NULL WHERE name = 'added-later'")
        self.assertEqual(self.key_answer(key), 400, "a refusal was cached")

    def test_api_key_cache_without_a_cache_and_out_of_range(self):
        rd = self.rabtad(pg=self.pgs, start=False)
        self.open311_config(rd.config, api_key_cache="0s")
        rd.start()
        key = self.make_key("no-cache")
        body = urllib.parse.urlencode({"api_key": key})
        self.assertEqual(rd.post(V2 + "/requests.json", body, headers=FORM).status, 400)
        self.pgs.psql("UPDATE api_keys SET revoked_at = now() WHERE name = 'no-cache'")
        self.assertEqual(rd.post(V2 + "/requests.json", body, headers=FORM).status, 403,
                         "with api_key_cache 0 a revoked key must be refused at once")
        rd.stop()
        rd.config["plugins"][-1]["config"]["api_key_cache"] = "10m"
        rd.write_config()
        check = rbtest.run_rabtad(["--check", "-c", rd.config_path])
        self.assertNotEqual(check.returncode, 0, "--check passed api_key_cache 10m")
        self.assertIn("api_key_cache", check.stdout + check.stderr)
        rd.start(wait=False)
        self.assertNotEqual(rd.wait(), 0, "rabtad started with api_key_cache 10m")
        self.assertRegex(rd.log_text(), r"rabta\.yaml:\d+:\d+: key \\\"api_key_cache\\\": "
                         r"must be from 0 .* to 300s")


    def test_a_reload_shows_a_new_service_at_once(self):
        services = os.path.join(self.tmp, "services")
        os.makedirs(services)
        for f in glob.glob(os.path.join(rbtest.SOURCE_DIR, "config", "services", "*.yaml")):
            shutil.copy(f, services)
        rd = self.rabtad(pg=self.pgs, start=False)
        rd.config["services"] = os.path.join(services, "*.yaml")
        rd.start()
        codes = lambda: [s["service_code"] for s in rd.get(V2 + "/services.json").json]
        self.assertNotIn("fard_copy", codes())
        body = urllib.parse.urlencode({"api_key": self.key, "service_code": "fard_copy",
                                       "description": "x", "address_string": "Lahore"})
        self.assertEqual(rd.post(V2 + "/requests.json", body, headers=FORM).status, 404)
        with open(os.path.join(services, "fard.yaml")) as f:
            text = f.read().replace("id: fard", "id: fard_copy", 1)
        with open(os.path.join(services, "fard_copy.yaml"), "w") as f:
            f.write(text)
        since = rd.log_offset()
        rd.send_signal(signal.SIGHUP)
        rd.wait_for_log("configuration reloaded", timeout=30, since=since)
        self.assertIn("fard_copy", codes())
        self.assertEqual(rd.post(V2 + "/requests.json", body, headers=FORM).status, 201)


if __name__ == "__main__":
    rbtest.main()
