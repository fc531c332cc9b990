"""rbtest: the harness for Rabta's Python integration tests (standard library only).

It starts what a test needs and takes it all down again:

  PgServer  a private PostgreSQL cluster in a temp directory, run as the "postgres" user,
            listening on 127.0.0.1:<free port> and on a Unix socket in the temp directory;
            stop(mode="fast"|"immediate"|"smart") and start() again on the same data and
            port; query() runs SQL through the psql binary (-At).
  Rabtad    the real rabtad binary with a config written as JSON (valid YAML), its stdout
            and stderr in a log file; waits for /healthz; HTTP helpers returning a Response
            (status, headers, body, parsed JSON); signals; wait for exit; kills by PID at
            teardown.
  TestCase  a unittest.TestCase that owns a temp directory, registers every server it makes
            for teardown, and prints the tail of their logs when a test fails.

Environment (set by ctest): RABTAD, RB_SOURCE_DIR, RB_BUILD_DIR, RB_TEST_PLUGIN_DIR.
Without them the source tree is found from this file and the build dir defaults to
<src>/build. Only processes this harness started are ever signalled, always by PID.
"""

import errno
import glob
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("RB_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
BUILD_DIR = os.path.abspath(os.environ.get("RB_BUILD_DIR") or os.path.join(SOURCE_DIR, "build"))
RABTAD = os.path.abspath(os.environ.get("RABTAD") or os.path.join(BUILD_DIR, "rabtad"))
TEST_PLUGIN_DIR = os.environ.get("RB_TEST_PLUGIN_DIR") or os.path.join(BUILD_DIR, "tests", "plugins")
PG_USER = "postgres"

# Seconds. Generous: a loaded CI machine (or a sanitizer build) is slow.
HEALTHY_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0
# A clean stop at teardown: shutdown_grace (5 s in default_config) plus the embedded
# PostgreSQL's stop and a sanitizer build's leak check.
STOP_TIMEOUT = 20.0


class HarnessError(AssertionError):
    """Something the harness needed did not happen (a server did not start, ...)."""


# --------------------------------------------------------------------------------------------
# Small helpers


def log(msg):
    """Progress line on stderr (ctest shows it with --output-on-failure / -V)."""
    sys.stderr.write("[rbtest %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# Ports. The kernel hands out ports of its ephemeral range (ip_local_port_range) to every
# bind to port 0 and to every outgoing connection, so a port found free there and released
# may be taken again before the server binds it. Ours come from below that range, which the
# kernel never hands out by itself, and each is locked (flock on a file in PORT_LOCK_DIR, held
# until this process exits) so two harness processes never take the same one. rabtad needs
# none of this: it binds port 0 and the harness reads the port it got from its log.
PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "rbtest-ports")
_reserved_ports = {}  # port -> open lock file (kept open: the lock lives as long as we do)


def _port_range():
    lo, hi = 10000, 32767
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
        hi = min(hi, eph_lo - 1)
    except (OSError, ValueError, IndexError):
        pass
    return lo, max(lo + 1000, hi)


def reserve_port():
    """A TCP port on 127.0.0.1 for a server this process starts (PostgreSQL, Kannel, a test's
    own receiver): nothing listens on it now, the kernel will not hand it to anyone else (it
    lies below the ephemeral range) and no other harness process takes it (a lock held until
    this process exits)."""
    import fcntl
    import random
    os.makedirs(PORT_LOCK_DIR, exist_ok=True)
    try:
        os.chmod(PORT_LOCK_DIR, 0o1777)
    except OSError:
        pass
    lo, hi = _port_range()
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randint(lo, hi)
        if port in _reserved_ports:
            continue
        try:
            fd = os.open(os.path.join(PORT_LOCK_DIR, str(port)), os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                os.close(fd)
                continue
        _reserved_ports[port] = fd
        return port
    raise HarnessError("no free port to reserve in %d-%d" % (lo, hi))


def free_port():
    """A port reserved for this process (see reserve_port); the old name."""
    return reserve_port()


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a true value, which is returned; raises HarnessError
    naming what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise HarnessError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class BackgroundThread:
    """fn(*args) on a thread whose failure is not lost: join() re-raises in the caller what fn
    raised (an assertion too) and fails when the thread has not finished within timeout.

    t = BackgroundThread(fn, a, b).start(); ...; result = t.join(20.0)
    """

    def __init__(self, fn, *args, name=None):
        import threading
        self.fn, self.args = fn, args
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, name=name or getattr(fn, "__name__",
                                                                               "background"),
                                       daemon=True)

    def _run(self):
        try:
            self.result = self.fn(*self.args)
        except BaseException as e:  # handed to join()
            self.error = e

    def start(self):
        self.thread.start()
        return self

    def join(self, timeout):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise HarnessError("thread %s did not finish within %.0f s" % (self.thread.name,
                                                                           timeout))
        if self.error is not None:
            raise self.error
        return self.result


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            # "pid (comm) S ..." -- comm may contain spaces and parens; state follows the last ')'.
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def children_of(pid):
    """PIDs whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            continue
    return out


def descendants_of(pid):
    """All live descendants of pid."""
    out, todo = [], [pid]
    while todo:
        for c in children_of(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def processes_in_group(pgid):
    """Live PIDs whose process group is pgid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            continue
    return out


def kill_pid(pid, sig=signal.SIGKILL):
    """Sends sig to one PID; a process that is already gone is fine."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def tail(path, n=60):
    """Last n lines of a text file ("" if missing)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-n:])


