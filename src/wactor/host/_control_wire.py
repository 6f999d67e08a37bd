"""The control socket's wire format: length-prefixed JSON frames, pure (no I/O).

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON holding one object.
On connecting, the host sends a hello (``{"wactor": "control", "version": 1, "pid": …,
"state": "starting" | "ready"}``), and a second frame ``{"state": "ready"}`` once a starting
host has started its components. Then the client sends requests and the host answers each in
turn::

    request   {"op": "call", "args": {"target": "demo/counter/0", "payload": "<base64>", …}}
    answer    {"ok": true, "result": …}
              {"ok": false, "error": {"type": "TrapError", "message": "…", "exit_code": 4,
                                      "fields": {"component": "…", …}}}

An error crosses as its type, message, exit code and plain fields, so the client raises the
same error (type, one line, exit code) as a host in its own process would.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Mapping
from typing import Any, Final

from wactor import errors
from wactor.errors import ComponentError, InvalidMessageError, WactorError

__all__ = [
    "HEADER_SIZE",
    "PROTOCOL",
    "decode_bytes",
    "decode_error",
    "decode_message",
    "encode_bytes",
    "encode_error",
    "encode_frame",
    "frame_length",
]

PROTOCOL: Final = 1
HEADER_SIZE: Final = 4
_HEADER = struct.Struct(">I")
_PLAIN = (str, int, float, bool, type(None))


def encode_frame(message: Mapping[str, Any]) -> bytes:
    """One frame holding ``message``."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return _HEADER.pack(len(body)) + body


def frame_length(header: bytes, limit: int) -> int:
    """The body length a frame header announces; ``InvalidMessageError`` past ``limit``."""
    (length,) = _HEADER.unpack(header)
    if length > limit:
        raise InvalidMessageError(
            f"control frame of {length} bytes is larger than the limit of {limit} bytes"
        )
    return int(length)


def decode_message(body: bytes) -> dict[str, Any]:
    """The JSON object of a frame body; ``InvalidMessageError`` for anything else."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidMessageError(f"control frame is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise InvalidMessageError("control frame is not a JSON object")
    return message


def encode_bytes(data: bytes) -> str:
    """Bytes as the text a frame carries (base64)."""
    return base64.b64encode(data).decode("ascii")


def decode_bytes(text: object, what: str) -> bytes:
    """The bytes that ``encode_bytes`` made; ``InvalidMessageError`` naming ``what`` if not."""
    if not isinstance(text, str):
        raise InvalidMessageError(f"control request: {what} must be base64 text")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise InvalidMessageError(f"control request: {what} is not base64: {exc}") from None


def encode_error(exc: WactorError) -> dict[str, Any]:
    """An error as it crosses: type, message, exit code and its plain fields."""
    fields = {
        key: value
        for key, value in vars(exc).items()
        if not key.startswith("_") and key != "message" and isinstance(value, _PLAIN)
    }
    return {
        "type": type(exc).__name__,
        "message": exc.message,
        "exit_code": exc.exit_code,
        "fields": fields,
    }


def decode_error(data: object) -> WactorError:
    """The error that ``encode_error`` sent: the same wactor error type when there is one.

    A type this side does not know (a newer host, an unexpected failure in the host) becomes a
    ``ComponentError`` with the type named in its message.
    """
    if not isinstance(data, dict):
        return InvalidMessageError("the host answered with a malformed error")
    name, message = data.get("type"), data.get("message")
    code = data.get("exit_code")
    if not isinstance(name, str) or not isinstance(message, str):
        return InvalidMessageError("the host answered with a malformed error")
    cls = getattr(errors, name, None) if name in errors.__all__ else None
    if not (isinstance(cls, type) and issubclass(cls, WactorError) and cls.exit_code == code):
        return ComponentError(f"the host failed: {name}: {message}")
    exc: WactorError = cls.__new__(cls)
    WactorError.__init__(exc, message)
    fields = data.get("fields")
    for key, value in (fields if isinstance(fields, dict) else {}).items():
        plain = isinstance(key, str) and key.isidentifier() and isinstance(value, _PLAIN)
        if plain and not key.startswith("_") and key != "message":
            setattr(exc, key, value)
    return exc
