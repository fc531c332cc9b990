"""asterisk_peer: a scripted Asterisk for Rabta's IVR tests, speaking Asterisk's own wire
protocols as res/res_agi.c and main/manager.c do.

FastAGI client (Asterisk's side of AGI(agi://127.0.0.1:PORT/hotline)):
  call = AgiCall(port, "hotline", callerid="+923001234567", keys=["1", "1", "2"],
                 recordings_dir=DIR)
  call.run(timeout)        connect, send agi_* headers and a blank line, answer every command
  call.played / call.said  STREAM FILE paths, SAY ALPHA / SAY DIGITS texts, in order
  call.commands            every command line rabtad sent

  The caller is scripted by `keys`, consumed by each command that waits for a key (GET DATA,
  WAIT FOR DIGIT; STREAM FILE only for an item ("barge", "2") pressed during the prompt):
  "5" a key; None no key before the time-out; "hangup" the caller hangs up there. hangup_on
  ("RECORD FILE", "SAY ALPHA", ...) hangs up when that command arrives (after its effect).
  After a hang-up: "HANGUP" is sent once, the command in progress ends with result=-1, every
  later command gets "511 Command Not Permitted on a dead channel or intercept routine".
  Unknown commands get 510, bad argument counts the 520 usage block.

AMI server (Asterisk's manager, port 5038):
  ami = AmiServer(agi_port, username="rabta", secret="pw"); ami.start(); ami.port
  ami.behave(phone, ["busy", "answer"], keys=[...])   what each dial of that phone does:
      "answer" (with keys for the call's AGI), "busy" (Reason 5, Cause 17), "no_answer"
      (Reason 3, Cause 19), "congestion" (Reason 8, Cause 34), "failed" (Reason 0),
      "machine" (answered; AMDSTATUS=MACHINE)
  ami.originates          [(action_id, phone, time)] in order
  ami.max_active          the most channels up at once (dialled, ringing or in the call)
  ami.drop()              close every manager connection (the dials under way go on)
  ami.refuse_logins = True   "Response: Error / Message: Authentication failed", then close
"""

import socket
import struct
import threading
import time

import rbtest

VERSION = "20.5.0"
BANNER = "Asterisk Call Manager/7.0.3\r\n"
DEAD = "511 Command Not Permitted on a dead channel or intercept routine\n"

# Arguments each command takes (min, max), counting the command's own words.
_ARGS = {
    "ANSWER": (1, 1), "HANGUP": (1, 2), "STREAM FILE": (4, 5), "GET DATA": (3, 5),
    "SAY DIGITS": (4, 4), "SAY ALPHA": (4, 4), "RECORD FILE": (6, 10),
    "SET VARIABLE": (4, 4), "GET VARIABLE": (3, 3), "WAIT FOR DIGIT": (4, 4),
}


def _split(line):
    """Words of an AGI command; double quotes group (res_agi.c parse_args)."""
    out, cur, q, had = [], "", False, False
    for ch in line:
        if ch == '"':
            q = not q
            had = True
        elif ch == " " and not q:
            if cur or had:
                out.append(cur)
            cur, had = "", False
        else:
            cur += ch
    if cur or had:
        out.append(cur)
    return out


def wav_bytes(seconds=1.0, rate=8000):
    """A small valid WAV (16-bit mono PCM), as Asterisk's wav format writes."""
    n = int(seconds * rate)
    data = b"".join(struct.pack("<h", (i * 37) % 2000 - 1000) for i in range(n))
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" +
            struct.pack("<I", len(data)) + data)