def pg_bindir():
    """The newest /usr/lib/postgresql/N/bin that has initdb, or the directory of initdb on PATH."""
    cands = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        ver = os.path.basename(os.path.dirname(d))
        if os.path.exists(os.path.join(d, "initdb")):
            key = tuple(int(x) for x in re.findall(r"\d+", ver)) or (0,)
            cands.append((key, d))
    if cands:
        return max(cands)[1]
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    raise HarnessError("no PostgreSQL server binaries: looked in /usr/lib/postgresql/*/bin and PATH")


def make_tempdir(prefix="rbt-"):
    """A fresh temp dir that the postgres user can traverse (0711); caller removes it. Keep
    the prefix short: a Unix socket path (sun_path) holds at most 107 bytes."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None)
    os.chmod(d, 0o711)
    _tempdirs.append(d)  # removed at exit, also after a signal or the deadline
    return d


def chown_postgres(path):
    """Gives path to the postgres user (we run as root; postgres refuses root)."""
    if os.geteuid() == 0:
        shutil.chown(path, PG_USER, PG_USER)


def as_postgres():
    """Popen keyword arguments that run the child as the postgres user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": PG_USER, "group": PG_USER, "extra_groups": []}


def migration_versions(src=SOURCE_DIR):
    """Sorted NNNN numbers of migrations/NNNN_*.sql."""
    out = []
    for p in glob.glob(os.path.join(src, "migrations", "*.sql")):
        m = re.match(r"(\d+)_", os.path.basename(p))
        if m:
            out.append(int(m.group(1)))
    return sorted(out)


def embedded_datadir(state_dir):
    """Data directory of the embedded cluster under <state_dir>/pg (that directory itself or
    the one below it holding PG_VERSION), or None when there is none."""
    root = os.path.join(state_dir, "pg")
    if os.path.exists(os.path.join(root, "PG_VERSION")):
        return root
    for d in sorted(glob.glob(os.path.join(root, "*", "PG_VERSION"))):
        return os.path.dirname(d)
    return None


def postmaster_info(datadir):
    """(pid, port, socket_dir) from <datadir>/postmaster.pid, or None when it is absent."""
    if not datadir:
        return None
    try:
        with open(os.path.join(datadir, "postmaster.pid")) as f:
            lines = f.read().splitlines()
        return int(lines[0]), int(lines[3]), lines[4].strip()
    except (OSError, ValueError, IndexError):
        return None


def highest_migration(src=SOURCE_DIR):
    """The highest NNNN of migrations/NNNN_*.sql, or 0 when there are none."""
    v = migration_versions(src)
    return v[-1] if v else 0


# --------------------------------------------------------------------------------------------
# Teardown that cannot be skipped: every PgServer, Rabtad and Kannel made in this process is
# registered here, and stopped (by PID, only ours) at exit, on SIGTERM/SIGINT/SIGHUP (ctest's
# timeout, a ^C) and when RB_TEST_TIMEOUT runs out, as well as by the tests' own cleanups.

_live = []
_tempdirs = []


def register(server):
    """Remembers server (anything with emergency_stop()) for the teardown of last resort."""
    _live.append(server)


def stop_everything(why):
    """Stops every registered server that still runs, quickly (they may be stopped normally
    already: then this does nothing), and removes our temp dirs (unless RB_KEEP_TMP). Never
    raises."""
    for s in reversed(list(_live)):
        try:
            s.emergency_stop()
        except BaseException as e:  # keep going: the next one must be stopped too
            try:
                log("%s: stopping %r failed: %r" % (why, s, e))
            except BaseException:
                pass
    if not os.environ.get("RB_KEEP_TMP"):
        for d in _tempdirs:
            shutil.rmtree(d, ignore_errors=True)


def _on_signal(signum, frame):
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = str(signum)
    log("%s: stopping every server this test started, then exiting" % name)
    stop_everything(name)
    os._exit(128 + signum)


def _on_deadline(signum, frame):
    import faulthandler
    log("RB_TEST_TIMEOUT (%s s) ran out; the main thread was here:" %
        os.environ.get("RB_TEST_TIMEOUT"))
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    for s in list(_live):
        path = getattr(s, "logfile", None)
        if path and os.path.exists(path):
            sys.stderr.write("----- tail of %s -----\n%s\n" % (path, tail(path, 40)))
    stop_everything("timeout")
    log("FAILED: the test file ran out of time (RB_TEST_TIMEOUT)")
    os._exit(1)


_handlers_installed = False


