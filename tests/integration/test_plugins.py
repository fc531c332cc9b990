"""Plugins at start: a plugin that does not match the ABI is refused with one sentence naming
the file (exit 1 or 2, never a crash); a good one loads and serves its route."""
import json
import os

import rbtest

BROKEN = ("bad_abi", "bad_size", "no_symbol")


def plugin_path(name):
    return os.path.join(rbtest.TEST_PLUGIN_DIR, name + ".so")


class PluginsTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()

    def with_plugin(self, name):
        path = plugin_path(name)
        if not os.path.exists(path):
            self.fail("test plugin %s not built (RB_TEST_PLUGIN_DIR=%s)" % (path,
                                                                          rbtest.TEST_PLUGIN_DIR))
        rd = self.rabtad(pg=self.pgs, name=name)
        rd.config["plugins"] = rd.config["plugins"] + [{"name": name, "path": path}]
        return rd

    def refuses(self, name):
        rd = self.with_plugin(name)
        rd.start(wait=False)
        code = rd.wait(30.0)
        self.assertIn(code, (1, 2), "rabtad with %s.so: exit %r (negative = killed by signal)"
                      % (name, code))
        lines = [ln for ln in rd.log_text().splitlines() if name + ".so" in ln]
        self.assertTrue(lines, "no log line names %s.so; log:\n%s" % (name, rd.log_tail()))
        self.assertNotRegex(rd.log_text(), r"(?i)\bready\b", "it got ready despite %s" % name)

    def test_plugin_with_another_abi_is_refused_naming_the_file(self):
        self.refuses("bad_abi")

    def test_plugin_with_another_descriptor_size_is_refused_naming_the_file(self):
        self.refuses("bad_size")

    def test_plugin_without_entry_symbol_is_refused_naming_the_file(self):
        self.refuses("no_symbol")

    def test_good_plugin_loads_and_serves_its_route(self):
        rd = self.with_plugin("good")
        rd.start()
        r = rd.get("/test/good")
        self.assertEqual(r.status, 200, r)
        self.assertIsInstance(r.json, dict, r)
        self.assertEqual(r.json.get("plugin"), "good", r)

    def test_a_channels_origin_is_kept_in_the_submitted_event_and_bad_ones_refused(self):
        rd = self.with_plugin("good")
        rd.start()
        origin = '{"gateway_id":"g-1","to":"8080","note":"\u0627\u0631\u062f\u0648"}'
        r = rd.request("POST", "/test/case", body=origin.encode())
        self.assertEqual(r.status, 201, r)
        got = self.pgs.scalar("SELECT data::text FROM case_events WHERE case_id = %d"
                              " AND event = 'submitted'" % r.json["id"])
        self.assertEqual(json.loads(got), {"channel": "web", "origin": json.loads(origin)})
        r = rd.request("POST", "/test/case")  # no origin: the event as before
        self.assertEqual(r.status, 201, r)
        got = self.pgs.scalar("SELECT data::text FROM case_events WHERE case_id = %d"
                              " AND event = 'submitted'" % r.json["id"])
        self.assertEqual(json.loads(got), {"channel": "web"})
        before = self.pgs.scalar("SELECT count(*) FROM cases")
        for bad, why in ((b'["an", "array"]', "not a JSON object"),
                         (b'{"a": 1', "not a JSON object"),
                         (b'{"a": 1, "a": 2}', "not a JSON object"),
                         (b'{"x": "\xff"}', "not a JSON object"),
                         (('{"x": "%s"}' % ("y" * 8192)).encode(), "over the limit")):
            r = rd.request("POST", "/test/case", body=bad)
            self.assertEqual(r.status, 400, "origin %r: %r" % (bad[:40], r))
            self.assertIn(why, r.body.decode(), r)
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM cases"),
                         before, "no case for a refused origin")

    def test_a_channels_reply_is_stored_with_its_case_in_one_transaction(self):
        rd = self.with_plugin("good")
        # a reply is stored only on a channel some plugin sends
        rd.config["plugins"].append({"name": "test_sender", "path": plugin_path("test_sender"),
                                     "config": {"channels": "sms"}})
        rd.start()
        r = rd.request("POST", "/test/case?shape=reply", body=b'{"gateway_id":"g-2"}')
        self.assertEqual(r.status, 201, r)
        rows = self.pgs.query(
            "SELECT m.channel, m.to_address, m.template, position(c.tracking_no IN m.body) > 0,"
            "  m.language, e.data->'origin'->>'gateway_id',"
            "  c.created_at = e.at AND e.at = m.created_at"
            " FROM cases c JOIN case_events e ON e.case_id = c.id AND e.event = 'submitted'"
            " JOIN messages m ON m.case_id = c.id WHERE c.id = %d" % r.json["id"])
        self.assertEqual(rows, [["sms", "+923001119001", "sms.received", "t", "en", "g-2", "t"]],
                         "one message, the reply with the tracking number (no registered"
                         " notice), stored with the case and its origin by one transaction")
        # Its send job was queued with it (rabta_message_queue writes both in one statement):
        # the sender gets it and the message is marked sent. (The job itself is gone once run.)
        rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT status FROM messages WHERE case_id = %d" % r.json["id"]) == "sent", 30.0,
            what="the reply sent by its message.send.sms job (test_sender)")

    def test_a_plugin_built_with_the_first_submission_struct_is_read_to_its_size_only(self):
        rd = self.with_plugin("good")
        rd.start()
        # good.so fills every field added since with poison and says the first size.
        r = rd.request("POST", "/test/case?shape=first", body=b'{"gateway_id":"g-3"}')
        self.assertEqual(r.status, 201, r)
        case = r.json["id"]
        self.assertEqual(json.loads(self.pgs.scalar(
            "SELECT data::text FROM case_events WHERE case_id = %d AND event = 'submitted'"
            % case)), {"channel": "web"}, "no origin: that field is past the plugin's struct")
        self.assertEqual(self.pgs.query(
            "SELECT citizen_id IS NULL, (SELECT count(*) FROM messages WHERE case_id = %d),"
            " (SELECT count(*) FROM case_attachments WHERE case_id = %d)"
            " FROM cases WHERE id = %d" % (case, case, case)), [["t", "0", "0"]],
            "no citizen, reply or photo from past the plugin's struct")


if __name__ == "__main__":
    rbtest.main()
