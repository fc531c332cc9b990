"""A small SMTP sink for the e-mail tests: smtp_sink.py PORT DIR

Listens on 127.0.0.1:PORT (aiosmtpd, Debian python3-aiosmtpd) and stores every message it
accepts as DIR/<pid>-<n>.eml (the bytes as received) with DIR/<pid>-<n>.json (the envelope:
from, to). A recipient whose address starts with "refuse" is answered 550 (a permanent
refusal). Prints "ready" once it listens; stops on SIGTERM or SIGINT. Started and read by
smtp.SmtpSink (tests/integration/smtp.py)."""
import asyncio
import json
import os
import signal
import sys

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("refuse"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.dir, "%d-%06d" % (os.getpid(), self.n))
        data = envelope.original_content or envelope.content
        with open(base + ".tmp", "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        with open(base + ".env", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos}, f)
        os.rename(base + ".env", base + ".json")
        os.rename(base + ".tmp", base + ".eml")  # last: a reader sees whole messages only
        return "250 OK stored"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    ctl = Controller(Store(directory), hostname="127.0.0.1", port=port)
    ctl.start()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    ctl.stop()


if __name__ == "__main__":
    main()
