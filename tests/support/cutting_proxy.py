"""A TCP proxy on loopback that cuts every connection once a byte budget is spent (faults)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

#: SO_LINGER on, 0 seconds: close() sends a TCP reset, as a dropped connection does.
RESET = struct.pack("ii", 1, 0)


class CuttingProxy:
    """Forwards 127.0.0.1:port to ``target``; after ``budget`` bytes sent upstream it resets
    all connections and refuses new ones until :meth:`heal`."""

    def __init__(self, target: tuple[str, int], budget: int) -> None:
        self.target, self.budget = target, budget
        self.sent = 0
        self.broken = False
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def heal(self) -> None:
        with self.lock:
            self.broken, self.budget = False, 1 << 62

    def close(self) -> None:
        self.server.close()
        self._cut()

    def _cut(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                s.close()
        self.sockets.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.broken:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        try:
            while data := src.recv(65536):
                if counted:
                    with self.lock:
                        self.sent += len(data)
                        over = self.sent > self.budget
                    if over:
                        self.broken = True
                        self._cut()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