def install_handlers():
    """SIGTERM/SIGINT/SIGHUP and exit stop our servers; RB_TEST_TIMEOUT (seconds; ctest's
    TIMEOUT minus a margin) ends the run as a failure before ctest has to kill us."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    import atexit
    atexit.register(stop_everything, "exit")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    limit = os.environ.get("RB_TEST_TIMEOUT")
    if limit:
        signal.signal(signal.SIGALRM, _on_deadline)
        signal.setitimer(signal.ITIMER_REAL, float(limit))


# --------------------------------------------------------------------------------------------
# PostgreSQL


class PgServer:
    """A private PostgreSQL cluster: initdb into <tmp>/pgdata as postgres, server on
    127.0.0.1:port and a socket in <tmp>/pgsock, database "rabta" created.

    pg = PgServer(tmp); pg.start(); pg.query("select 1"); pg.stop("fast"); pg.start()
    """

    def __init__(self, tmp, port=None, fsync=True, dbname="rabta"):
        self.tmp = tmp
        self.bindir = pg_bindir()
        self.datadir = os.path.join(tmp, "pgdata")
        self.sockdir = os.path.join(tmp, "pgsock")
        self.logfile = os.path.join(tmp, "postgres.log")
        self._port_given = port is not None
        self.port = port or reserve_port()
        self.fsync = fsync
        self.dbname = dbname
        self.proc = None
        self._initialised = False
        register(self)

    # conninfo strings ---------------------------------------------------------------------
    def url(self, dbname=None):
        """libpq conninfo over TCP, as rabtad's database.url takes it."""
        return "host=127.0.0.1 port=%d dbname=%s user=%s" % (self.port, dbname or self.dbname,
                                                            PG_USER)

    def socket_url(self, dbname=None):
        return "host=%s port=%d dbname=%s user=%s" % (self.sockdir, self.port,
                                                     dbname or self.dbname, PG_USER)

    # life ---------------------------------------------------------------------------------
    def initdb(self):
        for d in (self.datadir, self.sockdir):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o700)
            chown_postgres(d)
        # --no-sync only speeds up initdb itself; the running server keeps fsync on.
        cmd = [os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-U", PG_USER,
               "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd="/",
                           **as_postgres())
        if r.returncode != 0:
            raise HarnessError("initdb failed (%d):\n%s" % (r.returncode,
                                                           r.stdout.decode("utf-8", "replace")))
        self._initialised = True

    def start(self, timeout=30.0):
        """Starts the server (initdb first if there is no cluster yet) and waits until it
        accepts connections; creates the database on first start. At the first start, a port
        that someone else took meanwhile is replaced by another reserved one (three tries)."""
        first = not self._initialised
        if first:
            self.initdb()
        if self.running():
            return self
        for attempt in range(3):
            try:
                self._start_once(timeout)
                break
            except HarnessError as e:
                if not (first and not self._port_given and attempt < 2
                        and "could not bind" in str(e)):
                    raise
                old, self.port = self.port, reserve_port()
                log("postgres could not bind port %d; trying %d" % (old, self.port))
        if first:
            self.psql("CREATE DATABASE %s" % self.dbname, dbname="postgres")
        log("postgres pid %d on 127.0.0.1:%d (%s)" % (self.proc.pid, self.port, self.datadir))
        return self

    def _start_once(self, timeout):
        since = os.path.getsize(self.logfile) if os.path.exists(self.logfile) else 0
        logf = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen(
                [os.path.join(self.bindir, "postgres"), "-D", self.datadir,
                 "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1",
                 "-c", "unix_socket_directories=%s" % self.sockdir,
                 "-c", "fsync=%s" % ("on" if self.fsync else "off"),
                 "-c", "max_connections=100",
                 "-c", "logging_collector=off"],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, cwd="/",
                start_new_session=True, **as_postgres())
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                with open(self.logfile, "rb") as f:
                    f.seek(since)
                    new = f.read().decode("utf-8", "replace")
                raise HarnessError("postgres exited with %s at start%s; its log:\n%s"
                                   % (self.proc.returncode,
                                      " (could not bind its port)" if "could not bind" in new
                                      else "", tail(self.logfile)))
            if self._ready():
                return
            if time.monotonic() >= deadline:
                raise HarnessError("postgres did not accept connections within %.0f s:\n%s"
                                   % (timeout, tail(self.logfile)))
            time.sleep(0.05)

    def _ready(self):
        r = subprocess.run([os.path.join(self.bindir, "pg_isready"), "-q", "-h", "127.0.0.1",
                            "-p", str(self.port), "-d", "postgres", "-U", PG_USER, "-t", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    _STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT,
                     "immediate": signal.SIGQUIT}

    def stop(self, mode="fast", timeout=30.0):
        """Stops the postmaster with PostgreSQL's shutdown mode ("smart", "fast" or
        "immediate") and waits for it to exit; SIGKILL after timeout."""
        if not self.running():
            return
        sig = self._STOP_SIGNALS[mode]
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log("postgres pid %d ignored %s for %.0f s; killing it" % (self.proc.pid, mode,
                                                                      timeout))
            self.proc.kill()
            self.proc.wait()
        log("postgres stopped (%s)" % mode)

    def cleanup(self):
        """Teardown: stops the server if it runs (immediate: data is thrown away)."""
        if self.running():
            self.stop("immediate", timeout=10.0)

    def emergency_stop(self):
        """The teardown of last resort (a signal, the deadline, exit): immediate stop, then
        SIGKILL to our postmaster's PID. Never waits without a bound."""
        if self.proc is None or self.proc.poll() is not None:
            return
        kill_pid(self.proc.pid, signal.SIGQUIT)
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            kill_pid(self.proc.pid)

    # SQL ----------------------------------------------------------------------------------
    def psql(self, sql, dbname=None, check=True):
        """Runs sql with psql -At -v ON_ERROR_STOP=1 over TCP. Returns stdout (stripped);
        raises HarnessError when psql fails and check is true."""
        cmd = [os.path.join(self.bindir, "psql") if os.path.exists(
                   os.path.join(self.bindir, "psql")) else "psql",
               "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
               "-U", PG_USER, "-d", dbname or self.dbname, "-c", sql]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=dict(os.environ, PGCONNECT_TIMEOUT="5"), timeout=60)
        if check and r.returncode != 0:
            raise HarnessError("psql failed (%d) on %r: %s" % (r.returncode, sql,
                               r.stderr.decode("utf-8", "replace").strip()))
        return r.stdout.decode("utf-8", "replace").strip()

    def query(self, sql, dbname=None):
        """Rows of a query as lists of strings (psql's unaligned, '|'-separated output)."""
        out = self.psql(sql, dbname=dbname)
        return [line.split("|") for line in out.splitlines()] if out else []

    def scalar(self, sql, dbname=None):
        rows = self.query(sql, dbname=dbname)
        return rows[0][0] if rows else None

    def clock(self):
        """The database's now() as epoch seconds: the clock rabtad's deadlines are kept by."""
        return float(self.scalar("SELECT extract(epoch from now())"))

    def wait_clock_past(self, epoch, timeout=60.0, what=None):
        """Until the database's clock is past epoch: for a test that needs time to pass (a
        deadline, a pause), never a sleep in place of a condition."""
        return wait_until(lambda: self.clock() > epoch, timeout, interval=0.1,
                          what=what or "the database clock to pass %.3f" % epoch)


