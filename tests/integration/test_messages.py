"""Messages as a core service (core/messages/sender.c, docs/plugins.md): the channels are what
the loaded plugins register as senders. A message for a channel nobody sends is refused with
a sentence; two plugins claiming one channel stop the start naming both; `rabtad --check`
names an escalation's via: channel nobody sends with file:line:col; a registered sender gets
each message once and the core records its outcome."""
import os
import re

import rbtest


def sender(name="test_sender", channels="fax"):
    return {"name": name, "path": os.path.join(rbtest.TEST_PLUGIN_DIR, name + ".so"),
            "config": {"channels": channels}}


class SendersTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()

    def test_a_message_for_a_channel_nobody_sends_is_refused_and_a_sent_one_is_recorded(self):
        rd = self.rabtad(pg=self.pgs, name="refuse")
        rd.config["plugins"] = rd.config["plugins"] + [sender(channels="fax")]
        rd.start()
        before = self.pgs.scalar("SELECT count(*) FROM messages")
        r = rd.post("/test/test_sender/message?channel=pigeon&to=%2B923001234567", {})
        self.assertEqual(r.status, 400, r)
        self.assertIn('no loaded plugin sends messages of channel "pigeon"',
                      r.json["error"]["message"], r)
        self.assertIn("fax", r.json["error"]["message"], "the sentence names the channels there are")
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM messages"), before,
                         "nothing stored for a refused channel")
        # A channel with a sender: stored with its per-channel job, sent once, recorded.
        r = rd.post("/test/test_sender/message?channel=fax&to=%2B923001234567", {})
        self.assertEqual(r.status, 201, r)
        mid = r.json["id"]
        rbtest.wait_until(lambda: self.pgs.scalar("SELECT status FROM messages WHERE id = %s"
                                                  % mid) == "sent", 15, what="the fax sent")
        row = self.pgs.query("SELECT channel, attempts, sent_at IS NOT NULL, last_error"
                             " FROM messages WHERE id = %s" % mid)[0]
        self.assertEqual(row, ["fax", "1", "t", ""], "the core recorded the sender's outcome")
        self.assertEqual(len(re.findall(r"sent message %s \(fax\)" % mid, rd.log_text())), 1,
                         "the sender got the message exactly once")

    def test_two_plugins_claiming_one_channel_are_refused_at_start_naming_both(self):
        rd = self.rabtad(pg=self.pgs, name="dup")
        rd.config["plugins"] = rd.config["plugins"] + [sender("test_sender", "sms"),
                                                       sender("test_sender2", "sms")]
        rd.start(wait=False)
        code = rd.wait(30.0)
        self.assertIn(code, (1, 2), "exit %r" % code)
        self.assertRegex(rd.log_text(), r'plugin test_sender2 cannot send channel \\"sms\\": '
                                        r'plugin test_sender sends it already')
        self.assertNotRegex(rd.log_text(), r"(?i)\bready\b", "it got ready with two SMS senders")
        # --check says the same without starting anything
        out = rbtest.run_rabtad(["--check", "-c", rd.config_path])
        self.assertEqual(out.returncode, 2, out)
        self.assertIn("test_sender2", out.stderr)

    def test_check_names_a_via_channel_nobody_sends_with_file_line_col(self):
        rd = self.rabtad(pg=self.pgs, name="check")
        with open(os.path.join(rbtest.SOURCE_DIR, "config", "sla.yaml")) as f:
            text = f.read()
        self.assertIn("via: sms", text)
        text = text.replace("via: sms", "via: pigeon", 1).replace(
            "calendar: calendars/", "calendar: %s/" % os.path.join(rbtest.SOURCE_DIR, "config",
                                                                  "calendars"))
        sla = os.path.join(self.tmp, "sla.yaml")
        with open(sla, "w") as f:
            f.write(text)
        line = next(i for i, ln in enumerate(text.splitlines(), 1) if "via: pigeon" in ln)
        col = text.splitlines()[line - 1].index("pigeon") + 1
        rd.config["sla"] = sla
        rd.write_config()
        out = rbtest.run_rabtad(["--check", "-c", rd.config_path])
        self.assertEqual(out.returncode, 2, out)
        want = '%s:%d:%d: key "via": no loaded plugin sends messages of channel "pigeon"' % (
            sla, line, col)
        self.assertIn(want, out.stderr)
        # the same file with a plugin that sends pigeon (and the sample's other channels): OK
        rd.config["plugins"] = rd.config["plugins"] + [sender(channels="pigeon,sms,email")]
        rd.write_config()
        out = rbtest.run_rabtad(["--check", "-c", rd.config_path])
        self.assertEqual(out.returncode, 0, out)


if __name__ == "__main__":
    rbtest.main()
