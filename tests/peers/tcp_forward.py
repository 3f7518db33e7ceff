"""A TCP forwarder: each accepted connection is piped to `target` in both directions, by threads.

Stands in for "the control plane came back at its URL" (a fixed listen port), and is the base of
gateways that rewrite what a client sends (override `_forward_client`)."""

from __future__ import annotations

import socket
import threading


class TcpForwarder:
    def __init__(self, listen_port: int, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, name="tcp-forward", daemon=True)

    def __enter__(self) -> TcpForwarder:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()  # ends the accept loop
        with self.lock:
            for s in self.sockets:
                s.close()
        self.thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._forward_client, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _forward_client(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client -> target; a gateway overrides this to rewrite requests."""
        self._pump(client, upstream)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class CountingForwarder(TcpForwarder):
    """Counts the bytes the target sends (an origin's answers and interleaved media: what it served)."""

    def __init__(self, listen_port: int, target: tuple[str, int]) -> None:
        super().__init__(listen_port, target)
        self.bytes_down = 0

    def url(self, path: str = "/") -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def _forward_client(self, client: socket.socket, upstream: socket.socket) -> None:
        TcpForwarder._pump(client, upstream)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:  # target -> client
        try:
            while data := src.recv(65536):
                with self.lock:
                    self.bytes_down += len(data)
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
