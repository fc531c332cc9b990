"""kannel: a real Kannel (bearerbox + smsbox) for Rabta's SMS tests, with a fake SMSC peer.

  k = Kannel(tmp, mo_url="http://127.0.0.1:PORT/sms/kannel/mo?secret=S&from=%p&...")
  k.start()                         bearerbox, then our SMSC peer connects, then smsbox
  k.smsc.send_mo("+923001234567", "8080", "text")   an SMS from a citizen (Urdu too)
  k.smsc.wait_mt(pred)              an SMS Kannel delivered to the SMSC: (from, to, text)
  k.sendsms_url                     what rabtad's sms_kannel plugin posts to
  k.barrier()                       everything handed to Kannel so far has reached the SMSC
                                    (before asserting that an SMS did NOT arrive; never sleep)
  k.stop()                          SIGTERM to bearerbox (smsbox follows), reaped by PID

The fake SMSC is Kannel's `smsc = fake` driver: bearerbox listens on a port and ONE peer
connects; one message a line: "FROM TO text words..." or "FROM TO ucs2 <url-encoded
UTF-16BE>" towards Kannel, "FROM TO text ..." / "FROM TO ucs-2 ..." from it. Our peer is
Python (the fakesmsc binary reads at most 256 bytes a line). Kannel's ports are reserved
(rbtest.reserve_port); a missing Kannel fails (require()), it never skips. Only processes
started here are ever signalled, always by PID; rbtest stops them on a signal, at the deadline
and at exit too.
"""

import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import rbtest

BEARERBOX = shutil.which("bearerbox") or "/usr/sbin/bearerbox"
SMSBOX = shutil.which("smsbox") or "/usr/sbin/smsbox"
ADMIN_PASSWORD = "adminpw"
SEND_USER = "rabta"
SEND_PASSWORD = "sendpw"
BARRIER_PHONE = "+920000000000"  # FakeSMSC.barrier's recipient: no test's citizen


def available():
    return os.access(BEARERBOX, os.X_OK) and os.access(SMSBOX, os.X_OK)


def require():
    """Fails (never skips) when Kannel is missing, naming what is missing and what installs it."""
    missing = [b for b in (BEARERBOX, SMSBOX) if not os.access(b, os.X_OK)]
    if missing:
        raise rbtest.HarnessError("Kannel is not installed (missing %s): the Debian package "
                                  "kannel provides it; tools/deps.sh installs it"
                                  % ", ".join(missing))


def _ucs2_decode(s):
    # URL-encoded with "+" for the byte 0x20 (so "%00+" is a space)
    return urllib.parse.unquote_to_bytes(s.replace("+", " ")).decode("utf-16-be", "replace")


def _ucs2_encode(text):
    return urllib.parse.quote_from_bytes(text.encode("utf-16-be"), safe="")


class FakeSMSC:
    """Our end of bearerbox's fake SMSC connection."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.mt = []  # (from, to, text) Kannel sent to the "network"
        self.lock = threading.Condition()
        self.thread = None
        self.closed = False
        self.raw = []
        self.parts = {}  # (from, to, ref) -> {seq: bytes}

    def connect(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2.0)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise rbtest.HarnessError("bearerbox's fake SMSC port %d never accepted"
                                              % self.port)
                time.sleep(0.05)
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buf = b""
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self._line(line.decode("latin-1").rstrip("\r"))

    def _line(self, line):
        parts = line.split(" ", 3)
        with self.lock:
            self.raw.append(line)
            if len(parts) >= 4 and parts[2] == "udh":
                # one part of a long SMS: "udh <05 00 03 ref total seq> data <UCS-2>"
                rest = parts[3].split(" ")
                udh = urllib.parse.unquote_to_bytes(rest[0].replace("+", " "))
                data = urllib.parse.unquote_to_bytes(rest[2].replace("+", " ")) \
                    if len(rest) >= 3 else b""
                if len(udh) >= 6 and udh[1] == 0:
                    key = (parts[0], parts[1], udh[3])
                    got = self.parts.setdefault(key, {})
                    got[udh[5]] = data
                    if len(got) == udh[4]:
                        del self.parts[key]
                        whole = b"".join(got[i] for i in sorted(got))
                        self.mt.append((parts[0], parts[1],
                                        whole.decode("utf-16-be", "replace")))
            elif len(parts) >= 4 and parts[2] == "ucs-2":
                self.mt.append((parts[0], parts[1], _ucs2_decode(parts[3])))
            elif len(parts) >= 4 and parts[2] == "text":
                # the fake driver URL-encodes 8-bit text ("+" for spaces)
                self.mt.append((parts[0], parts[1], urllib.parse.unquote_plus(
                    parts[3].encode("latin-1").decode("utf-8", "replace"))))
            elif len(parts) == 3 and parts[2] == "text":
                self.mt.append((parts[0], parts[1], ""))
            self.lock.notify_all()

    def send_mo(self, sender, to, text):
        """One SMS from a citizen; non-ASCII text goes as UCS-2, as a handset's would."""
        if text.isascii() and "\n" not in text:
            line = "%s %s text %s\n" % (sender, to, text)
        else:
            line = "%s %s ucs2 %s\n" % (sender, to, _ucs2_encode(text))
        self.sock.sendall(line.encode("ascii"))

    def wait_mt(self, pred, timeout=15.0, what="an SMS from Kannel"):
        """Waits for an MT (from, to, text) matching pred; returns it."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for m in self.mt:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise rbtest.HarnessError("timed out waiting for %s; got %r"
                                              % (what, self.mt))
                self.lock.wait(left)

    def barrier(self, sendsms_url, timeout=15.0):
        """Returns once an SMS sent now through Kannel's sendsms has reached us: Kannel
        delivers in order on its one fake SMSC link, so whatever was handed to Kannel before
        has arrived too. Use it, not a sleep, before asserting that something did NOT arrive."""
        with self.lock:
            self.barriers = getattr(self, "barriers", 0) + 1
            marker = "barrier-%d-%d" % (self.barriers, time.monotonic_ns())
        to = BARRIER_PHONE
        q = urllib.parse.urlencode({"username": SEND_USER, "password": SEND_PASSWORD,
                                    "from": "8080", "to": to, "text": marker})
        with urllib.request.urlopen(sendsms_url + "?" + q, timeout=5.0) as r:
            r.read()
        self.wait_mt(lambda m: m[1] == to and m[2] == marker, timeout, "the barrier SMS")

    def messages_to(self, phone):
        with self.lock:
            return [m for m in self.mt if m[1] == phone]

    def close(self):
        self.closed = True
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


class Kannel:
    def __init__(self, tmp, mo_url, name="kannel"):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        # reserved ports: below the kernel's ephemeral range and locked against other harness
        # processes (rbtest.reserve_port), so nobody else binds them meanwhile
        self.admin_port = rbtest.reserve_port()
        self.box_port = rbtest.reserve_port()
        self.smsc_port = rbtest.reserve_port()
        self.sendsms_port = rbtest.reserve_port()
        self.mo_url = mo_url
        self.conf = os.path.join(self.dir, "kannel.conf")
        self.bb = self.sb = None
        self.smsc = FakeSMSC(self.smsc_port)
        rbtest.register(self)

    def barrier(self, timeout=15.0):
        """Everything handed to Kannel before this call has reached the fake SMSC."""
        self.smsc.barrier(self.sendsms_url, timeout)

    @property
    def sendsms_url(self):
        return "http://127.0.0.1:%d/cgi-bin/sendsms" % self.sendsms_port

    def write_config(self):
        d = self.dir
        text = """group = core
