"""The NATS wire format of a lattice: subjects, ``Wactor-*`` headers, envelopes and errors.

Wire format (stable: any NATS client can talk to a component):

* A component ``namespace/name/instance`` listens on the subject
  ``wactor.<lattice>.<namespace>.<name>.<instance>``, in the queue group of the same name, so
  several hosts running the same id share its load (each message goes to one of them). A ``.``
  inside a segment travels as ``~`` (segments never contain ``~``), so an id is always exactly
  three tokens: ``shop/cart.v2/0`` is ``wactor.default.shop.cart~v2.0``.
* The message body is the payload. Envelope fields travel in headers: ``Wactor-Kind``,
  ``Wactor-Sender``, ``Wactor-Correlation-Id``, ``Wactor-Reply-To``, ``Wactor-Content-Type``,
  ``Wactor-Timestamp`` (nanoseconds since the epoch). Text values are percent-encoded where
  they hold ``%``, line breaks, non-ASCII or edge spaces.
* A message without ``Wactor-Kind`` comes from a plain NATS client (sender ``nats/client/0``):
  a request if it has a reply subject, a send otherwise. So ``nc.request(subject, payload)``
  gets the component's reply payload as the body of the reply.
* A reply's body is the reply payload; ``Wactor-Reply: none`` marks a component that replied
  nothing (the body is then empty).
* An error comes back as ``Wactor-Error: <class name in wactor.errors>`` with the one-line
  message as the body and ``Wactor-Error-Fields`` (JSON: message, component, target,
  capacity, case, detail …), from which the requesting host raises the same error class with
  the same fields; an unknown class, a class no target answers with, or fields of the wrong
  type become ``DeliveryFailedError``.
* A host's sends carry a reply subject: the receiving host answers (empty body, or an error) once
  the message is in the mailbox, so a full mailbox or a missing target reaches the sender as
  it would locally. ``Wactor-Kind: ping`` asks whether anyone serves the subject (``locate``).
* Topics: ``publish(subject)`` goes to ``wactor.<lattice>._topic.<subject>``; a subscription
  pattern maps ``*`` to ``*`` and a final ``#``/``>`` to ``>``. (``_topic`` cannot be a
  component namespace, which must start with a letter or digit, so topics never collide with
  component subjects.) ``Wactor-Target`` carries the envelope's target there.
* A wactor host's request carries ``Wactor-Ack: 1``: the host that takes it (the one of the
  queue group NATS chose), unless it replies within 20 ms, first sends an empty message holding
  ``Wactor-Ack: received`` and ``Wactor-Host: <host id>``, then the reply. The requester so
  knows which host holds each request in flight, and fails it when that host leaves the
  lattice registry. Plain clients send no ``Wactor-Ack`` and get the reply alone.
* A reply subject is the requesting host's inbox plus a random token per request (never
  sequential): a reply to any other token is dropped. ``Wactor-Kind: callback`` over NATS is
  accepted only as the answer of a request the receiving host opened, from its target.

Pure encode/decode functions; :mod:`wactor.messaging._nats` moves the bytes. Everything that
comes off the wire is a hostile peer's input until checked here: a decoder returns a valid
value or raises ``InvalidMessageError``, and an error reply always becomes a well-formed
``WactorError`` whose fields have the types its class declares (anything else becomes
``DeliveryFailedError``), with fields and message of bounded length.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
import time
import typing
import uuid
from typing import Any, get_args
from urllib.parse import quote, unquote

from wactor import errors as _errors
from wactor._ids import ComponentId
from wactor._nats_names import MALFORMED_HEADER
from wactor.errors import (
    CapabilityDeniedError,
    ComponentError,
    DeliveryFailedError,
    InvalidMessageError,
    MessagingError,
    StorageError,
    TargetNotFoundError,
    WactorError,
    WasmError,
)
from wactor.messaging._envelope import Envelope, MessageKind

__all__ = [
    "ANONYMOUS_SENDER",
    "MALFORMED_HEADER",
    "RECEIVED",
    "acknowledged_by",
    "acknowledgement",
    "component_subject",
    "decode_envelope",
    "decode_error",
    "decode_message",
    "decode_publication",
    "decode_reply",
    "encode_error",
    "encode_headers",
    "encode_publication",
    "encode_reply",
    "is_no_responders",
    "is_ping",
    "one_line",
    "parse_id",
    "ping_headers",
    "quote_header",
    "request_headers",
    "topic_of",
    "topic_subject",
    "wants_acknowledgement",
]

ANONYMOUS_SENDER = ComponentId("nats", "client", "0")
"""The sender of messages from plain NATS clients (no ``Wactor-*`` headers)."""

H_KIND = "Wactor-Kind"
H_SENDER = "Wactor-Sender"
H_TARGET = "Wactor-Target"
H_CORRELATION = "Wactor-Correlation-Id"
H_REPLY_TO = "Wactor-Reply-To"
H_CONTENT_TYPE = "Wactor-Content-Type"
H_TIMESTAMP = "Wactor-Timestamp"
H_REPLY = "Wactor-Reply"
H_ERROR = "Wactor-Error"
H_ERROR_FIELDS = "Wactor-Error-Fields"
H_ACK = "Wactor-Ack"
H_HOST = "Wactor-Host"
H_STATUS = "Status"  # set by the NATS server itself ("503": no responders)

PING = "ping"
"""``Wactor-Kind`` of a message that only asks whether anyone serves its subject."""
RECEIVED = "received"
"""``Wactor-Ack`` of the acknowledgement a request's receiving host sends first."""
_NO_RESPONDERS = "503"

