"""SLA reports under the staff API (core/staff/reports.c) with the real binary and a real
PostgreSQL, on known data written straight into the tables: the numbers per department,
service, officer and district (expected values computed here from the same data), CSV read
back with Python's csv module (a name with a comma and quotes survives), the scope of each
role, and every bad parameter answered 400 with a clear message."""
import csv
import datetime
import io
import statistics
import subprocess
import urllib.parse
from decimal import ROUND_HALF_UP, Decimal

import rbtest
from test_sla_events import PASSWORD, SlaStaffBase

KHAN = 'Khan, "Bobby" Imran'
OPEN = {"submitted", "routed", "acknowledged", "in_progress", "awaiting_citizen",
        "transferred", "reopened"}
H = 3600.0


def half_up(x, places=0):
    q = Decimal(1).scaleb(-places)
    return float(Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_UP))


def percentile_cont(values, p):
    v = sorted(values)
    pos = p * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


class SlaReportsTest(SlaStaffBase):
    @classmethod
    def set_up_servers(cls):
        super().set_up_servers()
        r = subprocess.run([rbtest.RABTAD, "staff", "-c", cls.rd.config_path, "add", "khan",
                            "--role", "officer", "--department", "police", "--name", KHAN],
                           input=PASSWORD + "\n", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
        assert r.returncode == 0, r.stderr
        ids = dict(cls.pgs.query("SELECT username, id FROM staff"))
        now = float(cls.pgs.scalar("SELECT extract(epoch from now())"))
        cls.now = now
        cls.cases = []
        for i in range(40):
            dept = "police" if i % 2 == 0 else "revenue"
            c = {
                "tn": "RPT-%04d" % i,
                "dept": dept,
                "service": "character_certificate" if dept == "police" else "fard",
                "district": ["lahore", "kasur", "multan"][i % 3],
                "created": now - (7 * i + 1) * H,  # ages away from the 1/3/7-day edges
                "officer": ["khan", "off_pol" if dept == "police" else "off_rev", None,
                            "sup_pol" if dept == "police" else "sup_rev"][i % 4],
            }
            c["ack_due"] = c["created"] + 4 * H
            c["resolve_due"] = c["created"] + 48 * H
            c["acked"] = c["created"] + (i % 5 + 1) * H if i % 4 != 3 else None
            c["resolved"] = (c["created"] + (1.5 * i + 10) * H) if i % 3 == 0 and i > 0 else None
            c["status"] = ("resolved" if c["resolved"] else
                           "acknowledged" if c["acked"] else "routed")
            c["rating"] = i % 5 + 1 if i % 3 == 0 else None  # 1-5: satisfied from 3
            cls.cases.append(c)
        # One case before the period: counted nowhere.
        cls.cases_outside = [{"tn": "RPT-OLD1", "dept": "police", "service": "fard",
                              "district": "lahore", "created": now - 60 * 24 * H,
                              "officer": "khan", "ack_due": now - 59 * 24 * H,
                              "resolve_due": now - 58 * 24 * H, "acked": None,
                              "resolved": None, "status": "routed", "rating": 5}]
        rows = []
        for c in cls.cases + cls.cases_outside:
            def ts(x):
                return "to_timestamp(%r)" % x if x is not None else "NULL"
            rows.append("('%s', 'complaint', '%s', 'app', '%s', '%s', '%s', %s, %s, %s, %s,"
                        " %s, %s, %s)" % (c["tn"], c["status"], c["service"], c["dept"],
                                          c["district"], ts(c["created"]), ts(c["ack_due"]),
                                          ts(c["resolve_due"]), ts(c["acked"]),
                                          ts(c["resolved"]),
                                          ids[c["officer"]] if c["officer"] else "NULL",
                                          c["rating"] or "NULL"))
        cls.pgs.psql("INSERT INTO cases (tracking_no, kind, status, channel, service_id,"
                     " department_id, district_id, created_at, ack_due_at, resolve_due_at,"
                     " acknowledged_at, resolved_at, assigned_staff_id, rating) VALUES "
                     + ",".join(rows))
        cid = dict(cls.pgs.query("SELECT tracking_no, id FROM cases WHERE tracking_no LIKE 'RPT-%'"))
        # Firings: breaches count by level (ack apart); warnings and non-breaches do not.
        cls.firings = []
        for i, c in enumerate(cls.cases + cls.cases_outside):
            f = []
            if i % 5 == 0:
                f.append(("ack", 0, True))
            if i % 6 == 0:
                f.append(("resolve", 0, True))
            if i % 12 == 0:
                f.append(("resolve", 1, True))
            if i % 7 == 0:
                f.append(("warn", 0, True))
            if i % 8 == 1:
                f.append(("ack", 0, False))
            if i == 9:
                f.append(("citizen", 0, True))
            for k, level, breached in f:
                cls.pgs.psql("INSERT INTO sla_firings (case_id, check_kind, level, due, breached)"
                             " VALUES (%s, '%s', %d, to_timestamp(%r), %s)"
                             % (cid[c["tn"]], k, level, c["created"] + level + (0 if breached else 10),
                                breached))
            c["firings"] = f

    # ---- helpers -------------------------------------------------------------------------
    def period(self):
        day = datetime.datetime.utcfromtimestamp(self.now).date()
        return (day - datetime.timedelta(days=30)).isoformat(), day.isoformat()

    def report(self, user, **params):
        q = dict(zip(("from", "to"), self.period()))
        q.update(params)
        return self.staff_get("/reports/sla?" + urllib.parse.urlencode(q), user)

    def expected(self, key, cases):
        """The report's groups computed here: {group: row}."""
        now = float(self.pgs.scalar("SELECT extract(epoch from now())"))
        groups = {}
        for c in cases:
            g = {"department": c["dept"], "service": c["service"], "district": c["district"],
                 "officer": c["officer"]}[key] or None
            groups.setdefault(g, []).append(c)
        out = {}
        for g, cs in groups.items():
            ack_n = [c for c in cs if c["acked"] is not None or c["ack_due"] < now]
            ack_ok = [c for c in cs if c["acked"] is not None and c["acked"] <= c["ack_due"]]
            res_n = [c for c in cs if c["resolved"] is not None or c["resolve_due"] < now]
            res_ok = [c for c in cs if c["resolved"] is not None and
                      c["resolved"] <= c["resolve_due"]]
            ttr = [c["resolved"] - c["created"] for c in cs if c["resolved"] is not None]
            backlog = {"lt_1d": 0, "1_3d": 0, "3_7d": 0, "gt_7d": 0}
            for c in cs:
                if c["status"] in OPEN:
                    age = (now - c["created"]) / 86400
                    backlog["lt_1d" if age < 1 else "1_3d" if age < 3 else
                            "3_7d" if age < 7 else "gt_7d"] += 1
            breaches = {}
            for c in cs:
                for k, level, breached in c["firings"]:
                    if breached and k != "warn":
                        name = "ack" if k == "ack" else "level_%d" % (level + 1)
                        breaches[name] = breaches.get(name, 0) + 1
            out[g] = {
                "cases": len(cs),
                "acknowledged_on_time_pct":
                    half_up(100.0 * len(ack_ok) / len(ack_n), 1) if ack_n else None,
                "resolved_on_time_pct":
                    half_up(100.0 * len(res_ok) / len(res_n), 1) if res_n else None,
                "time_to_resolve_median_s":
                    int(half_up(percentile_cont(ttr, 0.5))) if ttr else None,
                "time_to_resolve_p90_s":
                    int(half_up(percentile_cont(ttr, 0.9))) if ttr else None,
                "backlog": backlog,
                "breaches": breaches,
                "rated": len([c for c in cs if c["rating"]]),
                "rating_avg": half_up(statistics.mean(c["rating"] for c in cs if c["rating"]), 2)
                if any(c["rating"] for c in cs) else None,
                "satisfied_pct": half_up(100.0 * len([c for c in cs if (c["rating"] or 0) >= 3])
                                         / len([c for c in cs if c["rating"]]), 1)
                if any(c["rating"] for c in cs) else None,
            }
        return out

    def check_groups(self, r, by, cases):
        self.assertEqual(r.status, 200, r)
        want = self.expected(by, cases)
        got = {g["group"]: {k: v for k, v in g.items() if k not in ("group", "name")}
               for g in r.json["groups"]}
        self.assertEqual(got, want, "report by %s" % by)

    # ---- the numbers -----------------------------------------------------------------------
    def test_numbers_by_every_grouping_match_the_data(self):
        for by in ("department", "service", "officer", "district"):
            r = self.report("adm", by=by)
            self.check_groups(r, by, self.cases)
            self.assertEqual(r.json["by"], by)
        r = self.report("adm", by="department")
        names = {g["group"]: g["name"] for g in r.json["groups"]}
        self.assertEqual(set(names), {"police", "revenue"})
        self.assertTrue(all(names.values()), "departments carry their names: %r" % names)
        r = self.report("adm", by="officer")
        self.assertIn(KHAN, [g["name"] for g in r.json["groups"]])
        # Sanity of the data itself: every kind of number is exercised.
        exp = self.expected("department", self.cases)["police"]
        self.assertTrue(0 < exp["acknowledged_on_time_pct"] < 100, exp)
        self.assertTrue(0 < exp["resolved_on_time_pct"] <= 100, exp)
        self.assertTrue(all(exp["backlog"].values()), exp)
        self.assertTrue({"ack", "level_1", "level_2"} <= set(exp["breaches"]), exp)

    def test_a_period_that_excludes_the_cases_is_empty(self):
        r = self.staff_get("/reports/sla?from=2020-01-01&to=2020-12-31", "adm")
        self.assertEqual((r.status, r.json["groups"]), (200, []), r)
        # The old case alone: 60 days ago.
        day = datetime.datetime.utcfromtimestamp(self.now - 60 * 86400).date().isoformat()
        r = self.staff_get("/reports/sla?from=%s&to=%s" % (day, day), "adm")
        self.check_groups(r, "department", self.cases_outside)

    def test_csv_parses_with_the_csv_module_and_matches_json(self):
        r = self.report("adm", by="officer", format="csv")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("text/csv"), r.headers)
        rows = list(csv.reader(io.StringIO(r.body.decode("utf-8"), newline="")))
        header = rows[0]
        self.assertEqual(header[:12], [
            "group", "name", "cases", "acknowledged_on_time_pct", "resolved_on_time_pct",
            "time_to_resolve_median_s", "time_to_resolve_p90_s", "backlog_lt_1d",
            "backlog_1_3d", "backlog_3_7d", "backlog_gt_7d", "breaches_ack"])
        self.assertEqual(header[12:], ["breaches_level_1", "breaches_level_2",
                                       "breaches_level_3"])
        want = self.expected("officer", self.cases)
        self.assertEqual(len(rows) - 1, len(want))
        for row in rows[1:]:
            self.assertEqual(len(row), len(header), row)
            rec = dict(zip(header, row))
            w = want[rec["group"] or None]
            self.assertEqual(int(rec["cases"]), w["cases"])
            for k in ("acknowledged_on_time_pct", "resolved_on_time_pct"):
                self.assertEqual(float(rec[k]) if rec[k] else None, w[k], k)
            for k in ("time_to_resolve_median_s", "time_to_resolve_p90_s"):
                self.assertEqual(int(rec[k]) if rec[k] else None, w[k], k)
            for b, n in w["backlog"].items():
                self.assertEqual(int(rec["backlog_" + b]), n, b)
            for k in ("ack", "level_1", "level_2", "level_3"):
                self.assertEqual(int(rec["breaches_" + k]), w["breaches"].get(k, 0), k)
            if rec["group"] == "khan":
                self.assertEqual(rec["name"], KHAN, "the name with a comma and quotes")

    # ---- scope ----------------------------------------------------------------------------
    def test_officers_and_supervisors_see_their_department_only(self):
        for user, dept in (("off_pol", "police"), ("sup_rev", "revenue")):
            r = self.report(user, by="department")
            self.check_groups(r, "department", [c for c in self.cases if c["dept"] == dept])
            r = self.report(user, by="district")
            self.check_groups(r, "district", [c for c in self.cases if c["dept"] == dept])
            r = self.report(user, department=dept)
            self.assertEqual(r.status, 200, r)
            other = "revenue" if dept == "police" else "police"
            r = self.report(user, department=other)
            self.assertEqual(r.status, 403, r)
            self.assertIn("own department", r.json["error"]["message"])
        for user in ("ovs", "adm"):
            r = self.report(user, department="revenue", by="service")
            self.check_groups(r, "service", [c for c in self.cases if c["dept"] == "revenue"])
        r = self.report("ovs", department="atlantis")
        self.assertEqual(r.status, 404, r)
        self.assertIn("atlantis", r.json["error"]["message"])

    def test_without_a_valid_token_401(self):
        q = "/api/v1/staff/reports/sla?from=2026-01-01&to=2026-01-31"
        self.assertEqual(self.rd.get(q).status, 401)
        self.assertEqual(self.rd.get(q, headers={"Authorization": "Bearer " + "x" * 43}).status,
                         401)
        self.assertEqual(self.rd.get(q, headers={"Authorization": "Basic abc"}).status, 401)
        self.assertEqual(self.rd.get(q, headers={"Authorization": "Bearer short"}).status, 401)
        # Bad parameters from an anonymous caller: still 401 (nothing is checked before).
        self.assertEqual(self.rd.get("/api/v1/staff/reports/sla?from=x").status, 401)

    # ---- bad parameters ----------------------------------------------------------------------
    def test_bad_parameters_answer_400_with_a_clear_message(self):
        cases = [
            ("", "from and to are required"),
            ("from=2026-01-01", "from and to are required"),
            ("from=2026-02-30&to=2026-03-01", "YYYY-MM-DD"),
            ("from=2026-1-1&to=2026-03-01", "YYYY-MM-DD"),
            ("from=2026-01-01T00:00&to=2026-03-01", "YYYY-MM-DD"),
            ("from=2026-03-02&to=2026-03-01", "is after to"),
            ("from=2024-01-01&to=2026-01-02", "at most 731 days"),
            ("from=2026-01-01&to=2026-01-31&by=planet", "by must be"),
            ("from=2026-01-01&to=2026-01-31&by=", "by must be"),
            ("from=2026-01-01&to=2026-01-31&format=xml", "format must be"),
            ("from=%27%3B+DROP+TABLE+cases%3B--&to=2026-01-31", "YYYY-MM-DD"),
            ("from=" + "9" * 5000 + "&to=2026-01-31", "YYYY-MM-DD"),
        ]
        for q, why in cases:
            r = self.staff_get("/reports/sla?" + q, "adm")
            self.assertEqual(r.status, 400, "%s: %r" % (q[:60], r))
            self.assertIn(why, r.json["error"]["message"], q[:60])
        r = self.staff_get("/reports/sla?from=2026-01-01&to=2026-01-31&department=" + "d" * 300,
                           "adm")
        self.assertEqual(r.status, 404, r)
        # Two whole years are fine, leap day included.
        r = self.staff_get("/reports/sla?from=2024-01-01&to=2025-12-31", "adm")
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    rbtest.main()