admin-port = %(admin)d
admin-password = %(pw)s
status-password = %(pw)s
admin-allow-ip = "127.0.0.1"
smsbox-port = %(box)d
box-allow-ip = "127.0.0.1"
log-file = "%(d)s/bearerbox.log"
log-level = 0
access-log = "%(d)s/access.log"
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake
port = %(smsc)d
our-host = "127.0.0.1"
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = "127.0.0.1"
bearerbox-port = %(box)d
sendsms-port = %(send)d
sendsms-interface = "127.0.0.1"
mo-recode = true
log-file = "%(d)s/smsbox.log"
log-level = 0

group = sendsms-user
username = %(user)s
password = %(spw)s
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "%(mo)s"
""" % {"admin": self.admin_port, "pw": ADMIN_PASSWORD, "box": self.box_port, "d": d,
       "smsc": self.smsc_port, "send": self.sendsms_port, "user": SEND_USER,
       "spw": SEND_PASSWORD, "mo": self.mo_url}
        with open(self.conf, "w") as f:
            f.write(text)

    def _spawn(self, binary, name):
        logf = open(os.path.join(self.dir, name + ".out"), "ab")
        try:
            return subprocess.Popen([binary, "-v", "4", "-p", os.path.join(self.dir, name + ".pid"),
                                     self.conf], stdin=subprocess.DEVNULL, stdout=logf,
                                    stderr=subprocess.STDOUT, cwd=self.dir,
                                    start_new_session=True)
        finally:
            logf.close()

    def status(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/status.txt?password=%s"
                                        % (self.admin_port, ADMIN_PASSWORD), timeout=2) as r:
                return r.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self, timeout=20.0):
        require()
        self.write_config()
        self.bb = self._spawn(BEARERBOX, "bearerbox")
        self.smsc.connect(timeout)
        self.sb = self._spawn(SMSBOX, "smsbox")

        def ready2():
            if self.bb.poll() is not None or self.sb.poll() is not None:
                raise rbtest.HarnessError("a Kannel box exited at start:\n%s" % self.log_tail())
            st = self.status()
            # smsbox connected and the SMSC online
            return ("online" in st) and ("Box connections:" in st and "smsbox:" in st
                                          and "(on-line" in st.split("Box connections:")[1])

        rbtest.wait_until(ready2, timeout, interval=0.1, what="Kannel ready")
        return self

    def log_tail(self, n=40):
        return "\n".join("--- %s ---\n%s" % (f, rbtest.tail(os.path.join(self.dir, f), n))
                         for f in ("bearerbox.log", "smsbox.log", "bearerbox.out", "smsbox.out"))

    def emergency_stop(self):
        """rbtest's teardown of last resort (a signal, the deadline, exit)."""
        self.stop()

    def stop(self):
        self.smsc.close()
        for p in (self.bb, self.sb):
            if p and p.poll() is None:
                rbtest.kill_pid(p.pid, 15)
        for p in (self.sb, self.bb):
            if p:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    rbtest.kill_pid(p.pid)
                    p.wait()
