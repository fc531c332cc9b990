"""Proactive feedback, the registry and the CSV imports with the real binary and a real
PostgreSQL: offices, officials and transactions from CSV (rabtad offices|officials|
transactions import), duplicates, bad rows reported by line (malformed, oversized, hostile:
formula cells, invalid UTF-8, embedded NULs, wrong column counts) while good rows are kept,
and the data-quality counts (invalid and repeated phones per office)."""
import os

import rbtest

OFFICES = (
    "id,name_en,name_ur,department,district,services,supervisor\n"
    "lhr-dlc,Lahore Driving Licence Centre,لائسنس مرکز لاہور,police,lahore,"
    "driving_licence_issue;driving_licence_renewal;learner_permit,sup.lhr\n"
    "ksr-dlc,Kasur Driving Licence Centre,,police,kasur,driving_licence_issue,sup.ksr\n"
    "bad-dept,X,,no_such_department,lahore,driving_licence_issue,\n"
    "bad-svc,X,,police,lahore,domicile_certificate,\n")

OFFICIALS = (
    "id,name,designation,office,phone\n"
    "off-1,Asif Khan,Licensing Officer,lhr-dlc,03001234567\n"
    "off-2,Bilal Ahmed,Clerk,lhr-dlc,\n"
    "off-3,Camran Ali,Licensing Officer,ksr-dlc,\n"
    "off-4,Nobody,Clerk,no-such-office,\n")


