"""rabtad's command line: --version, --help, usage errors, and --check on good and broken
configurations (errors as path:line:col, every one reported, exit 2)."""
import json
import os
import re
import unittest

import rbtest

POS_RX = re.compile(r"^(?P<path>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")


def line_of(text, needle):
    """1-based number of the first line of text containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in the config text" % needle)


class CliTest(rbtest.TestCase):
    def write_config(self, cfg):
        """Writes cfg as indented JSON (one key per line) and returns (path, text)."""
        path = os.path.join(self.tmp, "rabta.yaml")
        text = json.dumps(cfg, indent=2) + "\n"
        with open(path, "w") as f:
            f.write(text)
        return path, text

    def positioned_errors(self, stderr, path):
        """{line: [messages]} of the stderr lines that read path:line:col: message for path."""
        out = {}
        for raw in stderr.splitlines():
            m = POS_RX.match(raw.strip())
            if m and os.path.basename(m.group("path")) == os.path.basename(path):
                self.assertGreater(int(m.group("col")), 0, "column must be 1-based: %r" % raw)
                out.setdefault(int(m.group("line")), []).append(m.group("msg"))
        return out

    def broken_base(self):
        return rbtest.default_config(rbtest.free_port(), os.path.join(self.tmp, "state"),
                                     "host=127.0.0.1 port=1 dbname=rabta user=postgres")

    def test_version_prints_version_and_plugin_abi(self):
        r = rbtest.run_rabtad(["--version"])
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout.strip(), r"^rabtad \d+\.\d+\.\d+ \(plugin ABI 1\)$")

    def test_help_prints_usage_on_stdout_and_exits_0(self):
        r = rbtest.run_rabtad(["--help"])
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout, r"(?i)usage")
        self.assertIn("--check", r.stdout)
        self.assertIn("-c", r.stdout)

    def test_unknown_option_is_a_usage_error_on_stderr_exit_2(self):
        r = rbtest.run_rabtad(["--no-such-option"])
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("--no-such-option", r.stderr)
        self.assertRegex(r.stderr, r"(?i)usage")
        self.assertEqual(r.stdout, "", "usage errors belong on stderr")

    def test_check_accepts_the_sample_config(self):
        sample = os.path.join(rbtest.SOURCE_DIR, "config", "rabta.yaml")
        self.assertTrue(os.path.exists(sample), "no sample config at %s" % sample)
        r = rbtest.run_rabtad(["--check", "-c", "config/rabta.yaml"], cwd=rbtest.SOURCE_DIR)
        self.assertEqual(r.returncode, 0, "--check on config/rabta.yaml: %r" % r)
        self.assertIn("configuration OK", r.stdout)

    def test_check_rejects_a_wrong_type_with_file_line_col_exit_2(self):
        cfg = self.broken_base()
        cfg["database"]["pool_size"] = "four"
        path, text = self.write_config(cfg)
        r = rbtest.run_rabtad(["--check", "-c", path])
        self.assertEqual(r.returncode, 2, r)
        self.assertNotIn("configuration OK", r.stdout)
        errs = self.positioned_errors(r.stderr, path)
        want = line_of(text, '"pool_size"')
        self.assertIn(want, errs, "no path:%d:col error for pool_size in stderr:\n%s"
                      % (want, r.stderr))
        self.assertTrue(any("pool_size" in m for m in errs[want]),
                        "the message does not name the key: %r" % errs[want])

    def test_check_reports_a_yaml_syntax_error_with_position(self):
        path = os.path.join(self.tmp, "rabta.yaml")
        with open(path, "w") as f:
            f.write("server:\n  listen: 127.0.0.1:8080\n  max_body: [1MiB\nlog: {level: info}\n")
        r = rbtest.run_rabtad(["--check", "-c", path])
        self.assertEqual(r.returncode, 2, r)
        errs = self.positioned_errors(r.stderr, path)
        self.assertTrue(errs, "no path:line:col error in stderr:\n%s" % r.stderr)
        self.assertTrue(all(3 <= ln <= 5 for ln in errs),
                        "syntax error not placed near line 3: %r" % errs)

    def test_check_reports_every_error_one_per_line(self):
        cfg = self.broken_base()
        cfg["database"]["pool_size"] = "four"
        cfg["log"]["level"] = "loudest"
        cfg["server"]["max_body"] = "a lot"
        path, text = self.write_config(cfg)
        r = rbtest.run_rabtad(["--check", "-c", path])
        self.assertEqual(r.returncode, 2, r)
        errs = self.positioned_errors(r.stderr, path)
        for key in ('"pool_size"', '"level"', '"max_body"'):
            ln = line_of(text, key)
            self.assertIn(ln, errs, "the error for %s (line %d) is missing; stderr:\n%s"
                          % (key, ln, r.stderr))

    def test_check_stops_on_a_bad_plugin_value_with_file_line_col(self):
        cfg = self.broken_base()
        plugins = {p["name"]: p for p in cfg["plugins"]}
        plugins["staff_inbox"]["config"] = {"notify_duty_officer": True, "duty_language": "fr"}
        cfg["plugins"].append({"name": "sms_kannel",
                               "config": {"secret": "long-enough-secret", "rate": 0,
                                          "flood_window": "8d"}})
        plugins["webhook"]["config"] = {"callback_window": "2h"}
        cfg["plugins"].append({"name": "email_smtp", "config": {"from": "rabta at bureau"}})
        cfg["plugins"].append({"name": "web", "config": {
            "dir": os.path.join(rbtest.SOURCE_DIR, "lua", "web"), "secret": "too-short"}})
        cfg["plugins"].append({"name": "ivr_asterisk", "config": {
            "recordings_dir": os.path.join(self.tmp, "rec"), "key_timeout": "90s",
            "ami_host": "127.0.0.1"}})
        path, text = self.write_config(cfg)
        r = rbtest.run_rabtad(["--check", "-c", path])
        self.assertEqual(r.returncode, 2, r)
        self.assertNotIn("configuration OK", r.stdout)
        errs = self.positioned_errors(r.stderr, path)
        # (key, the text of its line: "rate" alone would find the server's route limits)
        want = {('"duty_language"', '"duty_language": "fr"'): "expected one of en, ur, got \"fr\"",
                ('"rate"', '"rate": 0'): "more than 0",
                ('"flood_window"', '"flood_window"'): "at most 7d",
                ('"callback_window"', '"callback_window"'): "from 1s to 1h",
                ('"from"', '"from": "rabta at bureau"'): "expected an e-mail address",
                ('"secret"', '"secret": "too-short"'): "at least 32 characters",
                ('"key_timeout"', '"key_timeout": "90s"'): "from 1s to 30s",
                ('"ami_host"', '"ami_host"'): "needs ami_username and ami_secret"}
        for (key, needle), words in want.items():
            ln = line_of(text, needle)
            self.assertIn(ln, errs, "no path:%d:col error for %s in stderr:\n%s"
                          % (ln, key, r.stderr))
            self.assertTrue(any(key in m and words in m for m in errs[ln]),
                            "the message for %s does not say %r: %r" % (key, words, errs[ln]))

    def test_check_names_the_new_name_of_the_renamed_inbox_plugin_at_file_line_col(self):
        # An operator upgrading with last release's files: the department plugin "inbox" is
        # now "staff_inbox". Both the plugins entry and each department file naming it say so
        # at their file:line:col, never "unknown plugin" or a failed dlopen.
        cfg = self.broken_base()
        for p in cfg["plugins"]:
            if p["name"] == "staff_inbox":
                p["name"] = "inbox"
        deps = os.path.join(self.tmp, "departments")
        os.makedirs(deps)
        sample = os.path.join(rbtest.SOURCE_DIR, "config", "departments")
        for name in os.listdir(sample):
            with open(os.path.join(sample, name)) as f:
                text = f.read()
            self.assertIn("plugin: staff_inbox\n", text)
            with open(os.path.join(deps, name), "w") as f:
                f.write(text.replace("plugin: staff_inbox\n", "plugin: inbox\n"))
        cfg["departments"] = os.path.join(deps, "*.yaml")
        path, text = self.write_config(cfg)
        r = rbtest.run_rabtad(["--check", "-c", path])
        self.assertEqual(r.returncode, 2, r)
        self.assertNotIn("configuration OK", r.stdout)
        errs = self.positioned_errors(r.stderr, path)
        ln = line_of(text, '"name": "inbox"')
        self.assertIn(ln, errs, "no path:%d:col error for the plugins entry:\n%s" % (ln, r.stderr))
        self.assertTrue(any('plugin "inbox" is now called "staff_inbox"' in m for m in errs[ln]),
                        errs[ln])
        for name in ("bureau.yaml", "revenue.yaml"):
            dep = os.path.join(deps, name)
            with open(dep) as f:
                dln = line_of(f.read(), "plugin: inbox")
            derrs = self.positioned_errors(r.stderr, dep)
            self.assertIn(dln, derrs, "no %s:%d:col error:\n%s" % (name, dln, r.stderr))
            self.assertTrue(any('"inbox", which is now called "staff_inbox"' in m
                                for m in derrs[dln]), derrs[dln])
        self.assertNotIn("not in the plugins list", r.stderr)

    def test_check_accepts_good_plugin_values(self):
        cfg = self.broken_base()
        for p in cfg["plugins"]:
            if p["name"] == "staff_inbox":
                p["config"] = {"duty_language": "ur"}
        cfg["plugins"].append({"name": "sms_kannel",
                               "config": {"secret": "long-enough-secret", "rate": 5}})
        path, _ = self.write_config(cfg)
        r = rbtest.run_rabtad(["--check", "-c", path])
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("configuration OK", r.stdout)

    def test_check_reports_a_plugin_built_with_the_first_field_table_at_file_line_col(self):
        # good.so parses its block with struct rb_conf_field and conf_parse (ABI 1's table)
        cfg = self.broken_base()
        good = os.path.join(rbtest.TEST_PLUGIN_DIR, "good.so")
        cfg["plugins"].append({"name": "good", "path": good, "config": {"answer": 500}})
        path, text = self.write_config(cfg)
        r = rbtest.run_rabtad(["--check", "-c", path])
        self.assertEqual(r.returncode, 2, r)
        errs = self.positioned_errors(r.stderr, path)
        ln = line_of(text, '"answer"')
        self.assertIn(ln, errs, "no path:%d:col error for answer:\n%s" % (ln, r.stderr))
        self.assertTrue(any("out of range" in m for m in errs[ln]), errs[ln])

    def test_check_names_a_plugin_whose_init_fails_with_its_sentence(self):
        cfg = self.broken_base()
        bad = os.path.join(rbtest.TEST_PLUGIN_DIR, "init_fails.so")
        cfg["plugins"].append({"name": "init_fails", "path": bad})
        path, _ = self.write_config(cfg)
        r = rbtest.run_rabtad(["--check", "-c", path])
        self.assertEqual(r.returncode, 2, r)
        self.assertNotIn("configuration OK", r.stdout)
        self.assertIn("plugin init_fails: init_fails: refusing to start, as designed", r.stderr)


if __name__ == "__main__":
    rbtest.main()
