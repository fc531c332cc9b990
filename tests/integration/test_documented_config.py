"""docs/config.md and docs/database.md sentence by sentence where no other file proves it,
with the real binary and a real PostgreSQL: a department's plugin must be listed, enabled and a
department plugin (--check, at the department file's line); relative paths are relative to
rabta.yaml's folder, not the working directory; --listen overrides server.listen; log.level
drops the lines below it; a job fails 10 times by default before it is dead and `rabtad jobs
list --state dead` shows it; a reload refuses a changed plugins list, keeps listen and the
database settings until a restart (saying so), and refuses a department file with a bad
duty_phone at its file:line:col; database.max_queue answers "overloaded" past it; a plugin's
migrations come from plugin_migrations_dir; the default intake limit counts anonymous
submissions only; the pool's sessions are named rabtad (docs/database.md)."""
import datetime
import os
import re
import shutil
import signal

import rbtest
from test_app_auth import SignIn
from test_staff_inbox import REVENUE_PHONE, DutyNotice, staff_inbox_plugins
from test_webhook import departments as copy_departments  # the sample's files

GOOD = os.path.join(rbtest.TEST_PLUGIN_DIR, "good.so")

EXTRA = """id: extra
name:
  en: "Extra"
  ur: "اضافی محکمہ"
plugin: %s
"""


def departments_copy(tmp, extra_plugin=None):
    """The sample departments in tmp/departments, with a department "extra" on extra_plugin
    (plugin: on line 5, column 9) when given; returns the glob for config."""
    d = os.path.join(tmp, "departments")
    pattern = copy_departments(d)
    if extra_plugin:
        with open(os.path.join(d, "zz_extra.yaml"), "w", encoding="utf-8") as f:
            f.write(EXTRA % extra_plugin)
    return pattern


class CheckTest(rbtest.TestCase):
    def check(self, extra_plugin, plugins=None):
        rd = self.rabtad(name="check")
        rd.config["departments"] = departments_copy(self.tmp, extra_plugin)
        if plugins is not None:
            rd.config["plugins"] = plugins
        rd.write_config()
        out = rbtest.run_rabtad(["--check", "-c", rd.config_path])
        self.assertEqual(out.returncode, 2, (out.stdout, out.stderr))
        return out.stderr

    def test_a_department_plugin_not_listed_is_an_error_at_its_line(self):
        err = self.check("nosuch")
        self.assertRegex(err, r'zz_extra\.yaml:5:9: key "plugin": department "extra" uses plugin '
                              r'"nosuch", which is not in the plugins list of .*rabta\.yaml '
                              r"\(listed: staff_inbox, webhook, app, open311\)")

    def test_a_department_may_not_use_a_disabled_plugin(self):
        err = self.check("webhook", plugins=[{"name": "staff_inbox"}, {"name": "app"},
                                             {"name": "webhook", "enabled": False}])
        self.assertRegex(err, r'zz_extra\.yaml:5:9: key "plugin": department "extra" uses plugin '
                              r'"webhook", which is disabled in .*rabta\.yaml:\d+:\d+')

    def test_a_department_on_a_channel_plugin_is_refused(self):
        err = self.check("app")
        self.assertRegex(err, r'zz_extra\.yaml:\d+:\d+: department "extra" uses plugin "app", '
                              r"which is a channel plugin; a department needs a department plugin")

    def test_relative_paths_are_relative_to_the_folder_of_rabta_yaml(self):
        # Every path of rabta.yaml's own keys relative to its folder; run from "/".
        rd = self.rabtad(name="relative")
        here = os.path.join(self.tmp, "conf", "deeper")
        os.makedirs(here)
        for key in ("lua_dir", "migrations_dir", "plugin_dir", "districts", "departments",
                    "services"):
            rd.config[key] = os.path.relpath(rd.config[key], here)
            self.assertTrue(rd.config[key].startswith(".."), rd.config[key])
        rd.config_path = os.path.join(here, "rabta.yaml")
        rd.write_config()
        out = rbtest.run_rabtad(["--check", "-c", rd.config_path], cwd="/")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("configuration OK", out.stdout)
        out = rbtest.run_rabtad(["--check", "-c", os.path.relpath(rd.config_path, self.tmp)],
                                cwd=self.tmp)
        self.assertEqual(out.returncode, 0, out.stderr)