class AgiCall:
    def __init__(self, port, script="hotline", callerid="+923001234567", keys=(),
                 uniqueid=None, args=(), recordings_dir=None, variables=None,
                 hangup_on=None, headers=None, extra_lines=None, gate=None, close_after=None):
        self.port = port
        self.script = script
        self.callerid = callerid
        self.keys = list(keys)
        self.uniqueid = uniqueid or "%d.%d" % (int(time.time()), id(self) % 100000)
        self.args = list(args)
        self.recordings_dir = recordings_dir
        self.variables = dict(variables or {})
        self.hangup_on = hangup_on
        self.headers = headers  # raw header text instead of the normal ones
        self.extra_lines = extra_lines or {}  # command word -> raw reply instead of ours
        self.gate = gate  # a threading.Event: the caller thinks until it is set (a long call)
        self.close_after = close_after  # a command: the caller is gone right after its reply
        self.commands, self.played, self.said, self.recorded = [], [], [], []
        self.dead = False
        self.closed_by_rabtad = False
        self.sock = None

    # ---- the wire ------------------------------------------------------------------------
    def _headers(self):
        h = ["agi_network: yes", "agi_network_script: %s" % self.script,
             "agi_request: agi://127.0.0.1:%d/%s" % (self.port, self.script),
             "agi_channel: PJSIP/trunk-%08x" % (hash(self.uniqueid) & 0xffffffff),
             "agi_language: en", "agi_type: PJSIP", "agi_uniqueid: %s" % self.uniqueid,
             "agi_version: %s" % VERSION, "agi_callerid: %s" % self.callerid,
             "agi_calleridname: unknown", "agi_callingpres: 0", "agi_callingani2: 0",
             "agi_callington: 0", "agi_callingtns: 0", "agi_dnid: 1334",
             "agi_rdnis: unknown", "agi_context: rabta-hotline", "agi_extension: 1334",
             "agi_priority: 2", "agi_enhanced: 0.0", "agi_accountcode: ",
             "agi_threadid: 140234"]
        h += ["agi_arg_%d: %s" % (i + 1, a) for i, a in enumerate(self.args)]
        return "\n".join(h) + "\n\n"

    def _send(self, text):
        self.sock.sendall(text.encode())

    def _next_key(self):
        return self.keys.pop(0) if self.keys else None

    def _hangup(self, result_line):
        """The caller hangs up during a command: HANGUP, then that command's end."""
        self.dead = True
        self._send("HANGUP\n")
        self._send(result_line)

    def _record(self, w):
        path = w[2] + "." + w[3]
        data = wav_bytes(1.0)
        with open(path, "wb") as f:
            f.write(data)
        self.recorded.append(path)
        return len(data) // 2

    def _reply(self, line):
        w = _split(line)
        name = next((" ".join(w[:n]).upper() for n in (3, 2, 1)
                     if len(w) >= n and " ".join(w[:n]).upper() in _ARGS), "")
        if name in self.extra_lines:
            self._send(self.extra_lines.pop(name))
            return
        if name not in _ARGS:
            self._send("510 Invalid or unknown command\n")
            return
        lo, hi = _ARGS[name]
        if not lo <= len(w) <= hi:
            self._send("520-Invalid command syntax.  Proper usage follows:\n"
                       " Usage: %s ...\n520 End of proper usage.\n" % name)
            return
        if self.dead:
            self._send(DEAD)
            return
        if self.hangup_on and name == self.hangup_on:
            if name == "RECORD FILE":
                ms = self._record(w)
                self._hangup("200 result=-1 (hangup) endpos=%d\n" % ms)
            else:
                self._hangup("200 result=-1\n")
            return
        {"ANSWER": self._answer_cmd, "HANGUP": self._hangup_cmd,
         "STREAM FILE": self._stream_file, "GET DATA": self._get_data,
         "WAIT FOR DIGIT": self._wait_for_digit, "SAY ALPHA": self._say_alpha,
         "SAY DIGITS": self._say_alpha, "RECORD FILE": self._record_file,
         "SET VARIABLE": self._set_variable, "GET VARIABLE": self._get_variable}[name](w)

    def _answer_cmd(self, w):
        self._send("200 result=0\n")

    def _hangup_cmd(self, w):
        self._send("200 result=1\n")
        self.dead = True

    def _stream_file(self, w):
        self.played.append(w[2])
        k = self.keys[0] if self.keys else None
        if isinstance(k, tuple) and k[0] == "barge" and k[1] in w[3]:
            self.keys.pop(0)
            self._send("200 result=%d endpos=4000\n" % ord(k[1]))
        else:
            self._send("200 result=0 endpos=8000\n")

    def _get_data(self, w):
        self.played.append(w[2])
        if self.gate is not None:
            self.gate.wait(120)
            self.gate = None
        k = self._next_key()
        if k == "hangup":
            self._hangup("200 result=-1\n")
        elif k is None:
            self._send("200 result= (timeout)\n")
        else:
            self._send("200 result=%s\n" % k)

    def _wait_for_digit(self, w):
        k = self._next_key()
        if k == "hangup":
            self._hangup("200 result=-1\n")
        elif k is None:
            self._send("200 result=0\n")
        else:
            self._send("200 result=%d\n" % ord(k[1] if isinstance(k, tuple) else k))

    def _say_alpha(self, w):
        self.said.append(w[2])
        self._send("200 result=0\n")

    def _record_file(self, w):
        ms = self._record(w)
        k = self._next_key()
        if k == "hangup":
            self._hangup("200 result=-1 (hangup) endpos=%d\n" % ms)
        elif k == "#":
            self._send("200 result=35 (dtmf) endpos=%d\n" % ms)
        else:
            self._send("200 result=0 (timeout) endpos=%d\n" % ms)

    def _set_variable(self, w):
        self.variables[w[2]] = w[3]
        self._send("200 result=1\n")

    def _get_variable(self, w):
        if w[2] in self.variables:
            self._send("200 result=1 (%s)\n" % self.variables[w[2]])
        else:
            self._send("200 result=0\n")

    # ---- running ---------------------------------------------------------------------------
    def run(self, timeout=30.0):
        """Connects and plays the call to its end: rabtad closes the connection. Returns self."""
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        self.sock.settimeout(timeout)
        self._send(self.headers if self.headers is not None else self._headers())
        buf = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = self.sock.recv(4096)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    self.closed_by_rabtad = True
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode().rstrip("\r")
                    self.commands.append(text)
                    self._reply(text)
                    if self.close_after and text.upper().startswith(self.close_after):
                        self.dead = True
                        return self
        finally:
            self.sock.close()
        return self

    def start(self, timeout=30.0):
        """run() in a thread; join with .thread.join()."""
        self.thread = threading.Thread(target=self.run, args=(timeout,), daemon=True)
        self.thread.start()
        return self




