"""A stand-in for a workspace or object store that misbehaves, for scripts/object-store-tests.sh:
it accepts every connection and reads the request, then

- `silent`: never answers (the connection stays open);
- `slow`: sends a 200 status and headers at once, then the body one byte per second;
- `drop`: sends a 200 status, headers announcing a 64 KiB body and 16 bytes of it, then closes
  the connection;
- `record`: answers 404 (no such object) and appends each request's line and `Authorization`
  header to RECORD_FILE, so a test can check how the client signed or authenticated it (which
  region, which bearer token).

    misbehaving_server.py MODE PORT [RECORD_FILE]

Each connection is held by its own thread; the process runs until it is killed. It prints
nothing about the requests (their headers carry credentials); `record` writes them only to its
file.
"""

import socket
import socketserver
import sys
import time

BODY_BYTES = 64 * 1024
HEAD = (
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    f"Content-Length: {BODY_BYTES}\r\n"
    "\r\n"
).encode()


class Handler(socketserver.BaseRequestHandler):
    mode = "silent"

    record_file = None

    def read_head(self):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return None
            data += chunk
        return data.split(b"\r\n\r\n", 1)[0].decode("latin-1")

    def handle(self):
        head = self.read_head()
        if head is None:
            return
        try:
            if self.mode == "record":
                lines = head.split("\r\n")
                auth = next((l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("authorization:")), "")
                with open(self.record_file, "a", encoding="utf-8") as f:
                    f.write(f"{lines[0]}\t{auth}\n")
                body = b'{"error": {"code": 404, "message": "No such object."}}'
                self.request.sendall(
                    b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
                )
            elif self.mode == "silent":
                while self.request.recv(65536):  # until the client gives up
                    pass
            elif self.mode == "slow":
                self.request.sendall(HEAD)
                for _ in range(BODY_BYTES):
                    self.request.sendall(b" ")
                    time.sleep(1)
            elif self.mode == "drop":
                self.request.sendall(HEAD + b'{"name": "trunc')
                self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client hung up


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode not in ("silent", "slow", "drop", "record"):
        sys.exit(f"unknown mode {mode!r}: silent, slow, drop or record")
    if mode == "record":
        Handler.record_file = sys.argv[3]
    Handler.mode = mode
    with Server(("127.0.0.1", port), Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