# docs/config.md, "The sample province": each department's services, by id.
SAMPLE_PROVINCE = {
    "bureau": {"general_complaint"},
    "revenue": {"fard", "mutation", "property_registration"},
    "police": {"driving_licence_issue", "driving_licence_renewal", "learner_permit",
               "fir_registration", "character_certificate"},
    "health": {"treatment_dhq", "treatment_thq"},
    "excise": {"vehicle_registration", "vehicle_transfer", "token_tax", "property_tax"},
    "local_government": {"birth_certificate", "death_certificate", "marriage_certificate",
                         "building_plan_approval"},
    "transport": {"vehicle_fitness", "route_permit"},
    "home": {"arms_licence"},
    "school_education": {"school_admission", "teacher_absence"},
    "district_administration": {"domicile_certificate"},
}


class SampleProvinceTest(rbtest.TestCase):
    def test_the_sample_is_the_province_the_page_describes(self):
        # Ten departments on staff_inbox with 25 services as the table says, 36 districts in nine
        # divisions: as rabtad reads them (/api/v1/meta) and as the files say.
        pgs = self.pg()
        rd = self.rabtad(pg=pgs)
        rd.start()
        meta = rd.get("/api/v1/meta").json
        self.assertEqual((meta["departments"], meta["services"], meta["districts"]),
                         (10, 25, 36))
        conf = os.path.join(rbtest.SOURCE_DIR, "config")
        owners = {}
        for name in os.listdir(os.path.join(conf, "services")):
            with open(os.path.join(conf, "services", name), encoding="utf-8") as f:
                dept = re.search(r"^department:\s*(\w+)", f.read(), re.M).group(1)
            owners.setdefault(dept, set()).add(name[:-len(".yaml")])
        self.assertEqual(owners, SAMPLE_PROVINCE)
        for name in os.listdir(os.path.join(conf, "departments")):
            with open(os.path.join(conf, "departments", name), encoding="utf-8") as f:
                self.assertRegex(f.read(), r"(?m)^plugin: staff_inbox$", name)
        with open(os.path.join(conf, "districts.yaml"), encoding="utf-8") as f:
            divisions = set(re.findall(r"(?m)^\s*division:\s*(\w+)", f.read()))
        self.assertEqual(divisions, {"lahore", "gujranwala", "rawalpindi", "sargodha",
                                     "faisalabad", "multan", "bahawalpur", "dera_ghazi_khan",
                                     "sahiwal"})


