"""A catalogue of hostile requests against every public endpoint, each with the 4xx it must
get (never a 5xx, never a hang), and nothing stored half-way; plus the server's limits seen
from outside: a never-ending header does not grow rabtad's memory, slow clients are cut off
with 408, connections past the maximum get 503 while /healthz still answers, guessing routes
answer 429 with Retry-After, X-Forwarded-For counts only from trusted proxies, /metrics only
for its addresses or token. docs/security.md lists every limit."""
import json
import os
import re
import socket
import subprocess
import time

import rbtest

HOST = b"Host: 127.0.0.1\r\n"
TN = "RB-7K3M9-QXPD2-3"  # well-formed, not stored


def req(method, path, body=b"", headers=(), ctype=b"application/json"):
    """Raw request bytes with a Host, a Content-Length and the given extra header lines."""
    if isinstance(body, str):
        body = body.encode()
    h = b"".join(x + b"\r\n" for x in headers)
    if body:
        h += b"Content-Type: " + ctype + b"\r\n"
    return (method.encode() + b" " + path.encode() + b" HTTP/1.1\r\n" + HOST + h +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def nested(depth):
    return '{"kind":"complaint","text":' + "[" * depth + "1" + "]" * depth + "}"


BIG_TEXT = json.dumps({"kind": "complaint", "service": "arms_licence", "anonymous": True,
                       "text": "x" * 20000})

# (name, raw request bytes, expected status). Every public route of the default plugins.
CATALOGUE = [
    # bodies: JSON
    ("truncated JSON", req("POST", "/api/v1/cases", '{"kind":"compl'), 400),
    ("JSON array, not object", req("POST", "/api/v1/cases", "[1,2]"), 400),
    ("JSON scalar", req("POST", "/api/v1/cases", "42"), 400),
    ("empty JSON body", req("POST", "/api/v1/cases", b"", headers=(b"Content-Type: application/json",)), 400),
    ("duplicate keys", req("POST", "/api/v1/cases", '{"kind":"complaint","kind":"feedback","text":"a","anonymous":true}'), 400),
    ("deep nesting", req("POST", "/api/v1/cases", nested(5000)), 400),
    ("kind is a number", req("POST", "/api/v1/cases", '{"kind":1,"text":"a","anonymous":true}'), 400),
    ("text is an object", req("POST", "/api/v1/cases", '{"kind":"complaint","text":{},"anonymous":true}'), 400),
    ("anonymous is a string", req("POST", "/api/v1/cases", '{"kind":"complaint","text":"a","anonymous":"yes"}'), 400),
    ("invalid UTF-8 in text", req("POST", "/api/v1/cases", b'{"kind":"complaint","text":"\xff\xfe","anonymous":true}'), 400),
    ("invalid UTF-8 in a key", req("POST", "/api/v1/cases", b'{"\xc3\x28":"x"}'), 400),
    ("NUL escaped in text", req("POST", "/api/v1/cases", '{"kind":"complaint","text":"a\\u0000b","anonymous":true}'), 400),
    ("lone surrogate", req("POST", "/api/v1/cases", '{"kind":"complaint","text":"\\ud800","anonymous":true}'), 400),
    ("control characters only", req("POST", "/api/v1/cases", '{"kind":"complaint","text":"\\u0007\\u0008","anonymous":true}'), 422),
    ("text too long", req("POST", "/api/v1/cases", BIG_TEXT), 422),
    ("unknown service", req("POST", "/api/v1/cases", '{"kind":"complaint","service":"../../etc","text":"a","anonymous":true}'), 422),
    ("unknown field", req("POST", "/api/v1/cases", '{"kind":"complaint","text":"a","anonymous":true,"admin":true}'), 400),
    ("huge number", req("POST", "/api/v1/cases", '{"kind":"feedback","text":"a","rating":1e400,"anonymous":true}'), 400),
    ("photo not base64", req("POST", "/api/v1/cases", '{"kind":"complaint","text":"a","anonymous":true,"photo":{"content_type":"image/jpeg","data":"@@@"}}'), 400),
    ("photo not an image", req("POST", "/api/v1/cases", '{"kind":"complaint","text":"a","anonymous":true,"photo":{"content_type":"image/png","data":"R0lGODlhAQABAAAAACw="}}'), 422),
    ("wrong content type", req("POST", "/api/v1/cases", '{"kind":"complaint"}', ctype=b"text/plain"), 415),
    ("latin-1 charset", req("POST", "/api/v1/cases", '{}', ctype=b"application/json; charset=iso-8859-1"), 400),
    ("body over max_body", req("POST", "/api/v1/cases", "x" * (1024 * 1024 + 10)), 413),
    ("register body over its route limit", req("POST", "/api/v1/register", '{"phone":"' + "1" * 5000 + '"}'), 413),
    ("register: phone is garbage", req("POST", "/api/v1/register", '{"phone":"+92abc\\u202e"}'), 422),
    ("register: phone a number", req("POST", "/api/v1/register", '{"phone":3001234567}'), 400),
    ("verify: code not digits", req("POST", "/api/v1/verify", '{"phone":"+923001234567","code":"12ab56"}'), 400),
    ("verify: truncated", req("POST", "/api/v1/verify", '{"phone":"+9230'), 400),
    ("staff login: wrong types", req("POST", "/api/v1/staff/login", '{"username":["a"],"password":1}'), 400),
    ("staff login: invalid UTF-8", req("POST", "/api/v1/staff/login", b'{"username":"\xc0\xaf","password":"x"}'), 400),
    ("comment without a token", req("POST", "/api/v1/cases/%s/comments" % TN, '{"text":"hi"}'), 401),
    ("rating without a token", req("POST", "/api/v1/cases/%s/rating" % TN, '{"rating":9}'), 401),
    ("logout with a malformed token", req("POST", "/api/v1/logout", "", headers=(b"Authorization: Bearer \x01\x02",)), 401),
    ("my cases with a bogus token", req("GET", "/api/v1/me/cases", headers=(b"Authorization: Bearer nope",)), 401),
    ("staff inbox without a token", req("GET", "/api/v1/staff/inbox"), 401),
    # paths and queries
    ("tracking number with a slash", req("GET", "/api/v1/cases/RB%2F..%2F..?phone_last4=1234"), 400),
    ("tracking number too long", req("GET", "/api/v1/cases/" + "A" * 5000 + "?phone_last4=1234"), 400),
    ("tracking number invalid UTF-8", req("GET", "/api/v1/cases/%C3%28?phone_last4=1234"), 400),
    ("encoded NUL in the path", req("GET", "/api/v1/cases/RB%00X"), 400),
    ("dot-dot path", req("GET", "/api/v1/../../etc/passwd"), 404),
    ("double slash", req("GET", "//healthz"), 404),
    ("status without last digits", req("GET", "/api/v1/cases/%s" % TN), 400),
    ("last digits not digits", req("GET", "/api/v1/cases/%s?phone_last4=abcd" % TN), 400),
    ("malformed query on my cases", req("GET", "/api/v1/me/cases?limit=%zz&&"), 400),
    ("limit not a number", req("GET", "/api/v1/me/cases?limit=9999999999999999999999", headers=(b"Authorization: Bearer nope",)), 401),
    ("staff case id past bigint", req("GET", "/api/v1/staff/cases/99999999999999999999999"), 401),
    ("method not allowed", req("DELETE", "/api/v1/cases"), 405),
    # RFC 9110 9.1: an unknown method is 501, the one 5xx a client can cause on purpose.
    ("unknown method", b"BREW /healthz HTTP/1.1\r\n" + HOST + b"\r\n", 501),
    # heads
    ("no Host in HTTP/1.1", b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    ("two Host headers", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("two different Content-Length", b"POST /api/v1/cases HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}", 400),
    ("Content-Length with chunked", b"POST /api/v1/cases HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400),
    ("negative Content-Length", b"POST /api/v1/cases HTTP/1.1\r\n" + HOST + b"Content-Length: -5\r\n\r\n", 400),
    ("Content-Length not a number", b"POST /api/v1/cases HTTP/1.1\r\n" + HOST + b"Content-Length: 12abc\r\n\r\n", 400),
    ("header without a colon", b"GET /healthz HTTP/1.1\r\n" + HOST + b"NoColonHere\r\n\r\n", 400),
    ("header too large", b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ("too many headers", b"GET /healthz HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431),
    ("request line too long", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 431),
    ("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ("HTTP/9.9", b"GET /healthz HTTP/9.9\r\n" + HOST + b"\r\n", 400),
    ("bad chunk size", b"POST /api/v1/cases HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 413),  # libevent's answer
    ("metrics token wrong", req("GET", "/metrics", headers=(b"Authorization: Bearer wrong",)), None),
]


def send_raw(port, data, timeout=15.0):
    """Sends data, reads until the server closes or one whole answer arrived; the status (None
    when the server closed without answering)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if sep:
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
        if not buf.startswith(b"HTTP/1."):
            return None, buf
        return int(buf.split(b" ", 2)[1]), buf
    finally:
        s.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class HostileTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        srv = cls.rd.config["server"]
        srv["header_timeout"] = "2s"
        srv["body_timeout"] = "2s"
        srv["keepalive_timeout"] = "3s"
        srv["max_header_size"] = "16KiB"
        srv["max_connections"] = 40
        srv["connection_reserve"] = 4
        srv["metrics_allow"] = ["10.9.9.9"]  # not us: the token is needed
        srv["metrics_token_env"] = "RB_TEST_METRICS_TOKEN"
        srv["trusted_proxies"] = ["127.0.0.1"]
        # The guessing routes keep their defaults here (rbtest turns them off elsewhere).
        del srv["routes"]
        os.environ["RB_TEST_METRICS_TOKEN"] = "s3cret-metrics"  # rabtad inherits it
        cls.rd.start()

    def counts(self):
        return self.pgs.query("SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM "
                              "case_events), (SELECT count(*) FROM messages), (SELECT count(*) "
                              "FROM citizens), (SELECT count(*) FROM jobs)")[0]

    def test_every_hostile_request_gets_its_4xx_and_nothing_is_stored(self):
        before = self.counts()
        wrong = []
        for i, (name, data, want) in enumerate(CATALOGUE):
            # A fresh client address for each (trusted proxy): the rate limits stay out of it.
            data = data.replace(HOST, HOST + b"X-Forwarded-For: 198.51.100.%d\r\n" % (i + 1), 1)
            status, raw = send_raw(self.rd.port, data)
            if want is None:
                want = 403
            if status != want:
                wrong.append("%s: expected %s, got %s: %r" % (name, want, status, raw[:300]))
            if status is not None and status >= 500 and want != 501:
                wrong.append("%s: a 5xx for hostile input" % name)
            if raw and status and status >= 400 and b'"error"' not in raw:
                wrong.append("%s: the answer is not the JSON error shape: %r" % (name, raw[:200]))
        self.assertEqual(wrong, [], "\n".join(wrong))
        self.assertGreaterEqual(len(CATALOGUE), 50)
        self.assertEqual(self.counts(), before, "a hostile request stored something")
        self.assertEqual(self.rd.get("/healthz").status, 200, "the server is still up")
        log = self.rd.log_text()
        self.assertNotIn("out of memory", log)

    def test_a_never_ending_header_does_not_grow_memory(self):
        pid = self.rd.proc.pid
        base = rss_kb(pid)
        s = socket.create_connection(("127.0.0.1", self.rd.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Endless: ")
        sent = 0
        chunk = b"a" * 65536
        try:
            while sent < 50 * 1024 * 1024:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass  # cut off: what we want
        s.close()
        grown = rss_kb(pid) - base
        self.assertLess(sent, 50 * 1024 * 1024, "the server kept reading an endless header")
        self.assertLess(grown, 8 * 1024, "rabtad grew by %d KiB on one endless header" % grown)
        self.assertEqual(self.rd.get("/healthz").status, 200)

    def test_slow_clients_are_cut_off_with_408(self):
        # Slowloris: one header byte a second never finishes the head within header_timeout.
        s = socket.create_connection(("127.0.0.1", self.rd.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        start = time.monotonic()
        got = b""
        s.settimeout(0.5)
        # Bytes keep coming, so only header_timeout (2 s) can end it: a 408, whenever it comes
        # (no wall-clock limit on a loaded machine), and not before the 2 s.
        while time.monotonic() - start < 60:
            try:
                s.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                part = s.recv(4096)
                if not part:
                    break
                got += part
            except socket.timeout:
                pass
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 408"), got)
        self.assertGreater(time.monotonic() - start, 1.8)
        # A body that stops half-way.
        status, raw = send_raw(self.rd.port, b"POST /api/v1/cases HTTP/1.1\r\n" + HOST +
                               b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        self.assertEqual(status, 408, raw)

    def test_an_idle_keepalive_connection_is_closed_after_keepalive_timeout(self):
        s = socket.create_connection(("127.0.0.1", self.rd.port), timeout=20)
        try:
            s.sendall(req("GET", "/healthz"))
            got = b""
            while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
                got += s.recv(4096)
            self.assertTrue(got.startswith(b"HTTP/1.1 200"), got)
            start = time.monotonic()
            self.assertEqual(s.recv(4096), b"", "the server closes the idle connection")
            waited = time.monotonic() - start
            # keepalive_timeout is 3 s here; nothing else would close it before the socket's
            # 20 s timeout (request_timeout is 30 s), so no wall-clock upper limit is needed
            self.assertGreater(waited, 2.5)
        finally:
            s.close()

    def test_connections_past_the_maximum_get_503_and_healthz_still_answers(self):
        idle = []
        try:
            for _ in range(40):
                idle.append(socket.create_connection(("127.0.0.1", self.rd.port), timeout=10))
            status, raw = send_raw(self.rd.port, req("GET", "/api/v1/meta"))
            self.assertEqual(status, 503, raw)
            self.assertIn(b"Retry-After: 1", raw)
            status, raw = send_raw(self.rd.port, req("GET", "/healthz"))
            self.assertEqual(status, 200, raw)
            for _ in range(8):  # past the reserve too: answered 503 at once, not kept
                idle.append(socket.create_connection(("127.0.0.1", self.rd.port), timeout=10))
            status, raw = send_raw(self.rd.port, b"")
            self.assertEqual(status, 503, raw)
        finally:
            for s in idle:
                s.close()
        rbtest.wait_until(lambda: self.rd.get("/api/v1/meta").status == 200, 10)

    def open_connections(self):
        r = self.rd.request("GET", "/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
        for line in r.text.splitlines():
            if line.startswith("rabta_http_connections "):
                return float(line.split()[1])
        return -1

    def test_metrics_need_the_address_or_the_token(self):
        r = self.rd.get("/metrics")
        self.assertErrorJSON(r, 403, "forbidden")
        r = self.rd.request("GET", "/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
        self.assertEqual(r.status, 200)
        self.assertIn("rabta_http_connections", r.text)

    def test_status_lookups_are_rate_limited_per_address_with_retry_after(self):
        hdr = {"X-Forwarded-For": "203.0.113.7"}
        seen = []
        for _ in range(25):  # default: 20 at once, then 30 a minute
            r = self.rd.request("GET", "/api/v1/cases/%s?phone_last4=%04d" % (TN, 1), headers=hdr)
            seen.append(r.status)
        self.assertNotIn(429, seen[:20], seen)
        self.assertEqual(seen[-1], 429, seen)
        r = self.rd.request("GET", "/api/v1/cases/%s?phone_last4=1" % TN, headers=hdr)
        self.assertErrorJSON(r, 429, "rate_limited")
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        # Another client (address) is not affected; an IPv6 /64 counts as one client.
        r = self.rd.request("GET", "/api/v1/cases/%s?phone_last4=1" % TN,
                            headers={"X-Forwarded-For": "203.0.113.8"})
        self.assertNotEqual(r.status, 429)

    def test_guessing_a_cases_digits_from_many_addresses_is_stopped(self):
        xff = {"X-Forwarded-For": "203.0.113.50"}
        phone = "+923001112299"
        self.assertEqual(self.rd.post("/api/v1/register", {"phone": phone}, headers=xff).status,
                         202)
        body = self.pgs.scalar("SELECT body FROM messages WHERE to_address = '%s' ORDER BY id "
                               "DESC LIMIT 1" % phone)
        code = re.search(r"\b(\d{6})\b", body).group(1)
        r = self.rd.post("/api/v1/verify", {"phone": phone, "code": code}, headers=xff)
        self.assertEqual(r.status, 200, r)
        xff["Authorization"] = "Bearer " + r.json["token"]
        r = self.rd.post("/api/v1/cases", {"kind": "complaint", "service": "arms_licence",
                                           "text": "the counter was closed all day"},
                         headers=xff)
        self.assertEqual(r.status, 201, r)
        tn = r.json["tracking_no"]
        url = "/api/v1/cases/%s?phone_last4=" % tn
        for i in range(10):  # ten wrong guesses, each from another address
            r = self.rd.get(url + "%04d" % i, headers={"X-Forwarded-For": "192.0.2.%d" % (i + 100)})
            self.assertErrorJSON(r, 404, "not_found")
        r = self.rd.get(url + "2299", headers={"X-Forwarded-For": "192.0.2.200"})
        self.assertErrorJSON(r, 429, "rate_limited")  # even the right digits, from a new address
        self.assertGreater(int(r.headers["retry-after"]), 60)
        self.assertNotIn("routed", r.text)

    def test_an_ipv6_slash_64_counts_as_one_client(self):
        seen = []
        for i in range(6):  # staff sign-in: 5 at once, from two addresses of one /64
            # (another name each time: an account locks after 5 failures, whatever the address)
            r = self.rd.post("/api/v1/staff/login", {"username": "v6-%d" % i, "password": "x"},
                             headers={"X-Forwarded-For": "2001:db8:77:1::%x" % (i % 2 + 1)})
            seen.append(r.status)
        self.assertEqual(seen[:5], [401] * 5, seen)
        self.assertEqual(seen[5], 429, seen)
        self.assertErrorJSON(r, 429, "rate_limited")
        r = self.rd.post("/api/v1/staff/login", {"username": "v6-next", "password": "x"},
                         headers={"X-Forwarded-For": "2001:db8:77:2::1"})  # the next /64
        self.assertEqual(r.status, 401, r)

    def test_forwarded_for_counts_only_from_trusted_proxies(self):
        # 127.0.0.1 is trusted here; a forged chain "evil, real" names "real" (the rightmost
        # address the proxy added), so forging the left part does not help.
        seen = []
        for i in range(6):
            r = self.rd.post("/api/v1/staff/login", {"username": "xff-%d" % i, "password": "x"},
                             headers={"X-Forwarded-For": "192.0.2.%d, 198.18.0.1" % i})
            seen.append(r.status)
        self.assertEqual(seen, [401] * 5 + [429], seen)
        self.assertErrorJSON(r, 429, "rate_limited")


class SecretsAndDatabaseErrorsTest(rbtest.TestCase):
    """At log level debug, a run with staff passwords, SMS codes, tokens and a gateway secret in
    a query leaves none of them in the log; bytes PostgreSQL refuses are 400 without its
    words; a malformed query is 400, not a filter silently dropped."""
    PASSWORD = "Pw-7f3a9c1e-horse"
    WRONG = "Wrong-2b8d4e6a-pass"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        cls.rd.config["log"]["level"] = "debug"
        os.environ["RB_TEST_METRICS_TOKEN2"] = "metrics-tok-5e1f0a"
        cls.rd.config["server"]["metrics_token_env"] = "RB_TEST_METRICS_TOKEN2"
        # Kannel's side: nothing listens on the sendsms port (no SMS leaves in these tests).
        cls.rd.config["plugins"].append({"name": "sms_kannel", "config": {
            "sendsms_url": "http://127.0.0.1:%d/cgi-bin/sendsms" % rbtest.free_port(),
            "username": "rabta", "password": "kannel-pass-77a1", "secret": "kannel-secret-91c2"}})
        cls.rd.start()
        r = subprocess.run([rbtest.RABTAD, "staff", "-c", cls.rd.config_path, "add", "adm",
                            "--role", "admin", "--name", "Admin"], input=cls.PASSWORD + "\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
        assert r.returncode == 0, r.stderr

    def staff_token(self):
        r = self.rd.post("/api/v1/staff/login", {"username": "adm", "password": self.PASSWORD})
        self.assertEqual(r.status, 200, r)
        return r.json["token"]

    def test_no_secret_reaches_the_log(self):
        secrets_used = [self.PASSWORD, self.WRONG, "kannel-secret-91c2", "metrics-tok-5e1f0a",
                        "kannel-pass-77a1"]
        self.rd.get("/sms/kannel/dlr?secret=kannel-secret-91c2&id=1&type=1")
        self.rd.get("/sms/kannel/mo?secret=wrong-secret-3&from=%2B923001234567&text=hi")
        r = self.rd.post("/api/v1/staff/login", {"username": "adm", "password": self.WRONG})
        self.assertEqual(r.status, 401, r)
        token = self.staff_token()
        secrets_used.append(token)
        self.assertEqual(self.rd.get("/api/v1/staff/me", headers={
            "Authorization": "Bearer " + token}).status, 200)
        phone = "+92300%07d" % (int(time.time() * 1000) % 10000000)
        self.assertEqual(self.rd.post("/api/v1/register", {"phone": phone}).status, 202)
        body = self.pgs.scalar("SELECT body FROM messages WHERE to_address = '%s' ORDER BY id "
                               "DESC LIMIT 1" % phone)
        code = re.search(r"\b(\d{6})\b", body).group(1)
        wrong = "%06d" % ((int(code) + 1) % 1000000)
        self.rd.post("/api/v1/verify", {"phone": phone, "code": wrong})
        r = self.rd.post("/api/v1/verify", {"phone": phone, "code": code})
        self.assertEqual(r.status, 200, r)
        secrets_used += [code, wrong, r.json["token"]]
        self.rd.get("/api/v1/cases/%s?phone_last4=1234&secret=kannel-secret-91c2" % TN)
        self.assertEqual(self.rd.get("/metrics", headers={
            "Authorization": "Bearer metrics-tok-5e1f0a"}).status, 200)
        log = self.rd.log_text()
        self.assertIn('"level":"debug"', log, "the run logged at debug")
        for s in secrets_used:
            self.assertNotIn(s, log, "a secret reached the log: %s" % s)

    def test_bytes_postgresql_refuses_are_400_without_its_words(self):
        auth = {"Authorization": "Bearer " + self.staff_token()}
        for q in ("service=%FF%FE", "district=%C3%28", "cursor=2026-01-01T00:00:00Z,"
                  "99999999999999999999999"):
            r = self.rd.get("/api/v1/staff/inbox?" + q, headers=auth)
            self.assertIn(r.status, (400,), "%s: %r" % (q, r))
            self.assertNotIn("SQLSTATE", r.text)
            self.assertNotIn("invalid byte sequence", r.text)
        r = self.rd.get("/api/v1/staff/inbox?status&priority=high", headers=auth)
        self.assertErrorJSON(r, 400, "bad_request")
        # Invalid UTF-8 echoed into a message: the bytes become U+FFFD, the answer stays 400.
        r = self.rd.get("/api/v1/staff/inbox?status=ab%FFcd", headers=auth)
        self.assertErrorJSON(r, 400)
        self.assertIn("ab\ufffdcd", r.json["error"]["message"])
        # A delivery report with an id past bigint or an answer PostgreSQL refuses: 400.
        for q in ("id=99999999999999999999&type=1", "id=5&type=2&answer=%FF%FE"):
            r = self.rd.get("/sms/kannel/dlr?secret=kannel-secret-91c2&" + q)
            self.assertEqual(r.status, 400, "%s: %r" % (q, r))
        self.assertEqual(self.rd.get("/healthz").status, 200)


class PendingBytesTest(rbtest.TestCase):
    """Bodies held by requests not yet answered (here: waiting for a locked table) are bounded
    by server.max_pending_bytes; past it a request gets a fast 503, and the held ones are stored
    once the database moves again."""

    def test_held_bodies_are_bounded_in_bytes(self):
        import base64
        import threading
        pg = self.pg()
        rd = self.rabtad(pg=pg, start=False)
        rd.config["server"]["max_pending_bytes"] = "1MiB"
        rd.start()
        photo = b"\xff\xd8\xff\xe0" + os.urandom(300 * 1024)
        case = {"kind": "complaint", "service": "arms_licence", "anonymous": True,
                "text": "a photo of the broken counter",
                "photo": {"content_type": "image/jpeg",
                          "data": base64.b64encode(photo).decode()}}
        size = len(json.dumps(case))
        lock = subprocess.Popen(
            [os.path.join(pg.bindir, "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port),
             "-U", rbtest.PG_USER, "-d", pg.dbname], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lock.stdin.write(b"BEGIN; LOCK TABLE cases IN ACCESS EXCLUSIVE MODE;\n")
        lock.stdin.flush()
        rbtest.wait_until(lambda: pg.scalar("SELECT count(*) FROM pg_locks WHERE relation = "
                                            "'cases'::regclass AND granted") != "0", 30)
        results = []
        held = [threading.Thread(target=lambda: results.append(
            rd.post("/api/v1/cases", case, timeout=60).status)) for _ in range(2)]
        try:
            for t in held:
                t.start()
            rbtest.wait_until(lambda: self.pending(rd) >= 2 * size, 30)
            r = rd.post("/api/v1/cases", case)
            self.assertErrorJSON(r, 503, "overloaded")
            self.assertEqual(r.headers.get("retry-after"), "1")
        finally:
            lock.stdin.close()  # psql ends; the lock goes with its session
            lock.wait(30)
            for t in held:
                t.join(60)
        self.assertEqual(results, [201, 201])
        self.assertEqual(self.pending(rd), 0)

    @staticmethod
    def pending(rd):
        for line in rd.get("/metrics").text.splitlines():
            if line.startswith("rabta_http_pending_bytes "):
                return float(line.split()[1])
        return -1


if __name__ == "__main__":
    rbtest.main()