def write(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


class FeedbackRegistry(rbtest.TestCase):
    """A PostgreSQL and a rabta.yaml on it (with config/outreach.yaml); the CLI runs on it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.class_pg()
        cls.r = cls.class_rabtad(pg=cls.db, start=False)
        cfg = rbtest.default_config(0, cls.class_tmp() + "/state", cls.db.url())
        cfg["outreach"] = os.path.join(rbtest.SOURCE_DIR, "config", "outreach.yaml")
        cls.r.write_config(cfg)
        cls.conf = cls.r.config_path
        tmp = cls.class_tmp()
        r = cls.cli(["offices", "import", write(tmp, "offices.csv", OFFICES)])
        assert r.returncode == 1, r
        r = cls.cli(["officials", "import", write(tmp, "officials.csv", OFFICIALS)])
        assert r.returncode == 1, r

    @classmethod
    def cli(cls, args):
        return rbtest.run_rabtad([args[0], "-c", cls.conf] + list(args[1:]), timeout=120)


class ImportTest(FeedbackRegistry):
    def test_offices_and_officials_are_imported_and_bad_rows_named_by_line(self):
        self.assertEqual(self.db.scalar("SELECT string_agg(id, ',' ORDER BY id) FROM offices"),
                         "ksr-dlc,lhr-dlc")
        self.assertEqual(self.db.scalar(
            "SELECT array_to_string(services, ';') || '#' || supervisor FROM offices"
            " WHERE id = 'lhr-dlc'"),
            "driving_licence_issue;driving_licence_renewal;learner_permit#sup.lhr")
        self.assertEqual(self.db.scalar("SELECT phone FROM officials WHERE id = 'off-1'"),
                         "+923001234567")
        self.assertEqual(self.db.scalar("SELECT count(*) FROM officials"), "3")
        tmp = self.tmp
        r = self.cli(["offices", "import", write(tmp, "o.csv", OFFICES)])
        self.assertIn("o.csv:4: no department \"no_such_department\"", r.stderr)
        self.assertIn("o.csv:5: service \"domicile_certificate\" belongs to another department",
                      r.stderr)
        r = self.cli(["officials", "import", write(tmp, "f.csv", OFFICIALS)])
        self.assertRegex(r.stderr, r"f\.csv:5: refused by the database: .*office")

    def test_transactions_good_rows_kept_bad_rows_by_line(self):
        rows = [
            "reference,office,service,official,citizen_name,phone,completed_at",
            "T-1,lhr-dlc,driving_licence_issue,off-1,Sana,03001110001,2026-03-01 10:00",  # 2
            "T-2,lhr-dlc,driving_licence_issue,off-1,\"Khan, Ali\",03001110002,2026-03-01 10:05",
            "T-1,lhr-dlc,driving_licence_issue,off-1,Sana,03001110001,2026-03-01 10:00",  # 4 dup
            "T-3,lhr-dlc,driving_licence_issue,off-1,=SUM(A1:A9),03001110003,"
            "2026-03-01 10:00",                                                             # 5
            "T-4,lhr-dlc,driving_licence_issue,off-1,Sana,03001110004",                    # 6
            "T-5,lhr-dlc,driving_licence_issue,off-3,Sana,03001110005,2026-03-01 10:00",   # 7
            "T-6,lhr-dlc,domicile_certificate,off-1,Sana,03001110006,2026-03-01 10:00",    # 8
            "T-7,lhr-dlc,driving_licence_issue,off-1,Sa\"na,03001110007,2026-03-01 10:00", # 9
            "T-8,lhr-dlc,driving_licence_issue,off-1,Sana,03001110008,yesterday",          # 10
            "T-9,lhr-dlc,driving_licence_issue,off-1," + "x" * 300 + ",0300,2026-03-01 10:00",
            "T-10,lhr-dlc,driving_licence_issue,off-1,Sana,not a phone,2026-03-01 10:00",  # 12
            "T-11,lhr-dlc,driving_licence_issue,off-1,Sana,03001110002,2026-03-01 10:00",  # 13
            "T-12,nowhere,driving_licence_issue,off-1,Sana,03001110002,2026-03-01 10:00",  # 14
        ]
        data = ("\n".join(rows) + "\n").encode()
        data += b"T-13,lhr-dlc,driving_licence_issue,off-1,S\xffna,03001110013,2026-03-01 10:00\n"
        data += b"T-14,lhr-dlc,driving_licence_issue,off-1,S\x00na,03001110014,2026-03-01 10:00\n"
        data += b"T-15,lhr-dlc,driving_licence_issue,off-2,Last,03001110015,2026-03-01T10:00Z\n"
        r = self.cli(["transactions", "import", write(self.tmp, "t.csv", data)])
        self.assertEqual(r.returncode, 1, r)
        err = r.stderr
        expect = {
            5: "column citizen_name starts like a spreadsheet formula",
            6: "6 fields where the header has 7",
            7: "official \"off-3\" is not of office \"lhr-dlc\"",
            8: "office \"lhr-dlc\" does not deliver service \"domicile_certificate\"",
            9: "a quote inside an unquoted field",
            10: "completed_at \"yesterday\"",
            11: "column citizen_name is too long",
            14: "unknown office \"nowhere\"",
            15: "invalid UTF-8",
            16: "an embedded NUL byte",
        }
        for line, why in expect.items():
            self.assertIn("t.csv:%d: %s" % (line, why), err)
        self.assertNotRegex(err, r"t\.csv:(2|3|4|12|13|17):")
        self.assertIn("5 transactions added or updated, 1 duplicates, 10 refused", r.stdout)
        self.assertIn("1 with an invalid phone", r.stdout)
        got = self.db.query("SELECT reference, coalesce(phone, '-'), citizen_name, state,"
                            " coalesce(disposition, '-') FROM transactions ORDER BY id")
        self.assertEqual([g[0] for g in got], ["T-1", "T-2", "T-10", "T-11", "T-15"])
        self.assertEqual(got[1][2], "Khan, Ali")
        self.assertEqual(got[2][1:], ["-", "Sana", "done", "unknown"])
        self.assertEqual(self.db.scalar(
            "SELECT to_char(completed_at AT TIME ZONE 'UTC', 'HH24:MI') FROM transactions"
            " WHERE reference = 'T-1'"), "05:00")  # Pakistan time without a zone
        # The same file again: all duplicates, nothing new.
        r = self.cli(["transactions", "import", write(self.tmp, "t2.csv", "\n".join(rows[:4]))])
        self.assertIn("0 transactions added or updated, 3 duplicates", r.stdout)
        self.assertEqual(self.db.scalar("SELECT count(*) FROM transactions"), "5")
        # Data quality: one invalid phone, one phone repeated (T-11 has T-2's), per office.
        self.assertEqual(self.db.query(
            "SELECT sum(transactions), sum(invalid_phone), sum(repeated_phone) FROM"
            " feedback_rollup WHERE office_id = 'lhr-dlc'"), [["5", "1", "1"]])
        # Each contactable one waits for its first outreach step (the schedule job turns it
        # into a step job when it is due).
        self.assertEqual(self.db.scalar("SELECT count(*) FROM transactions WHERE state ="
                                        " 'waiting' AND next_at IS NOT NULL"), "4")
        self.assertEqual(self.db.scalar("SELECT count(*) FROM jobs WHERE kind ="
                                        " 'outreach.schedule'"), "1")

    def test_check_names_outreach_errors_by_file_line_col(self):
        bad = write(self.tmp, "outreach.yaml",
                    "defaults:\n"
                    "  channels: [call, fax]\n"
                    "  agent_sample: 2\n"
                    "services:\n"
                    "  general_complaint: {delay: 1h}\n"
                    "  fir_registration: {survey: nosuch}\n")
        cfg = rbtest.default_config(0, self.tmp + "/state", self.db.url())
        cfg["outreach"] = bad
        conf = write(self.tmp, "rabta.yaml", __import__("json").dumps(cfg))
        r = rbtest.run_rabtad(["--check", "-c", conf])
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("outreach.yaml:2:20: key \"channels\": no channel \"fax\"", r.stderr)
        self.assertIn("outreach.yaml:3:17: key \"agent_sample\"", r.stderr)
        self.assertRegex(r.stderr, r"outreach.yaml:5:3: .*general_complaint.* does not ask for "
                                   r"feedback")


if __name__ == "__main__":
    rbtest.main()
