"""smtp: the SMTP sink of the e-mail tests, as a process the test owns.

  sink = SmtpSink(tmp)          a port of its own (free_port), messages kept in tmp/smtp/
  sink.start(); sink.stop()     the relay up / down (stopping it refuses connections)
  sink.messages()               every message received so far: email.message.EmailMessage
                                objects (policy default: subject and body decoded)
  sink.wait_messages(n, t)      waits until at least n are there
"""
import email
import email.policy
import glob
import json
import os
import shutil
import subprocess
import sys

import rbtest

HERE = os.path.dirname(os.path.abspath(__file__))


def _python():
    """A python3 that has aiosmtpd (Debian's, when the one running the tests lacks it)."""
    try:
        import aiosmtpd  # noqa: F401
        return sys.executable
    except ImportError:
        return shutil.which("python3", path="/usr/bin") or "/usr/bin/python3"


class SmtpSink:
    def __init__(self, tmp, port=None):
        self.port = port or rbtest.free_port()
        self.dir = os.path.join(tmp, "smtp")
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None

    def start(self):
        if self.proc:
            return
        self.proc = subprocess.Popen([_python(), os.path.join(HERE, "smtp_sink.py"),
                                      str(self.port), self.dir],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            rest = self.proc.stdout.read() if self.proc.poll() is not None else ""
            self.stop()
            raise rbtest.HarnessError("the SMTP sink did not start: %r %s" % (line, rest))

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None

    def messages(self):
        out = []
        for path in sorted(glob.glob(os.path.join(self.dir, "*.eml"))):
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            with open(path[:-4] + ".json") as f:
                msg.envelope = json.load(f)
            out.append(msg)
        return out

    def wait_messages(self, n, timeout=30.0, what="e-mails at the SMTP sink"):
        rbtest.wait_until(lambda: len(self.messages()) >= n, timeout, what=what)
        return self.messages()
