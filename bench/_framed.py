"""The baseline of figure 13's ping: a bare asyncio server on a Unix socket, in a process of its
own, speaking the control socket's framing (a 4-byte big-endian length, then one JSON object)
and nothing else: it greets each connection, then answers every request frame with
``{"ok": true, "result": {"pong": true}}``. No checks, no host behind it.

    python bench/_framed.py SOCKET_PATH     # prints "ready" once it listens

:class:`FramedClient` is its client: a blocking socket, ``sendall`` and exact ``recv``s, as the
CLI's client does it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
from typing import Any

_HEADER = struct.Struct(">I")


def frame(message: Any) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return _HEADER.pack(len(body)) + body


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(frame({"hello": "bare", "state": "ready"}))
    answer = frame({"ok": True, "result": {"pong": True}})
    try:
        while True:
            (length,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
            json.loads(await reader.readexactly(length))
            writer.write(answer)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _main(path: str) -> None:
    server = await asyncio.start_unix_server(_serve, path)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


class FramedClient:
    """A blocking client of the bare server."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.receive()  # the greeting

    def request(self, message: Any) -> Any:
        self.sock.sendall(frame(message))
        return self.receive()

    def receive(self) -> Any:
        (length,) = _HEADER.unpack(self._exactly(_HEADER.size))
        return json.loads(self._exactly(length))

    def _exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(size)
            if not chunk:
                raise ConnectionError("the bare server went away")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
