"""The web plugin in a real browser: Debian's chromium driven by playwright-core (tests/e2e/
web.e2e.js, node's test runner) against the real rabtad and a real PostgreSQL started here with
tests/integration/rbtest.py.

This file starts the servers, adds the staff accounts with the CLI, registers an office and an
official with the CLI's CSV import, and serves the browser test one thing it cannot see from a
page: the SMS the server queued (GET /sms?phone=, read from the messages table, exactly what the
gateway would send). The SLA file is the sample's with one difference: domicile certificates
(district_administration) have a 2-second deadline on a 24/7 calendar and level 1 notifies the
department's supervisors in their staff inbox, so the browser sees a real escalation's
notification. Screenshots go to $RB_BUILD_DIR/tests/e2e-artifacts."""
import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.parse

import rbtest

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "correct-horse-battery-9"
STAFF = [("off_pol", "officer", "police"), ("off_rev", "officer", "revenue"),
         ("sup_pol", "supervisor", "police"), ("ovs", "oversight", None),
         ("adm", "admin", None), ("sup_dc", "supervisor", "district_administration")]
SLA = """calendar: always.yaml
policies:
  default:     { acknowledge: 8h,  resolve: 40h }
  urgent:      { acknowledge: 2h,  resolve: 16h }
  information: { acknowledge: 8h,  resolve: 80h }
  feedback:    { acknowledge: 24h, resolve: 80h }
  quick:       { acknowledge: 1s,  resolve: 2s }
overrides:
  - { service: domicile_certificate, policy: quick }
escalation:
  - after: 0s
    actions: [ { notify: supervisor, via: inbox } ]
notify_language: en
close: { no_reply: 30d, no_rating: 30d, reopen_window: 30d }
"""
OFFICES = ("id,name_en,name_ur,department,district,services,supervisor\n"
           "lhr-gulberg,Gulberg Police Station,تھانہ گلبرگ,police,lahore,fir_registration,"
           "sup_pol\n")
OFFICIALS = "id,name,designation,office,phone\noff-e2e,Asif Khan,SHO,lhr-gulberg,03001112223\n"
NODE_TIMEOUT = 900


class Oracle(http.server.BaseHTTPRequestHandler):
    pg = None

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path != "/sms" or "phone" not in q:
            self.send_error(404)
            return
        rows = self.pg.query("SELECT body FROM messages WHERE to_address = '%s' "
                             "ORDER BY id DESC LIMIT 1" % q["phone"][0].replace("'", ""))
        body = json.dumps({"body": rows[0][0] if rows else None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class WebE2ETest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        tmp = cls.class_tmp()
        port = rbtest.free_port()
        cfg = rbtest.default_config(port, os.path.join(tmp, "rabtad", "state"), cls.pgs.url())
        sla = os.path.join(tmp, "sla")
        os.makedirs(sla, exist_ok=True)
        for name, text in (("always.yaml", "timezone: UTC\nhours:\n  mon-sun: [00:00-24:00]\n"),
                           ("sla.yaml", SLA)):
            with open(os.path.join(sla, name), "w") as f:
                f.write(text)
        cfg["sla"] = os.path.join(sla, "sla.yaml")
        cfg["plugins"].append({"name": "web", "config": {
            "dir": os.path.join(rbtest.SOURCE_DIR, "lua", "web"), "kiosk_reset": "60s"}})
        cls.rd = cls.class_rabtad(pg=cls.pgs, config=cfg, port=port)
        for user, role, dept in STAFF:
            args = [rbtest.RABTAD, "staff", "-c", cls.rd.config_path, "add", user, "--role",
                    role, "--name", user.replace("_", " ").title()]
            if dept:
                args += ["--department", dept]
            r = subprocess.run(args, input=PASSWORD + "\n", universal_newlines=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            assert r.returncode == 0, "staff add %s: %s" % (user, r.stderr)
        for what, text in (("offices", OFFICES), ("officials", OFFICIALS)):
            path = os.path.join(tmp, what + ".csv")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([rbtest.RABTAD, what, "-c", cls.rd.config_path, "import", path],
                               universal_newlines=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            assert r.returncode == 0, "%s import: %s" % (what, r.stderr)
        Oracle.pg = cls.pgs
        cls.oracle = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Oracle)
        threading.Thread(target=cls.oracle.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.oracle.shutdown()
        cls.oracle.server_close()
        super().tearDownClass()

    def test_browser(self):
        artifacts = os.path.join(rbtest.BUILD_DIR, "tests", "e2e-artifacts")
        os.makedirs(artifacts, exist_ok=True)
        env = dict(os.environ, RB_BASE="http://127.0.0.1:%d" % self.rd.port,
                   RB_ORACLE="http://127.0.0.1:%d" % self.oracle.server_address[1],
                   RB_PASSWORD=PASSWORD, RB_ARTIFACTS=artifacts,
                   PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
        r = subprocess.run(["node", "--test", "--test-concurrency=1",
                            os.path.join(HERE, "web.e2e.js")],
                           cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=NODE_TIMEOUT)
        sys.stdout.write(r.stdout)
        self.assertEqual(r.returncode, 0, "the browser test failed (its output is above)")


if __name__ == "__main__":
    rbtest.main()
