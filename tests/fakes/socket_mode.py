"""A fake Slack Socket Mode endpoint on 127.0.0.1: a minimal websocket server (RFC 6455
text frames only) that sends envelopes and records what the app sends back.

Slack's flow: the app calls ``apps.connections.open`` with its app-level token (the
fake Web API answers with this server's ``ws://`` URL), connects, receives ``hello``,
then envelopes ``{"envelope_id", "type", "payload", "accepts_response_payload"}``,
each acknowledged by ``{"envelope_id", "payload"}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from typing import Any

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FakeSocketMode:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.acks: list[dict[str, Any]] = []
        self._outbox: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.getsockname()[1]}/link"

    def send(self, envelope: dict[str, Any]) -> None:
        with self._cond:
            self._outbox.append(envelope)
            self._cond.notify_all()

    def wait_ack(self, envelope_id: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ack in self.acks:
                    if ack.get("envelope_id") == envelope_id:
                        return ack
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no ack for {envelope_id}; got {self.acks}")
                self._cond.wait(left)

    def stop(self) -> None:
        self._stop = True
        self.server.close()

    # -------------------------------------------------------------- the protocol

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (
                    line.partition(":") for line in request.decode().split("\r\n")[1:] if line
                )
            }
            accept = base64.b64encode(
                hashlib.sha1((headers["sec-websocket-key"] + _GUID).encode()).digest()
            ).decode()
            conn.sendall(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                ).encode()
            )
            self._write(conn, {"type": "hello", "num_connections": 1})
            threading.Thread(target=self._reader, args=(conn,), daemon=True).start()
            sent = 0
            while not self._stop:
                with self._cond:
                    while sent >= len(self._outbox) and not self._stop:
                        self._cond.wait(0.2)
                    pending = self._outbox[sent:]
                    sent = len(self._outbox)
                for envelope in pending:
                    self._write(conn, envelope)
        except OSError:
            return

    def _write(self, conn: socket.socket, message: dict[str, Any], opcode: int = 0x1) -> None:
        data = json.dumps(message).encode() if opcode == 0x1 else b""
        head = bytes([0x80 | opcode])
        if len(data) < 126:
            head += bytes([len(data)])
        elif len(data) < 65536:
            head += bytes([126]) + struct.pack("!H", len(data))
        else:
            head += bytes([127]) + struct.pack("!Q", len(data))
        conn.sendall(head + data)

    def _recv_exact(self, conn: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise OSError("closed")
            buf += chunk
        return buf

    def _reader(self, conn: socket.socket) -> None:
        try:
            while not self._stop:
                b0, b1 = self._recv_exact(conn, 2)
                opcode, length = b0 & 0x0F, b1 & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", self._recv_exact(conn, 2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", self._recv_exact(conn, 8))
                mask = self._recv_exact(conn, 4) if b1 & 0x80 else b"\0\0\0\0"
                payload = bytes(
                    b ^ mask[i % 4] for i, b in enumerate(self._recv_exact(conn, length))
                )
                if opcode == 0x1:
                    with self._cond:
                        self.acks.append(json.loads(payload))
                        self._cond.notify_all()
                elif opcode == 0x9:  # ping -> pong
                    conn.sendall(bytes([0x8A, len(payload)]) + payload)
                elif opcode == 0x8:
                    return
        except OSError:
            return
