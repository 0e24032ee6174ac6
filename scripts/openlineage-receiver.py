"""A real HTTP receiver of OpenLineage events, for the tests.

    openlineage-receiver.py --bind ADDR --out EVENTS.jsonl [--fail-first N]

Listens on ADDR (host:port; port 0 picks a free one) and prints "listening on
host:port" once it does. Each POST to /api/v1/lineage with a JSON body is
appended, as one line, to EVENTS.jsonl and answered 201; the first N requests
are answered 503 instead (and not recorded), to exercise the sender's retries.
Anything else is a 404 or a 400. Runs until killed.
"""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bind", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    args = p.parse_args()
    host, port = args.bind.rsplit(":", 1)
    lock = threading.Lock()
    state = {"requests": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status):
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/api/v1/lineage":
                return self.answer(404)
            if self.headers.get("Content-Type") != "application/json":
                return self.answer(400)
            try:
                event = json.loads(body)
            except ValueError:
                return self.answer(400)
            with lock:
                state["requests"] += 1
                if state["requests"] <= args.fail_first:
                    return self.answer(503)
                with open(args.out, "a") as f:
                    f.write(json.dumps(event) + "\n")
            self.answer(201)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(f"listening on {server.server_address[0]}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
