"""The bench's HTTP service: answers every POST at once with `{"result": "ok"}`.

    python -m bench.echo_service PORT

A threaded server speaking HTTP/1.1 with keep-alive, as a real service behind a load
balancer would, so the figure measures our HTTP path (claim, call, record, next step), not
the service. Used by bench/http_steps.py for the "3 HTTP steps" row.
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = b'{"result": "ok", "data": {}}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered: the head and the body leave in one segment, as any production server sends
    # a small answer (two writes would meet Nagle and the client's delayed ACK: ~40 ms).
    wbufsize = 64 * 1024

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def do_GET(self) -> None:  # noqa: N802 - readiness probe
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
