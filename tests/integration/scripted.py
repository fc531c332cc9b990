"""scripted: an HTTP server on 127.0.0.1 that answers as a test tells it, for the tests that play
the other side of rabtad's outgoing requests (an SMS gateway, a department's system).

  s = ScriptedServer(key=lambda path, body: ...)   what identifies a request (a phone, a case)
  s.script[key] = [503, 429, "slow", 200]          that key's successive answers
  s.default = 200                                  after the script, and for other keys
  s.next_script = [...]                            the script of the next key not seen before
  s.answers(key), s.seen                           what came: (monotonic time, key, answer)
  s.stop()

"slow" answers 200/202 only after SLOW_SECONDS, longer than the timeouts the tests configure,
so rabtad must give up waiting. Standard library only; only this process's sockets."""

import http.server
import threading
import time

import rbtest

SLOW_SECONDS = 3.0


class ScriptedServer:
    def __init__(self, key, ok=200, ok_body=b"{}"):
        self.port = rbtest.reserve_port()
        self.key = key
        self.script, self.default, self.next_script = {}, ok, None
        self.seen = []  # (monotonic time, key, answer)
        self.lock = threading.Lock()
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                k = srv.key(self.path, body)
                with srv.lock:
                    n = len([s for s in srv.seen if s[1] == k])
                    if n == 0 and srv.next_script is not None and k not in srv.script:
                        srv.script[k], srv.next_script = srv.next_script, None
                    todo = srv.script.get(k, [])
                    status = todo[n] if n < len(todo) else srv.default
                    srv.seen.append((time.monotonic(), k, status))
                if status == "slow":
                    time.sleep(SLOW_SECONDS)  # the behaviour under test: a peer that hangs
                    status = ok
                out = ok_body if status == ok else b"refused"
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                try:
                    self.wfile.write(out)
                except OSError:
                    pass

            do_GET = do_POST = answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answers(self, key):
        with self.lock:
            return [s[2] for s in self.seen if s[1] == key]

    def times(self, key):
        with self.lock:
            return [s[0] for s in self.seen if s[1] == key]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
