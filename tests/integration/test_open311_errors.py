"""Open311 errors that the HTTP server answers before the plugin sees the request
(core/net/http.c, the host API's http_error_owner; docs/open311.md, "Errors"): a body over
server.max_body (413), a head over server.max_header_size (431) and a path of more than 32
segments (404), each in XML for a .xml path and in JSON for a .json path, against the real
binary, and a client too slow to send its head or body (408); nothing is stored; paths
outside /open311 keep the core's JSON shape."""
import socket
import urllib.parse
import xml.etree.ElementTree as ET

import rbtest
import test_open311
from test_open311 import V2

MAX_BODY = 1024 * 1024  # rbtest's default_config: server.max_body 1MiB
HEAD_LIMIT = 16 * 1024  # server.max_header_size's default


def raw_request(port, head, timeout=10.0):
    """Sends head (bytes) on a fresh connection and reads one answer (the server closes)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may answer and close before all of a head over its limit was sent
        import http.client
        resp = http.client.HTTPResponse(sock, method="GET")
        resp.begin()
        data = resp.read()
        return rbtest.Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        sock.close()


def cut_off(port, head, timeout=20.0):
    """Sends head (an unfinished request) and reads until the server closes; the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(head)
        got = b""
        while True:
            part = sock.recv(65536)
            if not part:
                break
            got += part
    finally:
        sock.close()
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
    return rbtest.Response(int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()},
                           body)


class Open311ServerErrorsTest(test_open311.Open311Server, rbtest.TestCase):
    @classmethod
    def configure(cls, config):
        config["server"]["header_timeout"] = "2s"
        config["server"]["body_timeout"] = "2s"

    def assertOpen311Error(self, r, status, fmt):
        """r is HTTP status with Open311's error body in fmt ("xml" or "json")."""
        self.assertEqual(r.status, status, "expected HTTP %d, got %r" % (status, r))
        ctype = r.headers.get("content-type", "")
        if fmt == "xml":
            self.assertTrue(ctype.startswith("text/xml"), "not XML: %s %r" % (ctype, r))
            doc = ET.fromstring(r.body)
            self.assertEqual(doc.tag, "errors", r)
            self.assertEqual(doc.findtext("error/code"), str(status), r)
            desc = doc.findtext("error/description")
        else:
            self.assertTrue(ctype.startswith("application/json"), "not JSON: %s" % ctype)
            self.assertIsInstance(r.json, list, "not Open311's error array: %r" % r)
            self.assertEqual(r.json[0].get("code"), status, r)
            desc = r.json[0].get("description")
        self.assertTrue(desc, "an Open311 error without a description: %r" % r)
        return desc

    def cases(self):
        return int(self.pgs.scalar("SELECT count(*) FROM cases"))

    def test_a_body_over_max_body_is_413_in_the_format_of_the_path(self):
        before = self.cases()
        for fmt in ("xml", "json"):
            r = rbtest.http_request_big_body(
                self.rd.port, "POST", "%s/requests.%s" % (V2, fmt), MAX_BODY + 4096,
                content_type="application/x-www-form-urlencoded")
            desc = self.assertOpen311Error(r, 413, fmt)
            self.assertIn("limit", desc, r)
        self.assertEqual(self.cases(), before, "an oversized POST stored something")
        # Outside /open311 the core's own shape is unchanged.
        r = rbtest.http_request_big_body(self.rd.port, "POST", "/api/v1/cases", MAX_BODY + 4096)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json["error"]["code"], "payload_too_large", r)

    def test_a_head_over_the_header_limit_is_431_in_the_format_of_the_path(self):
        pad = "x" * (HEAD_LIMIT + 1024)
        for fmt in ("xml", "json"):
            head = ("GET %s/services.%s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: %s\r\n\r\n"
                    % (V2, fmt, pad)).encode()
            self.assertOpen311Error(raw_request(self.rd.port, head), 431, fmt)
            # A query string that alone passes the limit: the path before "?" is known.
            q = urllib.parse.urlencode({"service_request_id": pad})
            head = ("GET %s/requests.%s?%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                    % (V2, fmt, q)).encode()
            self.assertOpen311Error(raw_request(self.rd.port, head), 431, fmt)
        head = ("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: %s\r\n\r\n" % pad).encode()
        r = raw_request(self.rd.port, head)
        self.assertEqual(r.status, 431, r)
        self.assertEqual(r.json["error"]["code"], "header_too_large", r)
        self.assertEqual(self.rd.get("/healthz").status, 200)

    def test_a_path_of_more_than_32_segments_is_404_in_the_format_of_the_path(self):
        deep = "/".join("s%d" % i for i in range(40))
        for fmt in ("xml", "json"):
            desc = self.assertOpen311Error(
                self.rd.get("%s/%s/requests.%s" % (V2, deep, fmt)), 404, fmt)
            self.assertIn("nothing here", desc)
        r = self.rd.get("/api/v1/%s" % deep)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json["error"]["code"], "not_found", r)

    def test_a_client_too_slow_is_408_in_the_format_of_the_path(self):
        r = cut_off(self.rd.port, ("GET %s/services.xml HTTP/1.1\r\nHost: t\r\n" % V2).encode())
        self.assertOpen311Error(r, 408, "xml")
        r = cut_off(self.rd.port, ("POST %s/requests.json HTTP/1.1\r\nHost: t\r\nContent-Length: "
                                   "100\r\n\r\napi_key=" % V2).encode())
        self.assertOpen311Error(r, 408, "json")

    def test_a_malformed_query_string_is_400_in_the_format_of_the_path(self):
        for fmt in ("xml", "json"):
            r = self.rd.get("%s/requests.%s?status=%%zz" % (V2, fmt))
            self.assertOpen311Error(r, 400, fmt)


if __name__ == "__main__":
    rbtest.main()
