"""A real HTTP server on a loopback port standing in for where pushes go (a webhook receiver,
a Web Push service), for end-to-end tests of a running chatcore server.

    with PushReceiver() as receiver:
        endpoint = receiver.url("/bob")            # register it as bob's device endpoint
        ...
        got = await receiver.next("/bob")          # the next POST to /bob, or TimeoutError
        receiver.answer("/gone", 410)              # answer later POSTs to /gone with 410
        with receiver.outage("/down"):             # POSTs to /down wait, unanswered, until
            ...                                    # the block ends (then answered 503)

Every request is recorded exactly as received (path, headers, body), in arrival order per path.
"""

from __future__ import annotations

import queue
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio

from chatcore.testing.server import TIMEOUT_SCALE
from chatcore.testing.tls import make_tls

WAIT = 10 * TIMEOUT_SCALE


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections of a server sending many pushes at once
    # (then retried by TCP a second later): a receiver that slow would test itself.
    request_queue_size = 1024


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class PushReceiver:
    """See the module docstring. Answers 201 unless told otherwise for a path.

    With `tls_folder`, it serves https with a certificate for 127.0.0.1 made there, signed by
    a CA of its own whose PEM file is `ca_file` (what the server under test must trust).
    """

    def __init__(self, tls_folder: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue[Received]] = {}
        self._answers: dict[str, int] = {}
        self._held: dict[str, threading.Event] = {}
        self._waiting: dict[str, queue.Queue[None]] = {}
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.scheme = "http"
        self.ca_file: str | None = None
        if tls_folder is not None:
            ca, cert, key = make_tls(tls_folder, "push receiver CA")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme, self.ca_file = "https", str(ca)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))

    def __enter__(self) -> PushReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            for gate in self._held.values():
                gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, status: int) -> None:
        """Answer POSTs to `path` with `status` from now on."""
        with self._lock:
            self._answers[path] = status

    @contextmanager
    def outage(self, path: str) -> Iterator[None]:
        """While inside: POSTs to `path` are held unanswered (the provider hangs); when the
        block ends they are answered 503, and later ones as before."""
        gate = threading.Event()
        with self._lock:
            self._held[path] = gate
        try:
            yield
        finally:
            with self._lock:
                del self._held[path]
            gate.set()

    async def held(self, path: str, timeout: float = WAIT) -> None:  # noqa: ASYNC109
        """Wait until a POST to `path` is being held by an outage."""
        waiting = self._queue(self._waiting, path)
        try:
            await anyio.to_thread.run_sync(lambda: waiting.get(timeout=timeout))
        except queue.Empty:
            raise TimeoutError(f"no POST to {path} held within {timeout} s") from None

    async def next(self, path: str, timeout: float = WAIT) -> Received:  # noqa: ASYNC109
        """The next POST to `path` (in arrival order); TimeoutError when none comes."""
        received = self._queue(self._queues, path)
        try:
            return await anyio.to_thread.run_sync(lambda: received.get(timeout=timeout))
        except queue.Empty:
            raise TimeoutError(f"no POST to {path} within {timeout} s") from None

    def count(self, path: str) -> int:
        """POSTs to `path` received and not yet taken with `next`."""
        return self._queue(self._queues, path).qsize()

    def _queue(self, queues: dict[str, queue.Queue[Any]], path: str) -> queue.Queue[Any]:
        with self._lock:
            return queues.setdefault(path, queue.Queue())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                got = Received(self.path, dict(self.headers.items()), body)
                with receiver._lock:
                    gate = receiver._held.get(self.path)
                    status = receiver._answers.get(self.path, 201)
                if gate is not None:
                    receiver._queue(receiver._waiting, self.path).put(None)
                    gate.wait(60)
                    status = 503
                else:
                    receiver._queue(receiver._queues, self.path).put(got)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
