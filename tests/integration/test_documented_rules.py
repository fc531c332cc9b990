"""docs/rules.md sentence by sentence where no other file proves it, with the real binary and
a real PostgreSQL: a rule that fails at run time (an error, a bad answer, its time or memory
budget, a runaway pattern, what the sandbox refuses) sends the case to the triage department
with a warn line naming the file and line, and the next case is routed normally; the answer's
defaults, the read-only config table and require of a file in lua/; print() writes to the log
at info with the file and line; no global survives from one case to the next; a failing or
misspelt self-test (flags matched exactly, the case's own limits) and require of anything but
a file of lua/ stop --check, and a failing self-test is refused at a reload, the rules in
force staying; a syntax error in any file of lua/ stops the load naming that file and line;
the triage department must exist. (tests/unit/test_script.c has the sandbox in detail.)"""
import os
import re
import shutil
import signal

import rbtest

# Appended to a copy of the sample lua/routing.lua: faults on purpose, chosen by a word in the
# text; any other case goes through the sample's route().
FAULTS = """
-- test_documented_rules.py
local sample_route = route
local words = require("extra_words")
function route(case)
  local t = case.text or ""
  if t:find("FAULT-NIL", 1, true) then local dept; return dept.id end
  if t:find("FAULT-DEPT", 1, true) then return { department = "revnue" } end
  if t:find("FAULT-PCALL-LOOP", 1, true) then pcall(function() while true do end end) end
  if t:find("FAULT-LOOP", 1, true) then while true do end end
  if t:find("FAULT-MEMORY", 1, true) then
    local hog = {}
    for i = 1, 1e9 do hog[i] = string.rep("x", 1048576) .. i end
  end
  if t:find("FAULT-PATTERN", 1, true) then
    string.find(string.rep("a", 5000), string.rep("a*", 20) .. "b")
  end
  if t:find("FAULT-LONG", 1, true) then error("x" .. string.rep("ب", 3000)) end
  if t:find("FAULT-NOT-TABLE", 1, true) then return "police" end
  if t:find("FAULT-PRIORITY", 1, true) then return { department = "revenue", priority = 9 } end
  if t:find("FAULT-FLAG", 1, true) then return { department = "revenue", flags = { "vip" } } end
  if t:find("FAULT-OS", 1, true) then os.execute("true") end
  if t:find("FAULT-IO", 1, true) then io.open("/etc/passwd") end
  if t:find("FAULT-LOAD", 1, true) then load("return 1") end
  if t:find("FAULT-READ-ONLY", 1, true) then string.upper = nil end
  if t:find("FAULT-GC", 1, true) then collectgarbage("collect") end
  if t:find("FAULT-FINALIZER", 1, true) then setmetatable({}, { __gc = print }) end
  if t:find("FAULT-TEMPLATE", 1, true) then template("x.y", { en = "a", ur = "ب" }) end
  if t:find("ONLY-DEPARTMENT", 1, true) then return { department = "revenue" } end
  if t:find("CONFIG-TABLE", 1, true) then
    return { department = config.services.fard.department, category = config.triage_department,
             priority = words.priority, sla_policy = os.date("!%Y") and "default" }
  end
  if t:find("PRINT-ME", 1, true) then print("routing", case.service, case.district) end
  if t:find("COUNT-GLOBAL", 1, true) then
    counter = (counter or 0) + 1
    local r = sample_route(case)
    r.priority = counter
    return r
  end
  return sample_route(case)
end
"""

TRIAGE = ["bureau", "triage", "3", "default"]


def lua_copy(tmp, extra="", files=None):
    """A copy of the sample lua/ in tmp/lua with extra appended to routing.lua and files
    ({name: text}) added; returns (its path, routing.lua's lines)."""
    d = os.path.join(tmp, "lua")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(os.path.join(rbtest.SOURCE_DIR, "lua"), d)
    path = os.path.join(d, "routing.lua")
    with open(path, "a", encoding="utf-8") as f:
        f.write(extra)
    for name, text in (files or {}).items():
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            f.write(text)
    with open(path, encoding="utf-8") as f:
        return d, f.read().splitlines()


