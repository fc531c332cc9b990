"""docs/sms.md "Sending", against a gateway the test scripts (scripted.py: an HTTP server on
127.0.0.1 in Kannel's place at `sendsms_url` that answers each phone's sends as told and
records when each arrived) (the real Kannel cannot be made to answer 429 or to hang).

- 202 → sent; another 4xx → failed at once, the job dead, the gateway asked once;
- 5xx, 429 and no answer within `timeout` → retried on the queue's back-off, the message stays
  queued, and goes out once the gateway takes it;
- a reload (SIGHUP) changes the send rate at once."""
import json
import signal
import urllib.parse

import rbtest
import scripted

SECRET = "gateway-test-secret"


def gateway():
    """Kannel's sendsms, scripted per phone (the `to` of each send); success is 202."""
    def to(path, body):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)
        return q.get("to", [""])[0]
    return scripted.ScriptedServer(to, ok=202, ok_body=b"0: Accepted for delivery")


class DocumentedGatewayTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gw = gateway()
        cls.pgs = cls.class_pg()
        cfg = rbtest.default_config(0, cls.class_tmp() + "/rabtad/state", cls.pgs.url())
        cfg["jobs"] = {"backoff_base": "1s", "backoff_max": "2s"}
        cls.plugin = {"secret": SECRET, "sendsms_url": "http://127.0.0.1:%d/cgi-bin/sendsms"
                      % cls.gw.port, "username": "rabta", "password": "sendpw",
                      "sender": "8080", "dlr_base_url": "http://127.0.0.1:9", "rate": 1,
                      "burst": 1, "timeout": "1s"}
        cfg["plugins"].append({"name": "sms_kannel", "config": cls.plugin})
        cls.rd = cls.class_rabtad(pg=cls.pgs, config=cfg)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.gw.stop()

    def help_from(self, phone, mo_id):
        """A HELP from phone, as Kannel would hand it over: its answer is one message."""
        q = urllib.parse.urlencode({"secret": SECRET, "from": phone, "to": "8080",
                                    "text": "HELP", "id": mo_id})
        r = self.rd.get("/sms/kannel/mo?" + q)
        self.assertEqual(r.status, 200, r)
        return rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT id FROM messages WHERE to_address = '%s' ORDER BY id DESC LIMIT 1" % phone),
            10.0, what="the answer to %s's HELP to be queued" % phone)

    def message(self, mid):
        """(status, last_error, its send job's state or "gone" once done, attempts)"""
        return self.pgs.query("SELECT m.status, coalesce(m.last_error, ''),"
                              " coalesce(j.state::text, 'gone'), coalesce(j.attempts, 0)"
                              " FROM messages m LEFT JOIN jobs j ON j.kind LIKE 'message.send%%'"
                              " AND j.payload->>'message_id' = m.id::text WHERE m.id = %s"
                              % mid)[0]

    def test_a_4xx_is_final_and_5xx_429_and_timeouts_are_retried(self):
        script = {"+923006660001": [403], "+923006660002": [500, 503, 202],
                  "+923006660003": [429, 202], "+923006660004": ["slow", 202]}
        self.gw.script.update(script)
        mids = {p: self.help_from(p, "gw-%s" % p[-4:]) for p in script}
        for phone in ("+923006660002", "+923006660003", "+923006660004"):
            rbtest.wait_until(lambda: self.message(mids[phone])[0] == "sent", 30.0,
                              what="the answer to %s to go out after the gateway's refusals"
                              % phone)
            self.assertEqual(self.gw.answers(phone), script[phone],
                             "retried until the gateway took it, then not again")
            self.assertIn(self.message(mids[phone])[2], ("done", "gone"), "the job is over")
        status, err, state, attempts = self.message(mids["+923006660001"])
        self.assertEqual((status, state), ("failed", "dead"), "a 403 is final")
        self.assertIn("403", err)
        self.assertEqual(len(self.gw.answers("+923006660001")), 1, "the gateway asked once")
        self.assertEqual(attempts, "1")

    def test_z_a_reload_changes_the_send_rate(self):
        slow = ["+9230077700%02d" % i for i in range(4)]
        for i, p in enumerate(slow):
            self.help_from(p, "slow-%d" % i)
        rbtest.wait_until(lambda: all(self.gw.answers(p) for p in slow), 30.0,
                          what="the four answers at 1 a second")
        times = sorted(self.gw.times(p)[0] for p in slow)
        self.assertGreaterEqual(times[-1] - times[0], 2.7,
                                "4 sends at 1 a second (burst 1) span at least 3 intervals")
        cfg = json.loads(json.dumps(self.rd.config))
        for p in cfg["plugins"]:
            if p["name"] == "sms_kannel":
                p["config"].update(rate=50, burst=50)
        self.rd.write_config(cfg)
        since = self.rd.log_offset()
        self.rd.send_signal(signal.SIGHUP)
        self.rd.wait_for_log(r"reloaded", timeout=15.0, since=since)
        fast = ["+9230088800%02d" % i for i in range(10)]
        for i, p in enumerate(fast):
            self.help_from(p, "fast-%d" % i)
        rbtest.wait_until(lambda: all(self.gw.answers(p) for p in fast), 60.0,
                          what="the ten answers after the reload")
        # Measured against the old rate as this run saw it (the SMSC peer's times), not a
        # wall-clock limit: at the old 1 a second the 9 intervals would take at least 9 s.
        after = sorted(self.gw.times(p)[0] for p in fast)
        gap, old_gap = (after[-1] - after[0]) / 9, (times[-1] - times[0]) / 3
        self.assertLess(gap, old_gap / 2, "after the reload to 50 a second the sends were "
                        "%.2f s apart; before it %.2f s" % (gap, old_gap))


if __name__ == "__main__":
    rbtest.main()
