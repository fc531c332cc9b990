"""The IVR hotline (plugin ivr_asterisk) against a scripted Asterisk (asterisk_peer.py) that
speaks FastAGI as Asterisk does, with the real rabtad, PostgreSQL and a real Kannel for the
SMS that carries the tracking number."""

import json
import os
import re
import shutil

import asterisk_peer
import kannel
import rbtest
from test_sms import KannelCase

PHONE = "+923001234001"


class HotlineTest(KannelCase):
    PLUGIN = {"sender": "8080", "rate": 50, "burst": 50}

    @classmethod
    def config(cls):
        cls.rec = os.path.join(cls.class_tmp(), "recordings")
        os.makedirs(cls.rec, exist_ok=True)
        cls.agi_port = rbtest.free_port()
        plugins = rbtest.default_config(0, "x")["plugins"]
        plugins.append({"name": "ivr_asterisk", "config": {
            "agi_listen": "127.0.0.1:%d" % cls.agi_port, "recordings_dir": cls.rec,
            "key_timeout": "2s", "menu_tries": 3}})
        return {"plugins": plugins}

    # helpers ------------------------------------------------------------------------------
    def call(self, keys, phone=PHONE, **kw):
        c = asterisk_peer.AgiCall(self.agi_port, "hotline", callerid=phone, keys=keys,
                                  recordings_dir=self.rec, **kw)
        c.run(timeout=30)
        self.assertTrue(c.closed_by_rabtad, "rabtad did not end the call: %r" % c.commands)
        return c

    def complain(self, phone, service_key="2", lang="2"):
        # language, main menu "complaint", the service after the whole menu, "#" ends the
        # recording
        return self.call([lang, "1", service_key, "#"], phone=phone)

    def tracking_said(self, c):
        rows = self.db.query("SELECT tracking_no FROM cases WHERE channel = 'ivr'")
        for (t,) in rows:
            if t.replace("-", "") in c.said:
                return t
        self.fail("no stored tracking number was read back: said %r, commands %r" % (c.said, c.commands))

    # tests --------------------------------------------------------------------------------
    def test_voice_complaint_becomes_routed_case_with_audio_and_sms(self):
        c = self.complain(PHONE)
        t = self.tracking_said(c)
        self.assertIn("rabta/en/registered", c.played)
        self.assertEqual(c.played[-1], "rabta/en/goodbye")
        self.assertEqual(c.commands[-1], "HANGUP")
        self.assertTrue(any(x.startswith("RECORD FILE %s/rabta-" % self.rec)
                            for x in c.commands), c.commands)
        row = self.db.query(
            "SELECT c.status, c.service_id, c.channel, c.language, z.phone, c.kind"
            " FROM cases c JOIN citizens z ON z.id = c.citizen_id WHERE c.tracking_no = '%s'" % t)
        self.assertEqual(row, [["routed", "fard", "ivr", "en", PHONE, "complaint"]])
        att = self.db.query("SELECT a.content_type, length(a.bytes), encode(substr(a.bytes, 1, 4),"
                            " 'escape') FROM case_attachments a JOIN cases c ON c.id = a.case_id"
                            " WHERE c.tracking_no = '%s'" % t)
        self.assertEqual(att, [["audio/wav", str(len(asterisk_peer.wav_bytes(1.0))), "RIFF"]])
        self.assertFalse(os.listdir(self.rec), "the recording should be taken off the spool")
        sms = self.k.smsc.wait_mt(lambda m: m[1] == PHONE and t in m[2], 20.0,
                                  "the SMS with the tracking number")
        self.assertIn("Tracking number", sms[2])

    def test_status_by_phone_with_two_cases_reads_both_latest_first(self):
        phone = "+923001234002"
        t1 = self.tracking_said(self.complain(phone, service_key="1"))
        t2 = self.tracking_said(self.complain(phone, service_key="3"))
        c = self.call(["1", "2"], phone=phone)  # Urdu, status
        self.assertEqual(c.said, [t2.replace("-", ""), t1.replace("-", "")])
        self.assertEqual(c.played.count("rabta/ur/your-case"), 2)
        self.assertEqual(c.played.count("rabta/ur/status-routed"), 2)
        self.assertEqual(c.played[-1], "rabta/ur/goodbye")

    def test_status_for_a_caller_with_no_case(self):
        c = self.call(["1", "2"], phone="+923001234003")
        self.assertEqual(c.said, [])
        self.assertIn("rabta/ur/no-cases", c.played)
        self.assertEqual(c.commands[-1], "HANGUP")

    def test_feedback_with_a_rating_and_a_recording(self):
        phone = "+923001234004"
        c = self.call(["2", "3", "4", "#"], phone=phone)
        self.assertIn("rabta/en/goodbye", c.played)
        rows = self.db.query("SELECT c.kind, c.rating FROM cases c JOIN citizens z ON"
                             " z.id = c.citizen_id WHERE z.phone = '%s'" % phone)
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0][0], "feedback")

    def test_keypad_timeout_asks_again_then_says_goodbye(self):
        c = self.call([None, None, None])
        self.assertEqual(c.played.count("rabta/ur/choose-language"), 3)
        self.assertEqual(c.played.count("rabta/ur/invalid"), 2)
        self.assertEqual(c.played[-1], "rabta/ur/goodbye")
        self.assertEqual(c.commands[-1], "HANGUP")

    def test_a_wrong_key_is_refused_and_the_menu_asked_again(self):
        c = self.call(["2", "7", "2"], phone="+923001234005")
        self.assertEqual(c.played.count("rabta/en/main-menu"), 2)
        self.assertIn("rabta/en/invalid", c.played)
        self.assertIn("rabta/en/no-cases", c.played)

    def test_hang_up_in_every_state_ends_the_call_cleanly(self):
        for keys, hangup_on in [(["hangup"], None), (["1", "hangup"], None),
                                (["1", "1", "hangup"], None), (["1", "1", "2"], "STREAM FILE"),
                                (["1", "3", "hangup"], None), (["1", "2"], "SAY ALPHA"),
                                (["1", "1", "1", "#"], "SAY ALPHA")]:
            with self.subTest(keys=keys, hangup_on=hangup_on):
                c = self.call(list(keys), phone="+923001234006", hangup_on=hangup_on)
                self.assertTrue(c.dead)
                self.assertNotIn("HANGUP", c.commands[-1:] if hangup_on is None else [])
        self.assertEqual(self.r.get("/healthz").status, 200)

    def test_hang_up_during_the_recording_still_files_the_complaint(self):
        phone = "+923001234007"
        c = self.call(["2", "1", "4", "hangup"], phone=phone)
        self.assertTrue(c.dead)
        t = rbtest.wait_until(lambda: self.db.scalar(
            "SELECT c.tracking_no FROM cases c JOIN citizens z ON z.id = c.citizen_id"
            " WHERE z.phone = '%s'" % phone), 15.0, what="the complaint of a caller who hung up")
        self.assertEqual(self.db.scalar("SELECT service_id FROM cases WHERE tracking_no = '%s'" % t),
                         "fir_registration")
        self.k.smsc.wait_mt(lambda m: m[1] == phone and t in m[2], 20.0,
                            "the SMS with the tracking number after a hang-up")

    def test_hang_up_while_the_complaint_is_stored_files_it_and_rabtad_stays_up(self):
        phone = "+923001234008"
        c = asterisk_peer.AgiCall(self.agi_port, "hotline", callerid=phone,
                                  keys=["2", "1", "4", "#"], recordings_dir=self.rec,
                                  close_after="RECORD FILE").run(timeout=30)
        self.assertTrue(c.dead)
        t = rbtest.wait_until(lambda: self.db.scalar(
            "SELECT c.tracking_no FROM cases c JOIN citizens z ON z.id = c.citizen_id"
            " WHERE z.phone = '%s'" % phone), 15.0, what="the complaint of a caller who left")
        self.k.smsc.wait_mt(lambda m: m[1] == phone and t in m[2], 20.0,
                            "the SMS with the tracking number after the caller left")
        self.assertEqual(self.r.get("/healthz").status, 200)
        # the next call is served, and reads the case back
        c2 = self.call(["1", "2"], phone=phone)
        self.assertEqual(c2.said, [t.replace("-", "")])

    def test_malformed_headers_and_unknown_replies_are_refused_cleanly(self):
        off = self.r.log_offset()
        c = asterisk_peer.AgiCall(self.agi_port, headers="agi_network: yes\nthis is not agi\n\n")
        c.run(timeout=15)
        self.assertTrue(c.closed_by_rabtad)
        self.assertEqual(c.commands, [])
        self.r.wait_for_log(r"malformed header line", since=off)
        c = self.call(["1"], extra_lines={"ANSWER": "299 result=0\n"})
        self.assertEqual(c.commands, ["ANSWER"])
        self.r.wait_for_log(r"unexpected line \\\"299 result=0\\\"", since=off)
        c = self.call([], extra_lines={"ANSWER": "510 Invalid or unknown command\n"})
        self.assertEqual(c.commands, ["ANSWER"])
        self.assertEqual(self.r.get("/healthz").status, 200)


