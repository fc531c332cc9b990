"""An existing database at the schema before messages became a core service (migrations up to
0027, applied and recorded as the rabtad of that time did) with data in it — a citizen, a case,
a sent and a queued SMS with its old 'message.send' job, the SMS log, the gateway's pace — is
upgraded by today's rabtad without loss: core's new migrations and the sms_kannel plugin's own
(recorded with the plugin as owner) apply, every row is still there, and the queued SMS goes
out to the SMSC peer through a real Kannel."""
import glob
import hashlib
import os
import unittest

import kannel
import rbtest

SECRET = "upgrade-secret"
PHONE = "+923005550001"
OLD_LAST = 27

POPULATE = """
WITH z AS (INSERT INTO citizens (phone, language) VALUES ('%(phone)s', 'ur') RETURNING id),
c AS (INSERT INTO cases (tracking_no, kind, status, citizen_id, channel, text, language)
      SELECT 'RB-OLD00-00000-1', 'complaint', 'routed', id, 'sms', 'پرانی شکایت', 'ur' FROM z
      RETURNING id, citizen_id),
e AS (INSERT INTO case_events (case_id, actor_type, actor_id, event, to_status, data)
      SELECT id, 'system', 'intake', 'submitted', 'submitted', '{"channel": "sms"}' FROM c),
sent AS (INSERT INTO messages (case_id, citizen_id, channel, to_address, body, template,
                               language, status, sent_at)
         SELECT id, citizen_id, 'sms', '%(phone)s', 'old sent SMS', 'sms.received', 'en',
                'sent', now() FROM c),
q AS (INSERT INTO messages (case_id, citizen_id, channel, to_address, body, language)
      SELECT id, citizen_id, 'sms', '%(phone)s', 'رابطہ: queued before the upgrade', 'ur'
      FROM c RETURNING id),
j AS (INSERT INTO jobs (kind, payload, run_at)
      SELECT 'message.send', jsonb_build_object('message_id', id), now() + interval '2 s'
      FROM q),
mo AS (INSERT INTO sms_mo (kannel_id, phone, to_number, command, text)
       VALUES ('old-kannel-1', '%(phone)s', '8080', 'help', 'HELP')),
p AS (INSERT INTO job_paces (kind, tat) VALUES ('message.send', 0))
SELECT 1
"""


def old_migrations():
    files = sorted(glob.glob(os.path.join(rbtest.SOURCE_DIR, "migrations", "*.sql")))
    return [f for f in files if int(os.path.basename(f)[:4]) <= OLD_LAST]


class UpgradeTest(rbtest.TestCase):
    def setUp(self):
        super().setUp()
        if not kannel.available():
            raise unittest.SkipTest("Kannel (bearerbox, smsbox) is not installed")

    def old_schema(self, pg):
        """Migrations 0001-0027, each in its own transaction with its row, as rabtad 0.x did."""
        pg.psql("CREATE TABLE rabta_migrations (version int PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
                " applied_by text NOT NULL)")
        for path in old_migrations():
            with open(path, "rb") as f:
                data = f.read()
            name = os.path.basename(path)
            pg.psql(data.decode("utf-8") + ";\nINSERT INTO rabta_migrations (version, name,"
                    " checksum, applied_by) VALUES (%d, '%s', '%s', 'rabtad 0.27')"
                    % (int(name[:4]), name, hashlib.sha256(data).hexdigest()))

    def test_a_populated_database_from_before_upgrades_without_loss_and_sends_its_queue(self):
        pg = self.pg()
        self.old_schema(pg)
        self.assertEqual(pg.scalar("SELECT max(version) FROM rabta_migrations"), str(OLD_LAST))
        pg.psql(POPULATE % {"phone": PHONE})
        before = {t: pg.scalar("SELECT count(*) FROM %s" % t)
                  for t in ("citizens", "cases", "case_events", "messages", "sms_mo")}
        queued = pg.scalar("SELECT id FROM messages WHERE status = 'queued'")

        port = rbtest.free_port()
        mo = ("http://127.0.0.1:%d/sms/kannel/mo?secret=%s&from=%%p&to=%%P&text=%%a&id=%%I"
              % (port, SECRET))
        k = kannel.Kannel(self.tmp, mo)
        self.addCleanup(k.stop)
        k.start()
        cfg = rbtest.default_config(port, os.path.join(self.tmp, "state"), pg.url())
        cfg["plugins"].append({"name": "sms_kannel", "config": {
            "secret": SECRET, "sendsms_url": k.sendsms_url, "username": kannel.SEND_USER,
            "password": kannel.SEND_PASSWORD, "dlr_base_url": "http://127.0.0.1:%d" % port}})
        rd = self.rabtad(pg=pg, port=port, config=cfg)
        rd.start()

        # the queued SMS reaches the SMSC peer, through the per-channel kind
        got = k.smsc.wait_mt(lambda m: m[1] == PHONE and "queued before the upgrade" in m[2],
                             timeout=30, what="the SMS queued before the upgrade")
        self.assertIn("رابطہ", got[2], "Urdu intact")
        rbtest.wait_until(lambda: pg.scalar("SELECT status FROM messages WHERE id = %s"
                                            % queued) in ("sent", "delivered"), 30,
                          what="the queued message recorded as sent")
        self.assertEqual(pg.scalar("SELECT count(*) FROM jobs WHERE kind = 'message.send'"), "0",
                         "no job of the old kind is left")
        self.assertEqual(pg.scalar("SELECT count(*) FROM job_paces WHERE kind ="
                                   " 'message.send.sms'"), "1", "the pace follows its kind")
        # nothing lost
        for t, n in before.items():
            self.assertEqual(pg.scalar("SELECT count(*) FROM %s" % t), n, "rows of %s" % t)
        self.assertEqual(pg.query("SELECT channel, status, body FROM messages WHERE"
                                  " body = 'old sent SMS'"), [["sms", "sent", "old sent SMS"]])
        self.assertEqual(pg.query("SELECT kannel_id, command FROM sms_received WHERE phone = '%s'"
                                  % PHONE), [["old-kannel-1", "help"]])
        self.assertEqual(pg.scalar("SELECT text FROM cases WHERE tracking_no ="
                                   " 'RB-OLD00-00000-1'"), "پرانی شکایت")
        # the migrations: core's new ones and the plugin's own, by owner
        owners = pg.query("SELECT owner, count(*), max(version) FROM rabta_migrations"
                          " GROUP BY owner ORDER BY owner")
        want_core = rbtest.migration_versions()
        self.assertEqual(owners, [["core", str(len(want_core)), str(want_core[-1])],
                                  ["sms_kannel", "1", "1"]])
        self.assertEqual(pg.scalar("SELECT count(*) FROM pg_constraint WHERE conname ="
                                   " 'messages_channel_check'"), "0", "the channel list is gone")
        # and a new SMS still works end to end after the upgrade
        k.smsc.send_mo(PHONE, "8080", "HELP")
        k.smsc.wait_mt(lambda m: m[1] == PHONE and "to complain" in m[2].lower(), timeout=30,
                       what="the HELP answer after the upgrade")


if __name__ == "__main__":
    rbtest.main()