class ServerTest(rbtest.TestCase):
    def test_listen_option_overrides_server_listen(self):
        pgs = self.pg()
        rd = self.rabtad(pg=pgs)
        rd.config["server"]["listen"] = "127.0.0.1:1"  # what the option must override
        rd.start(args=["--listen", "127.0.0.1:0"])
        self.assertNotEqual(rd.port, 1)
        self.assertEqual(rd.get("/healthz").status, 200)

    def test_listen_takes_a_bracketed_ipv6_address_and_a_host_name(self):
        pgs = self.pg()
        for listen, host, other in (("[::1]:0", "::1", "127.0.0.1"),
                                    ("localhost:0", "127.0.0.1", None)):
            rd = self.rabtad(pg=pgs, name="listen-" + host.replace(":", "v6").replace(".", "-"))
            rd.config["server"]["listen"] = listen
            rd.start(wait=False)
            port = rd.port

            def healthz(h=host, p=port):
                try:
                    return rbtest.http_request(p, "GET", "/healthz", host=h).status == 200
                except OSError:
                    return False
            rbtest.wait_until(healthz, 60, interval=0.1, what="/healthz on %s" % listen)
            if other:
                with self.assertRaises(OSError, msg="%s also served %s" % (listen, other)):
                    rbtest.http_request(port, "GET", "/healthz", host=other)
            self.assertEqual(rd.stop(), 0)

    def test_the_open_file_limit_is_raised_to_fit_max_connections_up_to_the_hard_limit(self):
        # Started with a soft limit of 1024: raised to fit max_connections + reserve; past
        # the hard limit, raised to it and a warning says how many are needed.
        import resource
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        self.assertGreater(hard, 6000, "the test needs a hard open-file limit above 6000")
        wrapper = os.path.join(self.tmp, "rabtad-1024")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nulimit -Sn 1024 || exit 99\nexec "%s" "$@"\n' % rbtest.RABTAD)
        os.chmod(wrapper, 0o755)
        pgs = self.pg()
        for conns, want in ((5000, 5100), (hard + 1000, hard)):
            rd = self.rabtad(pg=pgs, name="nofile-%d" % conns, binary=wrapper)
            rd.config["server"].update(max_connections=conns, connection_reserve=100)
            rd.start()
            with open("/proc/%d/limits" % rd.pid) as f:
                soft = int(re.search(r"^Max open files\s+(\d+)", f.read(), re.M).group(1))
            self.assertGreaterEqual(soft, want, conns)
            warned = [r for r in rd.log_records() if "file descriptors are allowed" in
                      r.get("msg", "")]
            self.assertEqual(len(warned), 1 if conns > hard else 0, warned)
            self.assertEqual(rd.stop(), 0)

    def test_districts_and_services_are_optional(self):
        # (The sample rules' self-tests name services: rules that need none here.)
        lua = os.path.join(self.tmp, "lua")
        shutil.copytree(os.path.join(rbtest.SOURCE_DIR, "lua"), lua)
        with open(os.path.join(lua, "routing.lua"), "w") as f:
            f.write('function route(case) return { department = "bureau" } end\n')
        pgs = self.pg()
        rd = self.rabtad(pg=pgs)
        del rd.config["districts"], rd.config["services"]
        rd.config["lua_dir"] = lua
        rd.start()
        meta = rd.get("/api/v1/meta").json
        self.assertEqual((meta["departments"], meta["services"], meta["districts"]), (10, 0, 0))
        r = rd.post("/api/v1/cases", {"kind": "complaint", "anonymous": True,
                                      "text": "The street light has been broken for a month"})
        self.assertEqual(r.status, 201, r)

    def test_log_level_drops_the_lines_below_it(self):
        pgs = self.pg()
        levels = {}
        for level in ("debug", "error"):
            rd = self.rabtad(pg=pgs, name="log-" + level)
            rd.config["log"]["level"] = level
            rd.start()
            self.assertEqual(rd.get("/no/such/path").status, 404)
            self.assertEqual(rd.stop(), 0)
            levels[level] = {r["level"] for r in rd.log_records() if "level" in r}
        # At debug the start, the request and the stop write debug and info lines; at error
        # none of them is written.
        self.assertTrue({"debug", "info"} <= levels["debug"], levels["debug"])
        self.assertEqual(levels["error"] - {"error"}, set(), levels["error"])

    def test_a_job_fails_ten_times_by_default_then_is_dead(self):
        pgs = self.pg()
        rd = self.rabtad(pg=pgs)
        rd.config["plugins"] = rd.config["plugins"] + [{"name": "good", "path": GOOD}]
        rd.config["jobs"] = {"backoff_base": "100ms", "backoff_max": "500ms"}
        rd.start()
        r = rd.post("/test/jobs?kind=test.fail&delay=0", {"n": 1})
        self.assertEqual(r.status, 200, r)
        jid = r.json["id"]
        rbtest.wait_until(lambda: pgs.scalar("SELECT state FROM jobs WHERE id = %d" % jid)
                          == "dead", 120, interval=0.2, what="the failing job to become dead")
        row = pgs.query("SELECT attempts, max_attempts, last_error FROM jobs WHERE id = %d"
                        % jid)[0]
        self.assertEqual(row[:2], ["10", "10"])
        self.assertIn("attempt 10", row[2])
        out = rbtest.run_rabtad(["jobs", "-c", rd.config_path, "list", "--state", "dead"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(str(jid), out.stdout)

    def test_sessions_are_named_rabtad(self):
        # docs/database.md, "Sessions": application_name=rabtad, the pool and the LISTEN
        # connection alike.
        pgs = self.pg()
        rd = self.rabtad(pg=pgs)
        rd.start()
        self.assertEqual(rd.get("/api/v1/meta").status, 200)
        rbtest.wait_until(lambda: int(pgs.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'rabta' AND "
            "application_name = 'rabtad'")) >= 2, 30, what="rabtad's sessions")
        self.assertEqual(pgs.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'rabta' AND backend_type = "
            "'client backend' AND application_name NOT IN ('rabtad', 'psql')"), "0")