# --------------------------------------------------------------------------------------------
# HTTP


class Response:
    """One HTTP answer: status, headers (lower-cased names), body bytes, json (or None)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self.json = None
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            pass

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        b = self.text
        return "<Response %d %s%s>" % (self.status, b[:300], "..." if len(b) > 300 else "")


def http_request(port, method, path, body=None, headers=None, timeout=10.0, host="127.0.0.1"):
    """One request on a fresh connection. body may be bytes, str, or a dict/list (sent as
    JSON). Returns a Response; raises OSError/http.client errors when there is no answer."""
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def http_request_big_body(port, method, path, size, settle=0.5, timeout=10.0,
                          host="127.0.0.1", content_type="application/json"):
    """Sends a request announcing a body of size bytes and returns the answer as a Response.

    A server may answer (413) as soon as it has read the headers and close while we are still
    sending, so: send the headers, give the server settle seconds to answer early, then send
    the body, ignoring EPIPE/ECONNRESET, and read whatever answer arrived. Raises
    HarnessError when no HTTP answer can be read at all."""
    import select
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        head = ("%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" % (method, path, host, port, content_type, size))
        sock.sendall(head.encode())
        early, _, _ = select.select([sock], [], [], settle)
        send_error = None
        if not early:
            chunk = b"x" * 65536
            left = size
            try:
                while left > 0:
                    n = min(left, len(chunk))
                    sock.sendall(chunk[:n])
                    left -= n
            except (BrokenPipeError, ConnectionResetError) as e:
                send_error = e
        resp = http.client.HTTPResponse(sock, method=method)
        try:
            resp.begin()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise HarnessError("no HTTP answer to a %d-byte %s %s (send: %r, read: %r)"
                               % (size, method, path, send_error, e))
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        sock.close()


_METRIC_RX = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text exposition -> list of (name, {label: value}, float). Comment lines are
    skipped; a malformed sample line raises HarnessError (the format is part of the contract)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _METRIC_RX.match(line)
        if not m:
            raise HarnessError("malformed metrics line: %r" % line)
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\")
                  for k, v in _LABEL_RX.findall(m.group(3) or "")}
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def metric_sum(samples, name, **labels):
    """Sum of the samples called name whose labels include every given label=value; a value
    may also be a callable predicate."""
    total = 0.0
    for n, ls, v in samples:
        if n != name:
            continue
        ok = True
        for k, want in labels.items():
            have = ls.get(k)
            if callable(want):
                ok = have is not None and bool(want(have))
            else:
                ok = have == want
            if not ok:
                break
        if ok:
            total += v
    return total


# --------------------------------------------------------------------------------------------
# rabtad


# The routes rabtad rate-limits per client address by default (docs/security.md).
RATE_LIMITED_ROUTES = ("POST /api/v1/cases", "POST /api/v1/register", "POST /api/v1/verify",
                       "GET /api/v1/cases/:tracking", "POST /api/v1/staff/login")


def default_config(port, state_dir, db_url=None):
    """The config contract's shape with absolute paths into the source and build trees.
    db_url None or "" means the embedded PostgreSQL."""
    cfg = {
        "server": {"listen": "127.0.0.1:%d" % port, "max_body": "1MiB", "shutdown_grace": "5s",
                   # Tests call these routes from one address far more often than a person
                   # would; test_hostile.py checks the default limits.
                   "routes": {r: {"rate": "off"} for r in RATE_LIMITED_ROUTES}},
        "state_dir": state_dir,
        "database": {"pool_size": 4},
        "log": {"level": "info"},
        "lua_dir": os.path.join(SOURCE_DIR, "lua"),
        "migrations_dir": os.path.join(SOURCE_DIR, "migrations"),
        "plugin_dir": os.path.join(BUILD_DIR, "plugins"),
        "districts": os.path.join(SOURCE_DIR, "config", "districts.yaml"),
        "departments": os.path.join(SOURCE_DIR, "config", "departments", "*.yaml"),
        "services": os.path.join(SOURCE_DIR, "config", "services", "*.yaml"),
        "plugins": [{"name": "staff_inbox"}, {"name": "webhook"}, {"name": "app"},
                    {"name": "open311"}],
    }
    if db_url:
        cfg["database"]["url"] = db_url
    return cfg


class Rabtad:
    """One rabtad process. Files live in tmp/<name>/: rabta.yaml, rabtad.log, state/.

    r = Rabtad(tmp, pg=pg); r.start(); r.get("/healthz"); r.stop()

    Without a port, rabtad listens on 127.0.0.1:0 and .port is the port it reports in its
    log ("rabtad is serving http://127.0.0.1:PORT/"); each start may get another one.
    """

    def __init__(self, tmp, pg=None, name="rabtad", port=None, config=None, db_url=None,
                 binary=None):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o711)
        self.name = name
        self.configured_port = port or 0
        self._bound_port = None
        self._start_offset = 0
        self._waited = False
        self._victims = []
        self.binary = binary or RABTAD
        self.state_dir = os.path.join(self.dir, "state")
        self.config_path = os.path.join(self.dir, "rabta.yaml")
        self.logfile = os.path.join(self.dir, "rabtad.log")
        self.proc = None
        if config is None:
            url = db_url if db_url is not None else (pg.url() if pg else None)
            config = default_config(self.configured_port, self.state_dir, url)
        self.config = config
        register(self)

    # the port --------------------------------------------------------------------------------
    _PORT_RX = re.compile(r"rabtad is serving http://(?:\[[^\]]*\]|[^/:]+):(\d+)/")

    @property
    def port(self):
        """The port this start bound (read from the log; waits for it while rabtad starts).
        Before any start: the configured port (0: any)."""
        if self._bound_port is None and self.proc is not None:
            self._bound_port = self._read_bound_port()
        return self._bound_port if self._bound_port is not None else self.configured_port

    def _read_bound_port(self, timeout=HEALTHY_TIMEOUT):
        def find():
            try:
                with open(self.logfile, "rb") as f:
                    f.seek(self._start_offset)
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                return None
            m = self._PORT_RX.search(text)
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise HarnessError("%s exited with %s before it said which port it serves; "
                                   "log tail:\n%s" % (self.name, self.proc.returncode,
                                                      self.log_tail()))
            return None
        try:
            return wait_until(find, timeout, interval=0.02, what="the port %s serves" % self.name)
        except HarnessError as e:
            raise HarnessError("%s; log tail:\n%s" % (e, self.log_tail()))

    # config -------------------------------------------------------------------------------
    def write_config(self, config=None, text=None):
        """Writes config (a dict, as JSON) or raw text to rabta.yaml."""
        if config is not None:
            self.config = config
        with open(self.config_path, "w") as f:
            if text is not None:
                f.write(text)
            else:
                json.dump(self.config, f, indent=2)
                f.write("\n")
        return self.config_path

    # life ---------------------------------------------------------------------------------
    def start(self, args=(), wait=True, timeout=HEALTHY_TIMEOUT, write_config=True):
        """Starts rabtad -c rabta.yaml [args]; with wait, returns once /healthz answers 200."""
        if write_config:
            self.write_config()
        os.makedirs(self.state_dir, exist_ok=True)
        self._start_offset = self.log_offset()
        self._bound_port = None
        self._waited = False
        logf = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen([self.binary, "-c", self.config_path] + list(args),
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, cwd=self.dir,
                                         start_new_session=True)
        finally:
            logf.close()
        log("%s pid %d started" % (self.name, self.proc.pid))
        if wait:
            self.wait_healthy(timeout)
            log("%s pid %d serves 127.0.0.1:%d" % (self.name, self.proc.pid, self.port))
        return self

    def wait_healthy(self, timeout=HEALTHY_TIMEOUT, status=200):
        """Polls GET /healthz until it answers status; fails with the log's tail if the
        process exits or timeout passes."""
        deadline = time.monotonic() + timeout
        self.port  # noqa: B018 -- waits until rabtad has bound its port (or exited)
        last = None
        while True:
            if self.proc.poll() is not None:
                raise HarnessError("%s exited with %s before /healthz answered; log tail:\n%s"
                                   % (self.name, self.proc.returncode, self.log_tail()))
            try:
                r = self.get("/healthz", timeout=2.0)
                last = r
                if r.status == status:
                    return r
            except (OSError, http.client.HTTPException) as e:
                last = e
            if time.monotonic() >= deadline:
                raise HarnessError("%s: /healthz did not answer %d within %.0f s (last: %r); "
                                   "log tail:\n%s" % (self.name, status, timeout, last,
                                                      self.log_tail()))
            time.sleep(0.1)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        """Sends sig to rabtad's PID (only ours)."""
        if self.proc is None:
            raise HarnessError("%s was never started" % self.name)
        self.proc.send_signal(sig)

    def wait(self, timeout=EXIT_TIMEOUT):
        """Waits for exit; returns the exit code (negative: killed by that signal). Raises
        HarnessError with the log's tail on timeout. A test that waited has seen the code:
        teardown does not judge it again."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError("%s (pid %d) did not exit within %.0f s; log tail:\n%s"
                               % (self.name, self.proc.pid, timeout, self.log_tail()))
        self._waited = True
        return code

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signals and waits; returns the exit code."""
        if not self.running():
            if self.proc is not None:
                self._waited = True
            return self.proc.returncode if self.proc else None
        self._victims = descendants_of(self.proc.pid)
        self.send_signal(sig)
        return self.wait(timeout)

    def embedded_datadir(self):
        """The embedded cluster's data directory: <state>/pg itself or the directory below
        it that holds PG_VERSION (<state>/pg/data, ...); None when there is no cluster."""
        return embedded_datadir(self.state_dir)

    def embedded_pg_pid(self):
        """PID in the embedded cluster's postmaster.pid, or None."""
        info = postmaster_info(self.embedded_datadir())
        return info[0] if info else None

    def cleanup(self):
        """Teardown: SIGTERM to a rabtad that still runs and a wait for its exit (so a
        sanitizer build checks its leaks), SIGKILL only when it does not exit within
        STOP_TIMEOUT; then whatever it started that is left (its descendants, the embedded
        postgres recorded in our state dir). Never anything else. Raises AssertionError when
        rabtad exits non-zero at this stop, died during the test without the test waiting for
        it, or left a sanitizer report in its log."""
        problems = []
        if self.running():
            self._victims = descendants_of(self.proc.pid)
            self.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                code = None
                problems.append("did not exit within %.0f s of SIGTERM at teardown (killed)"
                                % STOP_TIMEOUT)
                self._kill_hard()
            if code is not None and code != 0:
                problems.append("exited with %s after SIGTERM at teardown (0 expected)" % code)
            self._waited = True
        elif self.proc is not None and not self._waited:
            code = self.proc.returncode
            self._waited = True
            if code != 0:
                problems.append("died during the test with exit %s and the test never "
                                "waited for it" % code)
        self._reap_leftovers()
        rep = self.sanitizer_report()
        if rep:
            problems.append("reported a sanitizer error:\n%s" % rep)
        if problems:
            raise AssertionError("%s (%s, log %s) %s" % (self.name, self.binary, self.logfile,
                                                        "; ".join(problems)))

    def emergency_stop(self):
        """The teardown of last resort (a signal, the deadline, exit): SIGTERM, a short wait,
        SIGKILL; then the leftovers. Judges nothing and never raises."""
        if self.proc is not None and self.proc.poll() is None:
            self._victims = descendants_of(self.proc.pid)
            kill_pid(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self._kill_hard()
        self._reap_leftovers()

    def _kill_hard(self):
        """SIGKILL to rabtad and to every member of its process group (it leads its own)."""
        pid = self.proc.pid
        for p in [pid] + processes_in_group(pid):
            kill_pid(p)
        try:
            self.proc.wait(10.0)
        except subprocess.TimeoutExpired:
            pass

    def _reap_leftovers(self):
        """Stops what rabtad started and left behind: its former descendants and the
        embedded postmaster of our state dir."""
        victims = [p for p in self._victims if pid_alive(p)]
        # rabtad leads its own process group, whose id is its PID. Once we have reaped
        # rabtad, a live process with that PID is someone else's, and so is the group then
        # (Linux does not hand out a PID while a group of that id has members).
        if self.proc is not None and self.proc.returncode is not None \
                and not pid_alive(self.proc.pid):
            victims += [p for p in processes_in_group(self.proc.pid) if p not in victims]
        epid = self.embedded_pg_pid()
        if epid and epid not in victims and pid_alive(epid) and self._owns_embedded(epid):
            victims.append(epid)
        for p in victims:
            if pid_alive(p):
                # The embedded postmaster gets SIGQUIT (immediate shutdown; it takes its own
                # children with it); anything else SIGKILL.
                kill_pid(p, signal.SIGQUIT if p == epid else signal.SIGKILL)
        for p in victims:
            try:
                wait_until(lambda: not pid_alive(p), 10.0, what="pid %d to exit" % p)
            except HarnessError:
                kill_pid(p)
        self._victims = []

    def _owns_embedded(self, pid):
        """True if pid is a postgres whose data directory is our state dir's pg."""
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%d/comm" % pid) as f:
                comm = f.read().strip()
        except OSError:
            return False
        if "postgres" not in comm and not any(b"postgres" in a for a in argv[:1]):
            return False
        try:
            cwd = os.readlink("/proc/%d/cwd" % pid)
        except OSError:
            cwd = ""
        pgdir = os.path.realpath(self.embedded_datadir() or os.path.join(self.state_dir, "pg"))
        return cwd.startswith(pgdir) or any(a.decode("utf-8", "replace").startswith(pgdir)
                                            for a in argv)

    # logs ---------------------------------------------------------------------------------
    def log_text(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        return tail(self.logfile, n)

    def log_records(self):
        """Log lines parsed as JSON objects (non-JSON lines come back as {"raw": line})."""
        out = []
        for line in self.log_text().splitlines():
            try:
                rec = json.loads(line)
                out.append(rec if isinstance(rec, dict) else {"raw": line})
            except ValueError:
                out.append({"raw": line})
        return out

    def log_offset(self):
        """Current size of the log; pass to wait_for_log(since=) to match only newer lines."""
        try:
            return os.path.getsize(self.logfile)
        except OSError:
            return 0

    def wait_for_log(self, pattern, timeout=10.0, since=0):
        """Waits until a log line after byte offset since matches regex pattern (case-
        insensitive); returns the line. Fails with the log's tail on timeout."""
        rx = re.compile(pattern, re.I)

        def find():
            try:
                with open(self.logfile, "rb") as f:
                    f.seek(since)
                    data = f.read().decode("utf-8", "replace")
            except OSError:
                return None
            for line in data.splitlines():
                if rx.search(line):
                    return line
            return None

        try:
            return wait_until(find, timeout, interval=0.1, what="log line /%s/" % pattern)
        except HarnessError as e:
            raise HarnessError("%s: %s; log tail:\n%s" % (self.name, e, self.log_tail()))

    _SANITIZER_RX = re.compile(r"ERROR: (Address|Leak|Memory|Thread|UndefinedBehavior)Sanitizer"
                               r"|runtime error: |^SUMMARY: \w+Sanitizer", re.M)

    def sanitizer_report(self):
        """The log from the first sanitizer report on (ASan/UBSan builds), or ""."""
        text = self.log_text()
        m = self._SANITIZER_RX.search(text)
        if not m:
            return ""
        start = text.rfind("\n", 0, m.start()) + 1
        return text[start:start + 4000]

    # HTTP ---------------------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=10.0):
        return http_request(self.port, method, path, body=body, headers=headers, timeout=timeout)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def post_big(self, path, size, **kw):
        """POST of size bytes that copes with an early answer (see http_request_big_body)."""
        return http_request_big_body(self.port, "POST", path, size, **kw)

    def metrics(self):
        """GET /metrics parsed: list of (name, labels, value)."""
        r = self.get("/metrics")
        if r.status != 200:
            raise HarnessError("GET /metrics answered %r" % r)
        return parse_metrics(r.text)


def run_rabtad(args, timeout=30.0, binary=None, cwd=None):
    """Runs rabtad with args to completion (for --version, --check, ...). Returns a
    CompletedProcess with str stdout/stderr."""
    return subprocess.run([binary or RABTAD] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, cwd=cwd or SOURCE_DIR,
                          universal_newlines=True, stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------------------------
# unittest glue


class TestCase(unittest.TestCase):
    """Owns self.tmp (removed at teardown unless RB_KEEP_TMP=1), tears down every PgServer
    and Rabtad made through pg()/rabtad(), and prints their log tails when a test fails.

    Class-level fixtures: setUpClass may call cls.class_pg() / cls.class_rabtad(); they live
    until tearDownClass and their logs are printed too when a test of the class fails."""

    _class_servers = None
    _class_tmp = None

    # binaries ----------------------------------------------------------------------------
    @classmethod
    def require_rabtad(cls):
        if not os.access(RABTAD, os.X_OK):
            raise HarnessError("rabtad binary not built: %s (build it, or set RABTAD)" % RABTAD)

    # class fixtures ------------------------------------------------------------------------
    @classmethod
    def setUpClass(cls):
        cls.require_rabtad()
        cls._class_servers = []
        cls._class_tmp = None

    @classmethod
    def class_tmp(cls):
        if cls._class_tmp is None:
            cls._class_tmp = make_tempdir()
            log("%s: temp dir %s" % (cls.__name__, cls._class_tmp))
        return cls._class_tmp

    @classmethod
    def class_pg(cls, **kw):
        pg = PgServer(cls.class_tmp(), **kw)
        cls._class_servers.append(pg)
        try:
            pg.start()
        except BaseException:
            cls.tearDownClass()
            raise
        return pg

    @classmethod
    def class_rabtad(cls, pg=None, start=True, **kw):
        r = Rabtad(cls.class_tmp(), pg=pg, **kw)
        cls._class_servers.append(r)
        if start:
            try:
                r.start()
            except BaseException:
                cls.tearDownClass()
                raise
        return r

    @classmethod
    def tearDownClass(cls):
        bad = []
        for s in reversed(cls._class_servers or []):
            try:
                s.cleanup()
            except AssertionError as e:  # rabtad's exit or sanitizer report: fails the class
                bad.append(str(e))
            except Exception as e:  # keep tearing down the rest
                log("cleanup of %r failed: %s" % (s, e))
        cls._class_servers = []
        if cls._class_tmp and not os.environ.get("RB_KEEP_TMP"):
            shutil.rmtree(cls._class_tmp, ignore_errors=True)
        cls._class_tmp = None
        if bad:
            raise AssertionError("\n".join(bad))

    # per-test fixtures ---------------------------------------------------------------------
    def setUp(self):
        self._servers = []
        self._tmp = None

    @property
    def tmp(self):
        if self._tmp is None:
            self._tmp = make_tempdir()
            log("%s: temp dir %s" % (self._testMethodName, self._tmp))
            if os.environ.get("RB_KEEP_TMP"):
                log("keeping %s" % self._tmp)
            else:
                self.addCleanup(shutil.rmtree, self._tmp, True)
        return self._tmp

    def pg(self, start=True, **kw):
        """A PgServer for this test, stopped at teardown."""
        p = PgServer(self.tmp, **kw)
        self._servers.append(p)
        self.addCleanup(p.cleanup)
        if start:
            p.start()
        return p

    def rabtad(self, pg=None, start=False, **kw):
        """A Rabtad for this test (not started unless start=True), killed at teardown."""
        r = Rabtad(self.tmp, pg=pg, **kw)
        self._servers.append(r)
        self.addCleanup(r.cleanup)
        if start:
            r.start()
        return r

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        if getattr(outcome, "success", True) is False:
            return True
        result = getattr(outcome, "result", None)
        if result is not None:
            return any(t is self for t, _ in list(result.failures) + list(result.errors))
        return False

    def tearDown(self):
        if self._failed():
            for s in list(self._servers) + list(type(self)._class_servers or []):
                path = getattr(s, "logfile", None)
                sys.stderr.write("\n----- %s: tail of %s -----\n%s\n-----\n"
                                 % (self.id(), path, tail(path, 80)))
            sys.stderr.flush()
        # A sanitizer build reports memory errors in the log and may keep serving: fail the
        # test that provoked it. (Leaks are reported at exit: Rabtad.cleanup, which runs
        # after this, stops rabtad with SIGTERM and checks its exit code and log again.)
        for s in self._servers:
            if isinstance(s, Rabtad) and s.running():
                rep = s.sanitizer_report()
                if rep:
                    self.fail("%s (%s) reported a sanitizer error:\n%s" % (s.name, s.logfile, rep))

    # assertions ----------------------------------------------------------------------------
    def assertErrorJSON(self, r, status, code=None):
        """r has status and the error shape {"error":{"code","message","request_id"}}."""
        self.assertEqual(r.status, status, "expected HTTP %d, got %r" % (status, r))
        self.assertIsInstance(r.json, dict, "error body is not a JSON object: %r" % r)
        err = r.json.get("error")
        self.assertIsInstance(err, dict, "no \"error\" object in %r" % r)
        for k in ("code", "message", "request_id"):
            self.assertIsInstance(err.get(k), str, "error.%s missing or not a string in %r"
                                  % (k, r))
            self.assertTrue(err[k], "error.%s is empty in %r" % (k, r))
        if code is not None:
            self.assertEqual(err["code"], code, "error.code in %r" % r)
        return err


# --------------------------------------------------------------------------------------------
# Skips are failures. A test that cannot apply must say so and fail, unless its id is listed in
# allowed_skips.txt (next to this file: one test id a line, "#" starts a comment, each with the
# reason it may skip). A missing dependency is a failure that names it (tools/deps.sh installs
# everything the tests need).

ALLOWED_SKIPS_FILE = os.path.join(HERE, "allowed_skips.txt")


def allowed_skips(path=ALLOWED_SKIPS_FILE):
    """Test ids allowed to skip (unittest ids: module.Class.test_name, or module.Class for a
    whole class's setUpClass)."""
    out = set()
    try:
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    out.add(line)
    except FileNotFoundError:
        pass
    return out


def _skip_id(test):
    """The id a skip is listed under: a test's id, or "module.Class" for a skip raised in
    setUpClass (unittest reports those as "setUpClass (module.Class)")."""
    tid = test.id()
    m = re.match(r"^setUpClass \((.+)\)$", tid)
    tid = m.group(1) if m else tid
    if tid.startswith("__main__."):  # the file run as a script: name it as its module
        tid = os.path.splitext(os.path.basename(sys.argv[0]))[0] + tid[len("__main__"):]
    return tid


class SkipIsFailureResult(unittest.TextTestResult):
    """A TextTestResult that records a skip as a failure unless it is allowed."""

    allowed = None

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        if SkipIsFailureResult.allowed is None:
            SkipIsFailureResult.allowed = allowed_skips()
        self.allowed_skipped = []
        self.refused_skips = []

    def addSkip(self, test, reason):
        if _skip_id(test) in self.allowed:
            self.allowed_skipped.append((test, reason))
            super().addSkip(test, reason)
            return
        self.refused_skips.append((test, reason))
        err = AssertionError("skipped (%s), and a skip is a failure: make the test apply, or "
                             "list %s in %s with the reason" %
                             (reason, _skip_id(test), os.path.basename(ALLOWED_SKIPS_FILE)))
        self.addFailure(test, (AssertionError, err, None))


def main():
    """unittest.main with verbose output and skips counted as failures (unless allowed);
    prints one "rbtest summary:" line (read by tools/test-summary.sh) and exits non-zero on
    failure or when no test ran."""
    install_handlers()
    runner = unittest.TextTestRunner(verbosity=2, resultclass=SkipIsFailureResult)
    prog = unittest.main(verbosity=2, testRunner=runner, exit=False)
    res = prog.result
    skipped = len(res.refused_skips) + len(res.allowed_skipped)
    sys.stderr.write("rbtest summary: %s: %d run, %d failures, %d errors, %d skipped "
                     "(%d allowed, %d counted as failures)\n"
                     % (os.path.basename(sys.argv[0]), res.testsRun, len(res.failures),
                        len(res.errors), skipped, len(res.allowed_skipped),
                        len(res.refused_skips)))
    for t, reason in res.allowed_skipped:
        sys.stderr.write("rbtest allowed skip: %s: %s\n" % (_skip_id(t), reason))
    sys.stderr.flush()
    ok = res.wasSuccessful() and res.testsRun > 0
    sys.exit(0 if ok else 1)