def line_of(lines, needle, last=False):
    hits = [i + 1 for i, line in enumerate(lines) if needle in line]
    return hits[-1] if last else hits[0]


class RoutingFaultsTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.lua, cls.lines = lua_copy(cls.class_tmp(), FAULTS,
                                      files={"extra_words.lua": "return { priority = 4 }\n"})
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        cls.rd.config["lua_dir"] = cls.lua
        cls.rd.start()

    def submit(self, text, service="fard"):
        r = self.rd.post("/api/v1/cases", {"kind": "complaint", "anonymous": True,
                                           "service": service, "district": "lahore",
                                           "text": text})
        self.assertEqual(r.status, 201, "the case is taken whatever the rule does: %r" % r)
        return r.json["tracking_no"]

    def routed(self, tn):
        return self.pgs.query("SELECT department_id, category, priority, sla_policy FROM cases "
                              "WHERE tracking_no = '%s'" % tn)[0]

    def faulted(self, text, message):
        """Submits text, then expects triage and one warn line matching message."""
        since = self.rd.log_offset()
        tn = self.submit(text)
        line = self.rd.wait_for_log(r"routing failed, the case goes to triage \(bureau\)",
                                    since=since, timeout=30)
        rec = [r for r in self.rd.log_records() if "routing failed" in r.get("msg", "")][-1]
        self.assertEqual(rec.get("level"), "warn", line)
        self.assertRegex(rec["msg"], message)
        self.assertEqual(self.routed(tn), TRIAGE, text)
        # The next case is routed normally.
        self.assertEqual(self.routed(self.submit("The patwari has not issued my fard"))[0],
                         "revenue", "the case after %s" % text)

    def test_an_error_in_route_sends_the_case_to_triage_naming_file_and_line(self):
        self.faulted("FAULT-NIL please help",
                     r"routing\.lua:%d: attempt to index a nil value \(local 'dept'\)"
                     % line_of(self.lines, "FAULT-NIL"))

    def test_an_unknown_department_is_reported_at_the_line_route_starts(self):
        self.faulted("FAULT-DEPT please help",
                     r'routing\.lua:%d: route\(\) returned department "revnue", which is not '
                     r"in the configuration" % line_of(self.lines, "function route(case)",
                                                       last=True))

    def test_an_endless_loop_is_stopped_also_inside_pcall(self):
        self.faulted("FAULT-LOOP please help", r"routing\.lua:\d+: time limit of 20 ms exceeded")
        self.faulted("FAULT-PCALL-LOOP please help",
                     r"routing\.lua:\d+: time limit of 20 ms exceeded")

    def test_the_memory_limit_stops_a_hog(self):
        self.faulted("FAULT-MEMORY please help", r"memory limit of 16 MiB exceeded")

    def test_a_backtracking_pattern_counts_against_the_time_budget(self):
        self.faulted("FAULT-PATTERN please help",
                     r"routing\.lua:\d+: time limit of 20 ms exceeded \(in a string pattern\)")

    def test_a_bad_answer_goes_to_triage(self):
        for text, message in (
                ("FAULT-NOT-TABLE", r"route\(\) returned a string value, expected a table"),
                ("FAULT-PRIORITY", r"route\(\) returned priority = 9, expected a whole number"),
                ("FAULT-FLAG", r"route\(\) returned bad flags")):
            self.faulted(text + " please help", message)

    def test_a_long_error_is_cut_between_characters(self):
        self.faulted("FAULT-LONG please help", r"routing\.lua:\d+: xب+$")
        rec = [r for r in self.rd.log_records() if "routing failed" in r.get("msg", "")][-1]
        self.assertLess(len(rec["msg"]), 3000, "not cut")
        self.assertNotIn("\ufffd", self.rd.log_text(), "a character was cut in two")

    def test_the_sandbox_refuses_what_the_page_lists(self):
        for text, message in (
                ("FAULT-OS", r"field 'execute'"), ("FAULT-IO", r"global 'io'"),
                ("FAULT-LOAD", r"global 'load'"),
                ("FAULT-READ-ONLY", r"attempt to modify read-only table \(field 'upper'\)"),
                ("FAULT-GC", r'collectgarbage\(\\?"collect\\?"\) is not allowed in rules'),
                ("FAULT-FINALIZER", r"__gc metamethods are not allowed in rules"),
                ("FAULT-TEMPLATE", r"templates are declared when the files load")):
            self.faulted(text + " please help", message)

    def test_defaults_the_config_table_and_require(self):
        # Only a department: category general, priority 3, policy default, no flags.
        tn = self.submit("ONLY-DEPARTMENT fard pending")
        self.assertEqual(self.routed(tn), ["revenue", "general", "3", "default"])
        self.assertEqual(self.pgs.scalar(
            "SELECT e.data->>'flags' FROM case_events e JOIN cases c ON c.id = e.case_id "
            "WHERE c.tracking_no = '%s' AND e.event = 'routed'" % tn), "[]")
        # config.services, config.triage_department and a table from lua/extra_words.lua.
        self.assertEqual(self.routed(self.submit("CONFIG-TABLE fard pending")),
                         ["revenue", "bureau", "4", "default"])

    def test_print_writes_to_the_log_at_info_with_file_and_line(self):
        since = self.rd.log_offset()
        self.submit("PRINT-ME my fard is late")
        self.rd.wait_for_log(r"routing\S{1,6}fard\S{1,6}lahore", since=since, timeout=30)
        rec = [r for r in self.rd.log_records() if "routing\tfard\tlahore" in r.get("msg", "")]
        self.assertEqual(len(rec), 1, rec)
        self.assertEqual(rec[0].get("level"), "info")
        self.assertRegex(rec[0]["msg"], r"routing\.lua:%d: routing\tfard\tlahore$"
                         % line_of(self.lines, "PRINT-ME"))

    def test_no_global_survives_from_one_case_to_the_next(self):
        for _ in range(3):
            self.assertEqual(self.routed(self.submit("COUNT-GLOBAL fard pending"))[2], "1")