class LimitsTest(SignIn, rbtest.TestCase):
    def test_database_max_queue_answers_overloaded_past_it(self):
        self.pgs = pgs = self.pg()
        rd = self.rabtad(pg=pgs)
        rd.config["plugins"] = rd.config["plugins"] + [{"name": "good", "path": GOOD}]
        rd.config["database"].update(pool_size=1, max_queue=1)
        rd.start()
        # The one connection sleeps in PostgreSQL; of three requests then, at most one may
        # wait for it (a background query of the jobs runner may take that place), so at
        # least two are refused at once.
        held = rbtest.BackgroundThread(lambda: rd.get("/test/sleep?s=120", timeout=180)).start()
        sleeper = rbtest.wait_until(lambda: pgs.scalar(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND "
            "state = 'active' AND application_name = 'rabtad'"), 30, what="the held connection")
        metas = [rbtest.BackgroundThread(lambda: rd.get("/api/v1/meta", timeout=180)).start()
                 for _ in range(3)]
        rbtest.wait_until(lambda: sum(not m.thread.is_alive() for m in metas) >= 2, 30,
                          what="two of three requests refused while max_queue is full")
        self.assertLessEqual(rbtest.metric_sum(rd.metrics(), "rabta_db_pool_waiting"), 1)
        pgs.psql("SELECT pg_cancel_backend(%s)" % sleeper)
        held.join(60)
        answers = [m.join(60) for m in metas]
        refused = [r for r in answers if r.status == 503]
        for r in refused:
            self.assertErrorJSON(r, 503, "overloaded")
        self.assertGreaterEqual(len(refused), 2, answers)
        for r in answers:
            self.assertIn(r.status, (200, 503), r)

    def test_plugin_migrations_come_from_plugin_migrations_dir(self):
        pgs = self.pg()
        d = os.path.join(self.tmp, "plugin-migrations")
        os.makedirs(os.path.join(d, "good", "migrations"))
        with open(os.path.join(d, "good", "migrations", "0001_marker.sql"), "w") as f:
            f.write("CREATE TABLE good_marker (x int);\n")
        rd = self.rabtad(pg=pgs)
        rd.config["plugins"] = rd.config["plugins"] + [{"name": "good", "path": GOOD}]
        rd.config["plugin_migrations_dir"] = d
        rd.start()
        self.assertEqual(pgs.scalar("SELECT to_regclass('good_marker') IS NOT NULL"), "t")
        self.assertEqual(pgs.query("SELECT owner, version, name FROM rabta_migrations WHERE "
                                   "owner = 'good'"), [["good", "1", "0001_marker.sql"]])

    def test_the_anonymous_intake_limit_spares_signed_in_citizens(self):
        # The default "POST /api/v1/cases": {rate: 6/min, burst: 10, anonymous_only: true}.
        self.pgs = self.pg()
        self.rd = rd = self.rabtad(pg=self.pgs)
        del rd.config["server"]["routes"]["POST /api/v1/cases"]
        rd.start()
        body = {"kind": "complaint", "service": "fard", "district": "lahore",
                "text": "The patwari has not issued my fard"}
        for i in range(10):
            r = rd.post("/api/v1/cases", dict(body, anonymous=True))
            self.assertEqual(r.status, 201, "anonymous submission %d of the burst: %r" % (i, r))
        r = rd.post("/api/v1/cases", dict(body, anonymous=True))
        self.assertErrorJSON(r, 429)
        self.assertTrue(int(r.headers.get("retry-after", "0")) > 0, r.headers)
        _, token = self.sign_in()
        for i in range(12):
            r = rd.post("/api/v1/cases", body, headers=self.auth(token))
            self.assertEqual(r.status, 201, "signed-in submission %d: %r" % (i, r))