class HotlineCheckTest(rbtest.TestCase):
    def check_with(self, name, old, new):
        """rabtad --check with the plugin, on a copy of lua/ whose lua/<name> has old
        replaced by new."""
        lua = os.path.join(self.tmp, "lua")
        if not os.path.isdir(lua):
            shutil.copytree(os.path.join(rbtest.SOURCE_DIR, "lua"), lua)
        text = open(os.path.join(rbtest.SOURCE_DIR, "lua", name), encoding="utf-8").read()
        self.assertIn(old, text)
        open(os.path.join(lua, name), "w", encoding="utf-8").write(text.replace(old, new))
        cfg = rbtest.default_config(rbtest.free_port(), os.path.join(self.tmp, "state"))
        cfg["lua_dir"] = lua
        cfg["plugins"].append({"name": "ivr_asterisk",
                               "config": {"recordings_dir": self.tmp}})
        conf = os.path.join(self.tmp, "rabta.yaml")
        open(conf, "w").write(json.dumps(cfg))
        return rbtest.run_rabtad(["--check", "-c", conf])

    def test_check_refuses_a_prompt_missing_from_the_catalogue(self):
        p = self.check_with("ivr.lua", 'thanks = { play = "cfmp-thanks" }',
                            'thanks = { play = "cfmp-thanks-typo" }')
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn('plugin ivr_asterisk: lua/ivr.lua: scripts.cfmp_survey.steps.thanks: '
                      'prompt "cfmp-thanks-typo" is not in the ur catalogue', p.stderr)
        p = self.check_with("ivr.lua", 'keys = "12", answers = { satisfied = "1", bribe = "2" }',
                            'keys = "12", answers = { satisfied = "2", bribe = "2" }')
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("tests[1] (cfmp_survey, keys", p.stderr)

    def test_check_refuses_a_survey_question_whose_prompt_is_not_in_the_catalogue(self):
        p = self.check_with("surveys.lua", 'prompt = "survey_delayed"', 'prompt = "survey_late"')
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn('plugin ivr_asterisk: lua/ivr.lua: survey_calls: survey "default" of '
                      'lua/surveys.lua, question "delayed": prompt "survey_late" is not in the '
                      'ur catalogue', p.stderr)


if __name__ == "__main__":
    rbtest.main()
