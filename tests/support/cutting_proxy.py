"""A TCP proxy on loopback that cuts or stalls every connection once a byte budget is spent."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

#: SO_LINGER on, 0 seconds: close() sends a TCP reset, as a dropped connection does.
RESET = struct.pack("ii", 1, 0)


class CuttingProxy:
    """Forwards 127.0.0.1:port to ``target``; after ``budget`` bytes sent upstream it resets
    all connections and refuses new ones until :meth:`heal`. With ``stall`` it instead stops
    reading: connections stay open and silent, as behind a dead link, until :meth:`close`."""

    def __init__(self, target: tuple[str, int], budget: int, *, stall: bool = False) -> None:
        self.target, self.budget, self.stall = target, budget, stall
        self.closed = threading.Event()
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
        self.closed.set()
        self.server.close()
        self._cut()

    @staticmethod
    def _reset(s: socket.socket) -> None:
        """Drop a connection now. close() alone does not wake a thread blocked in recv() on
        the socket, and the kernel keeps the connection open for it: the peer then waits
        forever (this hung CI). shutdown() wakes the reader; close() then sends the reset."""
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()

    def _cut(self) -> None:
        """Reset every open connection (under the lock, so none opens meanwhile uncut)."""
        with self.lock:
            self.broken = True
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            self._reset(s)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                if self.broken and self.stall:
                    self.sockets.append(client)  # accepted, never answered
                    continue
                if self.broken:
                    self._reset(client)
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
                        over = self.broken or self.sent > self.budget
                    if over and self.stall:
                        with self.lock:
                            self.broken = True
                        self.closed.wait()  # hold the connection, read nothing more
                        return
                    if over:
                        self._cut()
                        self._reset(src)  # this connection too, whatever the list held
                        self._reset(dst)
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
