"""A discard HTTP server on loopback: reads a request's body as fast as the socket allows, answers ``{}``.

It shows what each client can send when the receiver costs nothing (the stand-in,
by contrast, parses the multipart body, writes it to disk and unpacks it). Only
``Content-Length`` bodies are supported (all three clients send one).
"""

from __future__ import annotations

import socket
import threading

BLOCK = 1024 * 1024


class DiscardServer:
    """Accepts connections on 127.0.0.1 (free port), one thread per connection; use as a context manager."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.received = 0
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _handle(self, conn: socket.socket) -> None:
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        with conn:
            pending = b""
            while True:  # one request per loop (keep-alive)
                while b"\r\n\r\n" not in pending:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    pending += chunk
                head, _, rest = pending.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                left = length - len(rest)
                pending = b"" if left >= 0 else rest[length:]
                while left > 0:
                    n = conn.recv_into(view, min(BLOCK, left))
                    if n == 0:
                        return
                    left -= n
                self.received += length
                body = b"{}"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        """Stop accepting and wait for the connection threads."""
        self._closing = True
        self.sock.close()
        self._accept.join(timeout=5)
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> DiscardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