class SampleRulesTest(rbtest.TestCase):
    def test_the_sample_uses_the_listed_categories_and_policies_and_sla_yaml_defines_them(self):
        with open(os.path.join(rbtest.SOURCE_DIR, "lua", "routing.lua"), encoding="utf-8") as f:
            rules = f.read()
        self.assertEqual(set(re.findall(r'category = "(\w+)"', rules)),
                         {"corruption", "harassment", "information", "feedback", "appreciation",
                          "service_delivery", "general", "triage"})
        policies = set(re.findall(r'sla_policy = "(\w+)"', rules))
        self.assertEqual(policies, {"urgent", "information", "feedback", "default"})
        with open(os.path.join(rbtest.SOURCE_DIR, "config", "sla.yaml"), encoding="utf-8") as f:
            sla = f.read()
        block = sla[sla.index("\npolicies:"):].split("\n\n")[0]
        self.assertEqual(set(re.findall(r"(?m)^  (\w+):", block)), policies)


class SelfTestsTest(rbtest.TestCase):
    WRONG = """
tests[#tests + 1] = { name = "deliberately wrong",
  case = { service = "fir_registration", text = "No FIR for a week" },
  expect = { department = "revenue" } }
"""
    MISSPELT = """
tests[#tests + 1] = { name = "misspelt field", case = { servce = "fard" },
  expect = { department = "revenue" } }
"""
    # New rules that would send everything to the police, with a self-test that fails.
    ALL_TO_POLICE = """
function route(case) return { department = "police" } end
tests = { { name = "fard stays with revenue", case = { service = "fard" },
            expect = { department = "revenue" } } }
"""

    def check(self, lua):
        rd = self.rabtad(name="check")
        rd.config["lua_dir"] = lua
        rd.write_config()
        return rbtest.run_rabtad(["--check", "-c", rd.config_path])

    def test_a_failing_self_test_stops_check_with_its_name_and_both_values(self):
        lua, _ = lua_copy(self.tmp, self.WRONG)
        out = self.check(lua)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertRegex(out.stderr, r'routing\.lua: self-test "deliberately wrong": expected '
                                     r"department revenue, got police")

    def test_a_misspelt_field_in_a_self_test_is_an_error(self):
        lua, _ = lua_copy(self.tmp, self.MISSPELT)
        out = self.check(lua)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn("misspelt field", out.stderr)
        self.assertIn("servce", out.stderr)

    def test_flags_must_match_exactly_and_a_test_has_the_cases_limits(self):
        lua, _ = lua_copy(self.tmp, FAULTS + """
tests[#tests + 1] = { name = "no flags expected", case = { service = "fard",
  text = "The patwari asked for a bribe" }, expect = { flags = {} } }
tests[#tests + 1] = { name = "a test that loops", case = { service = "fard",
  text = "FAULT-LOOP" }, expect = { department = "revenue" } }
""", files={"extra_words.lua": "return { priority = 4 }\n"})
        out = self.check(lua)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertRegex(out.stderr, r'self-test "no flags expected": .*flags')
        self.assertRegex(out.stderr, r'self-test "a test that loops": .*time limit of 20 ms')

    def test_require_knows_only_the_files_of_lua(self):
        for name, message in (("io", r'require: no module \\?"io\\?" \(there is no file lua/io\.lua\)'),
                              ("../etc/passwd", r"require: bad module name")):
            lua, _ = lua_copy(self.tmp, '\nlocal m = require("%s")\n' % name)
            out = self.check(lua)
            self.assertNotEqual(out.returncode, 0, out.stdout)
            self.assertRegex(out.stderr, message)

    def test_a_syntax_error_in_any_lua_file_names_that_file_and_line(self):
        lua, _ = lua_copy(self.tmp, files={"extra_words.lua": "local words = {\n  'a',\n  = 1\n}\n"})
        out = self.check(lua)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertRegex(out.stderr, r"extra_words\.lua:3:")

    def test_the_triage_department_must_exist(self):
        rd = self.rabtad(name="notriage")
        rd.config["triage_department"] = "no_such_dept"
        rd.write_config()
        out = rbtest.run_rabtad(["--check", "-c", rd.config_path])
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn("no_such_dept", out.stderr)

    def test_a_reload_with_a_failing_self_test_is_refused_and_the_rules_stay(self):
        pgs = self.pg()
        lua, _ = lua_copy(self.tmp)
        rd = self.rabtad(pg=pgs)
        rd.config["lua_dir"] = lua
        rd.start()
        with open(os.path.join(lua, "routing.lua"), "a", encoding="utf-8") as f:
            f.write(self.ALL_TO_POLICE)
        since = rd.log_offset()
        rd.send_signal(signal.SIGHUP)
        rd.wait_for_log(r"refused", since=since, timeout=30)
        rd.wait_for_log(r'self-test \\?"fard stays with revenue\\?": expected department '
                        r"revenue, got police", since=since, timeout=5)
        r = rd.post("/api/v1/cases", {"kind": "complaint", "anonymous": True, "service": "fard",
                                      "district": "lahore", "text": "My fard is late"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(pgs.scalar("SELECT department_id FROM cases WHERE tracking_no = '%s'"
                                    % r.json["tracking_no"]), "revenue",
                         "the refused rules were used")


if __name__ == "__main__":
    rbtest.main()
