"""server.request_timeout as docs/config.md states it: "How long a connection may go without
any progress (no byte read or written) before libevent drops it". The real rabtad with
request_timeout 2s and the per-phase deadlines (header_timeout, body_timeout,
keepalive_timeout) at 120 s, so that only request_timeout can end the connections here: a
connection that stops sending in the middle of its request line is dropped, well before any
other deadline; one that keeps making progress, a byte at a time, outlives request_timeout
several times over and gets its answer."""
import socket
import time

import rbtest

TIMEOUT = 2.0  # request_timeout
OTHERS = 120.0  # header_timeout, body_timeout, keepalive_timeout


class RequestTimeoutTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        srv = cls.rd.config["server"]
        srv["request_timeout"] = "%ds" % TIMEOUT
        for key in ("header_timeout", "body_timeout", "keepalive_timeout"):
            srv[key] = "%ds" % OTHERS
        cls.rd.start()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.rd.port), timeout=OTHERS / 2)
        self.addCleanup(s.close)
        return s

    def read_until_closed(self, s):
        """Everything the server sends until it closes (b"" or a reset); waits at most
        OTHERS / 2, well before any other deadline could close the connection."""
        got = b""
        while True:
            try:
                part = s.recv(4096)
            except ConnectionResetError:
                return got
            except socket.timeout:
                self.fail("the connection was still open after %.0f s" % (OTHERS / 2))
            if not part:
                return got
            got += part

    def test_a_connection_without_progress_is_dropped(self):
        s = self.connect()
        s.sendall(b"GET /healthz HTT")
        start = time.monotonic()
        got = self.read_until_closed(s)
        waited = time.monotonic() - start
        # Not before request_timeout (the lower bound is what the setting promises; the upper
        # one is the other deadlines, which are far off: read_until_closed fails past half).
        self.assertGreater(waited, TIMEOUT - 0.2, "dropped after %.2f s" % waited)
        self.assertEqual(got, b"", "dropped, not answered")
        self.assertEqual(self.rd.get("/healthz").status, 200, "the server still answers")

    def test_a_connection_that_keeps_making_progress_is_not_dropped(self):
        s = self.connect()
        line = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40
        start = time.monotonic()
        for i in range(len(line)):  # one byte every 0.1 s: 3 times request_timeout in all
            s.sendall(line[i:i + 1])
            time.sleep(0.1)  # the pace of a slow client, not a synchronisation
        self.assertGreater(time.monotonic() - start, 2 * TIMEOUT)
        s.sendall(b"\r\nConnection: close\r\n\r\n")
        got = self.read_until_closed(s)
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got)


if __name__ == "__main__":
    rbtest.main()