MAX_TEXT = 4096
"""Characters kept of a peer's error message or of one of its error fields."""
MAX_HEADER_TEXT = 1024
"""Characters a correlation id or a content type may have."""
MAX_FIELDS = 16 * 1024
"""Bytes of ``Wactor-Error-Fields`` parsed at all (more: the fields are ignored)."""

_KINDS: frozenset[str] = frozenset(get_args(MessageKind))
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Printable ASCII except '%': what a header value may hold as is (edges are handled apart).
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "%")
_PLAIN = re.compile(r"^[!-$&-~]([ -$&-~]*[!-$&-~])?\Z")  # needs no quoting: the common case
# The families a target's host can answer a message with; the others (config, trust, build)
# never come from handling a message, so a peer claiming them is not believed.
_REMOTE_FAMILIES = (WasmError, ComponentError, MessagingError, StorageError, CapabilityDeniedError)


def component_subject(cid: ComponentId, lattice: str = "default") -> str:
    """Return the NATS subject on which component ``cid`` of ``lattice`` listens."""
    return f"wactor.{lattice}.{_token(cid.namespace)}.{_token(cid.name)}.{_token(cid.instance)}"


def topic_subject(subject: str, lattice: str = "default") -> str:
    """Return the NATS subject of topic ``subject`` (or pattern) in ``lattice``."""
    tokens = subject.split(".")
    if tokens[-1] == "#":
        tokens[-1] = ">"
    return f"wactor.{lattice}._topic.{'.'.join(tokens)}"


def topic_of(subject: str, lattice: str = "default") -> str:
    """Return the topic of NATS subject ``subject`` in ``lattice`` (see :func:`topic_subject`)."""
    return subject.removeprefix(f"wactor.{lattice}._topic.")


def _token(segment: str) -> str:
    return segment.replace(".", "~")


def quote_header(value: str) -> str:
    """Percent-encode a header value where it holds ``%``, line breaks, non-ASCII, edge spaces."""
    if _PLAIN.match(value):
        return value
    text = quote(value, safe=_SAFE)
    if text[:1] == " ":
        text = "%20" + text[1:]
    if text[-1:] == " ":
        text = text[:-1] + "%20"
    return text