class DutyNoticeTest(DutyNotice, rbtest.TestCase):
    """docs/config.md, staff_inbox: the duty officer's SMS goes at once, also in quiet hours and to a
    phone that sent STOP; with no sender of channel sms it is not queued, and that is logged."""

    def server(self, with_sender):
        self.pgs = self.pg()
        self.rd = rd = self.rabtad(pg=self.pgs)
        rd.config["departments"] = copy_departments(os.path.join(self.tmp, "departments"))
        plugins = staff_inbox_plugins(rd, notify_duty_officer=True)
        if not with_sender:
            plugins = [p for p in plugins if p["name"] != "test_sender"]
        rd.config["plugins"] = plugins
        now = datetime.datetime.now(datetime.timezone.utc)  # quiet from an hour ago for 3 h
        window = "%s-%s" % ((now - datetime.timedelta(hours=1)).strftime("%H:%M"),
                            (now + datetime.timedelta(hours=2)).strftime("%H:%M"))
        rd.config["messages"] = {"quiet_hours": window, "timezone": "UTC"}
        rd.start()

    def test_sent_at_once_in_quiet_hours_and_after_stop(self):
        self.server(with_sender=True)
        # The duty phone once texted STOP as a citizen (the SMS plugin records it so).
        self.pgs.psql("INSERT INTO citizens (phone, opted_out_at) VALUES ('%s', now())"
                      % REVENUE_PHONE)
        _, case_id, _ = self.submit("fard")
        self.wait_delivered(case_id)
        msgs = self.duty_messages(case_id)
        self.assertEqual(len(msgs), 1, msgs)
        rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT status FROM messages WHERE template = 'duty.new_case' AND case_id = %s"
            % case_id) == "sent", 30, what="the duty SMS handed to the sender in quiet hours")
        # Quiet hours were in force: the citizen's own notice of the case waits for their end.
        self.assertEqual(self.pgs.query(
            "SELECT template, status FROM messages WHERE case_id = %s AND notice" % case_id),
            [["notice.routed", "queued"]])

    def test_not_queued_without_a_sender_of_sms_and_logged(self):
        self.server(with_sender=False)
        since = self.rd.log_offset()
        _, case_id, _ = self.submit("fard")
        self.rd.wait_for_log(r"case %s: no duty officer notice for revenue" % case_id,
                             since=since, timeout=30)
        self.assertEqual(self.duty_messages(case_id), [])


class ReloadTest(rbtest.TestCase):
    """A server per test on the sample's departments, copied (a test may edit them)."""

    def setUp(self):
        super().setUp()
        self.rd = self.rabtad(pg=self.pg())
        self.rd.config["departments"] = departments_copy(self.tmp)
        self.rd.start()
        self.good = self.rd.config

    def hup(self, config, pattern):
        self.rd.write_config(config)
        since = self.rd.log_offset()
        self.rd.send_signal(signal.SIGHUP)
        return self.rd.wait_for_log(pattern, since=since, timeout=30)

    def test_a_changed_plugins_list_is_refused_until_a_restart(self):
        cfg = dict(self.good, plugins=self.good["plugins"] + [{"name": "good", "path": GOOD}])
        self.hup(cfg, r"the plugins list changed; plugins are loaded once, so restart")
        self.assertTrue(self.rd.running())
        self.assertEqual(self.rd.get("/test/good").status, 404, "a plugin loaded at a reload")

    def test_listen_and_database_settings_wait_for_a_restart(self):
        port = self.rd.port
        size = rbtest.metric_sum(self.rd.metrics(), "rabta_db_pool_size")
        cfg = dict(self.good, server=dict(self.good["server"], listen="127.0.0.1:1"),
                   database=dict(self.good["database"], pool_size=2,
                                 url=self.good["database"]["url"] + " connect_timeout=7"))
        since = self.rd.log_offset()
        self.hup(cfg, r"reloaded")
        self.rd.wait_for_log(r"server\.listen changed; it takes effect at the next restart",
                             since=since, timeout=5)
        self.rd.wait_for_log(r"database settings changed; they take effect at the next restart",
                             since=since, timeout=5)
        self.assertEqual(self.rd.port, port)
        self.assertEqual(self.rd.get("/healthz").status, 200)
        self.assertEqual(rbtest.metric_sum(self.rd.metrics(), "rabta_db_pool_size"), size)

    def test_a_bad_duty_phone_is_refused_at_its_file_line_col(self):
        path = os.path.join(self.tmp, "departments", "revenue.yaml")
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        n = [i for i, line in enumerate(lines) if line.startswith("duty_phone:")][0]
        lines[n] = 'duty_phone: "not a phone"'
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        since = self.rd.log_offset()
        self.hup(self.good, r"refused")
        self.rd.wait_for_log(r'revenue\.yaml:%d:13: key \\?"duty_phone\\?"' % (n + 1),
                             since=since, timeout=5)
        self.assertTrue(self.rd.running())
        self.assertEqual(self.rd.get("/healthz").status, 200)


if __name__ == "__main__":
    rbtest.main()
