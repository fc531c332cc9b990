#!/usr/bin/env python3
"""A stand-in for Kannel's sendsms on 127.0.0.1: answers every GET with 202 "0: Accepted for
delivery" and appends the monotonic arrival time and the `to` of each request to a file, one
request a line.

    sendsms_sink.py PORT ARRIVALS_FILE
"""
import http.server
import sys
import time
import urllib.parse


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        t = time.monotonic()
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        Sink.out.write("%.6f %s\n" % (t, q.get("to", ["-"])[0]))
        Sink.out.flush()
        body = b"0: Accepted for delivery"
        self.send_response(202)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    Sink.out = open(path, "a")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink)
    srv.serve_forever()


if __name__ == "__main__":
    main()