def _unquote(value: str | None) -> str | None:
    if value is None or "%" not in value:
        return value
    return unquote(value)


def one_line(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` on one line of printable characters, cut to ``limit`` characters."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if not text.isprintable():
        text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())


def parse_id(text: str | None, header: str) -> ComponentId | None:
    """The component id of header ``header`` (``None`` if absent); ``InvalidMessageError``."""
    if text is None:
        return None
    try:
        return _cached_id(text)
    except ValueError as exc:
        raise InvalidMessageError(f"bad {header} header: {one_line(str(exc), 200)}") from exc


@functools.lru_cache(maxsize=4096)
def _cached_id(text: str) -> ComponentId:
    # The same few senders come back again and again; ids are frozen, so sharing is safe.
    return ComponentId.parse(text)


def encode_headers(env: Envelope) -> dict[str, str]:
    """The ``Wactor-*`` headers that carry the fields of ``env``."""
    headers = {
        H_KIND: env.kind,
        H_SENDER: str(env.sender),
        H_TIMESTAMP: str(env.timestamp_ns),
    }
    if env.correlation_id is not None:
        headers[H_CORRELATION] = quote_header(env.correlation_id)
    if env.reply_to is not None:
        headers[H_REPLY_TO] = str(env.reply_to)
    if env.content_type is not None:
        headers[H_CONTENT_TYPE] = quote_header(env.content_type)
    return headers


def request_headers(env: Envelope) -> dict[str, str]:
    """The headers of a wactor host's request: its fields, and the ask for an acknowledgement."""
    headers = encode_headers(env)
    headers[H_ACK] = "1"  # the host that takes it says so: the requester can fail it fast
    return headers


def wants_acknowledgement(headers: dict[str, str]) -> bool:
    """Tell whether the sender of a request asks to be told which host took it."""
    return H_ACK in headers


def ping_headers() -> dict[str, str]:
    """The headers of a ping (does anyone serve this subject?)."""
    return {H_KIND: PING}


def is_ping(headers: dict[str, str]) -> bool:
    """Tell whether a message with ``headers`` is a ping."""
    return headers.get(H_KIND) == PING


def acknowledgement(host_id: str) -> dict[str, str]:
    """The headers of the acknowledgement that host ``host_id`` took a request."""
    return {H_ACK: RECEIVED, H_HOST: host_id}


def acknowledged_by(headers: dict[str, str]) -> str | None:
    """The host an acknowledgement names (``None``: the message is no acknowledgement)."""
    if headers.get(H_ACK) != RECEIVED:
        return None
    return one_line(headers.get(H_HOST) or "?", 200)


def encode_publication(env: Envelope) -> dict[str, str]:
    """The headers of a publication of ``env`` (its target travels too)."""
    headers = encode_headers(env)
    headers[H_TARGET] = str(env.target)
    return headers


def decode_message(
    target: ComponentId, payload: bytes, headers: dict[str, str], *, has_reply: bool
) -> Envelope:
    """The envelope of a message for component ``target``; ``InvalidMessageError`` on garbage.

    A message without ``Wactor-Kind`` comes from a plain NATS client: a request (with a fresh
    correlation id) when it has a reply subject, a send otherwise.
    """
    if MALFORMED_HEADER in headers:
        raise InvalidMessageError(f"{target}: malformed NATS header block")
    kind = headers.get(H_KIND)
    if kind is not None:
        return decode_envelope(target, kind, payload, headers)
    if has_reply:
        return Envelope(
            ANONYMOUS_SENDER,
            target,
            payload,
            kind="request",
            correlation_id=uuid.uuid4().hex,
            reply_to=ANONYMOUS_SENDER,
        )
    return Envelope(ANONYMOUS_SENDER, target, payload, kind="send")


def decode_publication(payload: bytes, headers: dict[str, str]) -> Envelope:
    """The envelope of a publication; ``InvalidMessageError`` on garbage."""
    if H_KIND not in headers and MALFORMED_HEADER not in headers:  # a plain NATS client
        return Envelope(ANONYMOUS_SENDER, ANONYMOUS_SENDER, payload, kind="publish")
    sender = parse_id(headers.get(H_SENDER), H_SENDER) or ANONYMOUS_SENDER
    target = parse_id(headers.get(H_TARGET), H_TARGET) or sender
    return decode_envelope(target, "publish", payload, headers, sender=sender)


def encode_reply(result: bytes | None) -> tuple[bytes, dict[str, str] | None]:
    """The body and headers of a reply carrying ``result`` (``None``: nothing replied)."""
    if result is None:
        return b"", {H_REPLY: "none"}
    return result, None


def is_no_responders(headers: dict[str, str]) -> bool:
    """Tell whether a reply is the server's "no responders" status (nobody serves the subject)."""
    return headers.get(H_STATUS) == _NO_RESPONDERS


def decode_reply(headers: dict[str, str], payload: bytes, target: ComponentId) -> bytes | None:
    """The reply payload of a reply from ``target``'s host (``None``: it replied nothing), or
    raise the error it carries (``WactorError``)."""
    if not headers:
        return payload
    if MALFORMED_HEADER in headers:
        raise DeliveryFailedError(
            f"{target}: malformed reply (bad NATS header block)", component=str(target)
        )
    if is_no_responders(headers):
        raise TargetNotFoundError(str(target))
    if H_ERROR in headers:
        raise decode_error(headers, payload, target)
    if H_STATUS in headers:
        raise DeliveryFailedError(
            f"{target}: NATS status {one_line(headers[H_STATUS], 40)}", component=str(target)
        )
    if headers.get(H_REPLY) == "none":
        return None
    return payload


def decode_envelope(
    target: ComponentId,
    kind: str,
    payload: bytes,
    headers: dict[str, str],
    *,
    sender: ComponentId | None = None,
) -> Envelope:
    """Build an envelope from ``Wactor-*`` headers; raise ``InvalidMessageError`` on garbage."""
    if MALFORMED_HEADER in headers:
        raise InvalidMessageError("malformed NATS header block")
    if kind not in _KINDS:
        raise InvalidMessageError(f"unknown {H_KIND} {one_line(kind, 40)!r}")
    if sender is None:
        sender = parse_id(headers.get(H_SENDER), H_SENDER) or ANONYMOUS_SENDER
    stamp = headers.get(H_TIMESTAMP)
    try:
        timestamp = int(stamp) if stamp is not None else time.time_ns()
    except ValueError:
        timestamp = -1
    if not 0 <= timestamp < 2**64:  # a WIT timestamp: u64 seconds and nanoseconds
        raise InvalidMessageError(f"bad {H_TIMESTAMP} {one_line(stamp or '', 40)!r}")
    return Envelope(
        sender,
        target,
        payload,
        kind=kind,  # type: ignore[arg-type]  # checked against MessageKind above
        correlation_id=_text(headers, H_CORRELATION),
        reply_to=parse_id(headers.get(H_REPLY_TO), H_REPLY_TO),
        content_type=_text(headers, H_CONTENT_TYPE),
        timestamp_ns=timestamp,
    )


def _text(headers: dict[str, str], name: str) -> str | None:
    value = _unquote(headers.get(name))
    if value is not None and len(value) > MAX_HEADER_TEXT:
        raise InvalidMessageError(f"{name} longer than {MAX_HEADER_TEXT} characters")
    return value


# --- errors ------------------------------------------------------------------------------------


def encode_error(exc: BaseException, target: ComponentId) -> tuple[bytes, dict[str, str]]:
    """Encode ``exc`` as the body and headers of an error reply."""
    if not isinstance(exc, WactorError):
        exc = DeliveryFailedError(f"{target}: {type(exc).__name__}: {exc}", component=str(target))
    fields = {
        k: v for k, v in vars(exc).items() if v is None or isinstance(v, str | int | float | bool)
    }
    headers = {
        H_ERROR: type(exc).__name__,
        H_ERROR_FIELDS: json.dumps(fields, ensure_ascii=True, separators=(",", ":")),
    }
    return " ".join(exc.message.splitlines()).encode(), headers


def decode_error(headers: dict[str, str], body: bytes, target: ComponentId) -> WactorError:
    """Rebuild the error of an error reply from ``target``'s host: same class, same fields.

    The class is built through its own constructor from the fields its signature names, each
    checked against the type it declares (a ``message`` parameter gets the peer's one-line
    message); ``target`` and ``component`` are the target this host asked, whatever the peer
    says. A class that cannot come from handling a message, a
    field of the wrong type or a missing one gives ``DeliveryFailedError`` instead.
    """
    name = headers.get(H_ERROR, "")
    fields = _fields(headers.get(H_ERROR_FIELDS))
    said = fields.get("message")
    message = said if isinstance(said, str) else one_line(body.decode("utf-8", "replace"))
    cls = _remote_class(name)
    exc: WactorError | None = None
    if cls is not None:
        try:
            exc = cls(**_arguments(cls, fields, message, str(target)))
        except Exception:  # noqa: BLE001 - whatever a peer's fields break, it is no such error
            exc = None
    if exc is None:
        shown = one_line(name, 60) or "(unnamed)"
        return DeliveryFailedError(
            f"{target}: remote error {shown}: {message}", component=str(target)
        )
    return exc


def _fields(text: str | None) -> dict[str, Any]:
    """The scalar fields of ``Wactor-Error-Fields``; garbage or too much gives none."""
    if not text or len(text) > MAX_FIELDS:
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, str):
            out[key] = _clean(value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…")
        elif value is None or _plain_number(value):
            out[key] = value
    return out


def _clean(text: str) -> str:
    """``text`` with control characters (terminal escapes …) but line breaks and tabs shown
    as U+FFFD: a peer's text ends up on an operator's terminal."""
    if text.isprintable():
        return text
    return _CONTROL.sub("\ufffd", text)


def _plain_number(value: object) -> bool:
    if isinstance(value, int):
        return -(2**63) <= value < 2**64
    return isinstance(value, float) and math.isfinite(value)


def _remote_class(name: str) -> type[WactorError] | None:
    if name not in _errors.__all__:
        return None
    cls = getattr(_errors, name, None)
    if isinstance(cls, type) and issubclass(cls, _REMOTE_FAMILIES):
        return cls
    return None


def _arguments(
    cls: type[WactorError], fields: dict[str, Any], message: str, target: str
) -> dict[str, Any]:
    """Keyword arguments for ``cls(...)`` from ``fields``; ``TypeError`` if they do not fit."""
    kwargs: dict[str, Any] = {}
    for param, (hint, required) in _signature(cls).items():
        if param in ("target", "component"):
            value: Any = target
        elif param in fields:
            value = fields[param]
        elif param == "message":
            value = message
        elif required:
            raise TypeError(f"missing field {param}")
        else:
            continue
        if not _fits(value, hint):
            raise TypeError(f"field {param} has the wrong type")
        kwargs[param] = value
    return kwargs


_SIGNATURES: dict[str, dict[str, tuple[Any, bool]]] = {}


def _signature(cls: type[WactorError]) -> dict[str, tuple[Any, bool]]:
    """Each parameter of ``cls.__init__``: its declared type, and whether it is required."""
    known = _SIGNATURES.get(cls.__name__)
    if known is not None:
        return known
    hints = typing.get_type_hints(cls.__init__)
    out = {}
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        out[param.name] = (hints.get(param.name, str), param.default is param.empty)
    _SIGNATURES[cls.__name__] = out
    return out


def _fits(value: Any, hint: Any) -> bool:
    allowed = get_args(hint) or (hint,)
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and float in allowed:
        return True
    return any(isinstance(value, t) for t in allowed if isinstance(t, type))