_REASONS = {"busy": (5, 17, "User busy"), "no_answer": (3, 19, "User alerting, no answer"),
            "congestion": (8, 34, "Circuit/channel congestion"),
            "failed": (0, 0, "Unknown")}


class AmiServer:
    def __init__(self, agi_port, username="rabta", secret="ami-secret", port=None):
        self.agi_port = agi_port
        self.username, self.secret = username, secret
        self.port = port or rbtest.free_port()
        self.refuse_logins = False
        self.lock = threading.Condition()
        self.behaviour = {}          # phone -> [what each dial does]
        self.keys = {}               # phone -> keys of the answered call
        self.gates = {}              # phone -> threading.Event the first keypad answer waits for
        self.originates = []         # (action_id, phone, monotonic time)
        self.calls = []              # AgiCall of every answered call
        self.active = 0
        self.max_active = 0
        self.logins = 0
        self.ring_delay = 0.05       # seconds before a dial's outcome
        self.conns = []
        self.lis = None
        self.seq = 0

    # ---- set-up -----------------------------------------------------------------------------
    def behave(self, phone, outcomes, keys=()):
        with self.lock:
            self.behaviour[phone] = list(outcomes)
            self.keys[phone] = list(keys)

    def start(self):
        self.lis = socket.socket()
        self.lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lis.bind(("127.0.0.1", self.port))
        self.lis.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        if self.lis:
            self.lis.close()
        self.drop()

    def drop(self):
        """Closes every manager connection, as a restarted Asterisk or a cut network would."""
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def wait(self, pred, timeout=30.0, what="the AMI peer's condition"):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for " + what)
                self.lock.wait(min(left, 0.2))

    # ---- the manager protocol ---------------------------------------------------------------
    def _accept(self):
        while True:
            try:
                c, _ = self.lis.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _send(self, c, fields):
        text = "".join("%s: %s\r\n" % kv for kv in fields) + "\r\n"
        try:
            with self.lock:
                c.sendall(text.encode())
        except OSError:
            pass

    def _serve(self, c):
        try:
            c.sendall(BANNER.encode())
        except OSError:
            return
        f = c.makefile("rb")
        msg, authed = {}, False
        for raw in f:
            line = raw.decode().rstrip("\r\n")
            if line:
                k, _, v = line.partition(":")
                msg[k.strip().lower()] = v.strip()
                continue
            if not msg:
                continue
            action, aid = msg.get("action", "").lower(), msg.get("actionid")
            head = [("Response", "Success")] + ([("ActionID", aid)] if aid else [])
            if action == "login":
                ok = (not self.refuse_logins and msg.get("username") == self.username
                      and msg.get("secret") == self.secret)
                if not ok:
                    self._send(c, [("Response", "Error")] + head[1:] +
                               [("Message", "Authentication failed")])
                    c.close()
                    return
                with self.lock:
                    self.logins += 1
                    self.lock.notify_all()
                authed = True
                self._send(c, head + [("Message", "Authentication accepted")])
                self._send(c, [("Event", "FullyBooted"), ("Privilege", "system,all"),
                               ("Status", "Fully Booted")])
            elif not authed:
                self._send(c, [("Response", "Error")] + head[1:] +
                           [("Message", "Permission denied")])
            elif action == "originate":
                self._originate(c, msg, head)
            else:
                self._send(c, [("Response", "Error")] + head[1:] +
                           [("Message", "Invalid/unknown command")])
            msg = {}

    def _originate(self, c, msg, head):
        if msg.get("async", "").lower() not in ("true", "yes", "1"):
            self._send(c, [("Response", "Error")] + head[1:] +
                       [("Message", "rabta's peer only takes Async originates")])
            return
        chan = msg.get("channel", "")
        phone = chan.split("/", 1)[-1].split("@", 1)[0]
        var = dict(v.split("=", 1) for v in msg.get("variable", "").split(",") if "=" in v)
        with self.lock:
            self.originates.append((msg.get("actionid"), phone, time.monotonic()))
            plan = self.behaviour.get(phone) or ["no_answer"]
            what = plan.pop(0) if len(plan) > 1 else plan[0]
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.seq += 1
            uid = "1733100000.%d" % self.seq
            self.lock.notify_all()
        self._send(c, head + [("Message", "Originate successfully queued")])
        threading.Thread(target=self._dial, args=(msg, phone, var, what, uid), daemon=True).start()

    def _event(self, fields):
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            self._send(c, fields)

    def _dial(self, msg, phone, var, what, uid):
        aid, chan = msg.get("actionid"), msg.get("channel", "")
        time.sleep(self.ring_delay)
        self._event([("Event", "Newchannel"), ("Privilege", "call,all"), ("Channel", chan + "-0001"),
                     ("ChannelState", "5"), ("ChannelStateDesc", "Ringing"),
                     ("Uniqueid", uid), ("Exten", msg.get("exten", "s"))])
        common = [("Channel", chan), ("Context", msg.get("context", "")),
                  ("Exten", msg.get("exten", "s"))]
        if what in _REASONS:
            reason, cause, txt = _REASONS[what]
            self._end()
            self._event([("Event", "OriginateResponse"), ("Privilege", "call,all"),
                         ("ActionID", aid), ("Response", "Failure")] + common +
                        [("Reason", str(reason)), ("Uniqueid", "<null>"),
                         ("CallerIDNum", "<unknown>"), ("CallerIDName", "<unknown>")])
            self._event([("Event", "Hangup"), ("Privilege", "call,all"), ("Channel", chan + "-0001"),
                         ("Uniqueid", uid), ("Cause", str(cause)), ("Cause-txt", txt)])
        else:
            self._event([("Event", "OriginateResponse"), ("Privilege", "call,all"),
                         ("ActionID", aid), ("Response", "Success")] + common +
                        [("Reason", "4"), ("Uniqueid", uid), ("CallerIDNum", phone),
                         ("CallerIDName", "<unknown>")])
            amd = {"AMDSTATUS": "MACHINE"} if what == "machine" else {"AMDSTATUS": "HUMAN"}
            with self.lock:
                keys = list(self.keys.get(phone, []))
                gate = self.gates.get(phone)
            call = AgiCall(self.agi_port, "call", callerid=phone, keys=keys, uniqueid=uid,
                           args=[var.get("RABTA_ATTEMPT", "")], variables=amd, gate=gate)
            with self.lock:
                self.calls.append(call)
            call.run(timeout=60)
            self._end()  # the dialplan's Hangup() after the AGI: the channel is gone
            self._event([("Event", "Hangup"), ("Privilege", "call,all"), ("Channel", chan + "-0001"),
                         ("Uniqueid", uid), ("Cause", "16"), ("Cause-txt", "Normal Clearing")])

    def _end(self):
        with self.lock:
            self.active -= 1
            self.lock.notify_all()
