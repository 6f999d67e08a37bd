"""The NATS wire codec alone: pure encode/decode functions, no server.

What goes over the wire is described in ``wactor.messaging._nats_wire``; these tests pin each
encoder to its decoder, and each decoder's answer to a hostile peer's garbage.
"""

from __future__ import annotations

import json

import pytest

from wactor._ids import ComponentId
from wactor.errors import (
    ActorStoppedError,
    DeliveryFailedError,
    InvalidMessageError,
    QueueFullError,
    QuotaExceededError,
    RequestTimeoutError,
    TargetNotFoundError,
)
from wactor.messaging import Envelope
from wactor.messaging._nats_wire import (
    ANONYMOUS_SENDER,
    H_CORRELATION,
    H_ERROR,
    H_ERROR_FIELDS,
    H_KIND,
    H_SENDER,
    H_TIMESTAMP,
    MALFORMED_HEADER,
    acknowledged_by,
    acknowledgement,
    component_subject,
    decode_envelope,
    decode_error,
    decode_message,
    decode_publication,
    decode_reply,
    encode_error,
    encode_headers,
    encode_publication,
    encode_reply,
    is_ping,
    ping_headers,
    request_headers,
    topic_of,
    topic_subject,
    wants_acknowledgement,
)

A = ComponentId("a", "b", "0")
C = ComponentId("c", "d", "1")


def through_the_wire(env: Envelope) -> Envelope:
    headers = encode_headers(env)
    assert all(value.isascii() and value.isprintable() for value in headers.values())
    return decode_envelope(env.target, headers[H_KIND], env.payload, headers)


def test_an_envelope_round_trips_through_headers() -> None:
    env = Envelope(
        A,
        C,
        bytes(range(256)),
        kind="request",
        correlation_id="c1",
        reply_to=A,
        content_type="application/cbor",
    )
    assert through_the_wire(env) == env


@pytest.mark.parametrize(
    "text", ["100%", "line\nbreak", " edge spaces ", "naïve ✓", "%41", "a\r\nWactor-Kind: x"]
)
def test_text_fields_round_trip_whatever_they_hold(text: str) -> None:
    env = Envelope(A, C, b"", kind="send", correlation_id=text, content_type=text)
    assert through_the_wire(env) == env


def test_a_request_asks_for_an_acknowledgement_and_a_send_does_not() -> None:
    env = Envelope(A, C, b"x", kind="request", correlation_id="c1")
    assert request_headers(env) == {**encode_headers(env), "Wactor-Ack": "1"}
    assert wants_acknowledgement(request_headers(env))
    assert not wants_acknowledgement(encode_headers(env))


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({H_KIND: "shout"}, "unknown Wactor-Kind"),
        ({H_KIND: "send", H_SENDER: "not an id"}, "bad Wactor-Sender"),
        ({H_KIND: "send", H_TIMESTAMP: "yesterday"}, "bad Wactor-Timestamp"),
        ({H_KIND: "send", H_TIMESTAMP: str(2**64)}, "bad Wactor-Timestamp"),
        ({H_KIND: "send", H_CORRELATION: "x" * 1025}, "longer than 1024"),
        ({MALFORMED_HEADER: "1"}, "malformed NATS header block"),
    ],
)
def test_garbage_headers_are_refused_naming_the_header(headers: dict[str, str], why: str) -> None:
    with pytest.raises(InvalidMessageError, match=why):
        decode_message(C, b"", headers, has_reply=True)


def test_a_plain_clients_message_is_a_request_with_a_reply_subject_and_a_send_without() -> None:
    request = decode_message(C, b"hi", {}, has_reply=True)
    assert (request.sender, request.target, request.kind) == (ANONYMOUS_SENDER, C, "request")
    assert request.reply_to == ANONYMOUS_SENDER
    assert request.correlation_id
    send = decode_message(C, b"hi", {}, has_reply=False)
    assert (send.kind, send.payload, send.correlation_id) == ("send", b"hi", None)


def test_a_publication_keeps_its_sender_and_target() -> None:
    env = Envelope(A, C, b"news", kind="publish", content_type="text/plain")
    assert decode_publication(env.payload, encode_publication(env)) == env
    plain = decode_publication(b"raw", {})
    assert (plain.sender, plain.target, plain.kind) == (
        ANONYMOUS_SENDER,
        ANONYMOUS_SENDER,
        "publish",
    )
    with pytest.raises(InvalidMessageError):
        decode_publication(b"", {MALFORMED_HEADER: "1"})


def test_subjects_are_the_documented_ones() -> None:
    assert component_subject(ComponentId.parse("shop/cart.v2/0"), "prod") == (
        "wactor.prod.shop.cart~v2.0"
    )
    assert topic_subject("orders.#", "prod") == "wactor.prod._topic.orders.>"
    assert topic_subject("orders.*.eu", "prod") == "wactor.prod._topic.orders.*.eu"
    assert topic_of(topic_subject("orders.eu", "prod"), "prod") == "orders.eu"


def test_replies_pings_and_acknowledgements() -> None:
    assert decode_reply({}, b"payload", C) == b"payload"
    body, headers = encode_reply(None)
    assert headers is not None
    assert decode_reply(headers, body, C) is None
    assert encode_reply(b"r") == (b"r", None)
    assert is_ping(ping_headers())
    assert not is_ping({H_KIND: "send"})
    assert acknowledged_by(acknowledgement("host-1")) == "host-1"
    assert acknowledged_by({}) is None
    forged = {"Wactor-Ack": "received", "Wactor-Host": "x\x1b[2Jy"}
    assert acknowledged_by(forged) == "x [2Jy"  # the escape character shown as a space


def test_server_statuses_become_errors_of_the_target() -> None:
    with pytest.raises(TargetNotFoundError, match="c/d/1"):
        decode_reply({"Status": "503"}, b"", C)
    with pytest.raises(DeliveryFailedError, match="NATS status 408"):
        decode_reply({"Status": "408"}, b"", C)
    with pytest.raises(DeliveryFailedError, match="malformed reply"):
        decode_reply({MALFORMED_HEADER: "1"}, b"", C)


@pytest.mark.parametrize(
    "error",
    [
        QueueFullError("c/d/1", 10),
        RequestTimeoutError("c/d/1", 2.5, "corr-1"),
        QuotaExceededError("c/d/1", 100, 150),
        ActorStoppedError("c/d/1", "host closed its NATS broker"),
        DeliveryFailedError("c/d/1: lost", component="c/d/1"),
    ],
)
def test_an_error_comes_back_as_the_same_class_with_the_same_fields(error: Exception) -> None:
    body, headers = encode_error(error, C)
    with pytest.raises(type(error)) as raised:
        decode_reply(headers, body, C)
    assert type(raised.value) is type(error)
    assert vars(raised.value) == vars(error)
    assert str(raised.value) == str(error)


def test_target_and_component_are_the_asked_target_whatever_the_peer_says() -> None:
    body, headers = encode_error(QueueFullError("evil/x/0", 3), ComponentId.parse("evil/x/0"))
    decoded = decode_error(headers, body, C)
    assert isinstance(decoded, QueueFullError)
    assert (decoded.target, decoded.component, decoded.capacity) == ("c/d/1", "c/d/1", 3)


def test_an_error_that_is_no_wactor_error_travels_as_delivery_failed() -> None:
    body, headers = encode_error(KeyError("k"), C)
    decoded = decode_error(headers, body, C)
    assert type(decoded) is DeliveryFailedError
    assert decoded.message == "c/d/1: KeyError: 'k'"


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("NoSuchError", {"message": "m"}),
        ("HostConfigError", {"message": "m"}),  # never the answer to a message: not believed
        ("QueueFullError", {"capacity": "ten"}),  # a field of the wrong type
        ("QueueFullError", {"capacity": True}),
        ("QueueFullError", {}),  # a required field missing
        ("WactorError", {"message": "m"}),  # no family a target's host answers with
    ],
)
def test_an_unbelievable_error_becomes_delivery_failed(
    name: str, fields: dict[str, object]
) -> None:
    headers = {H_ERROR: name, H_ERROR_FIELDS: json.dumps(fields)}
    decoded = decode_error(headers, b"the peer's text", C)
    assert type(decoded) is DeliveryFailedError
    assert decoded.component == "c/d/1"
    assert decoded.message.startswith(f"c/d/1: remote error {name}: ")


def test_a_peers_control_characters_never_reach_a_terminal() -> None:
    fields = {"message": "boom\x1b[31m red", "target": "x"}
    headers = {H_ERROR: "DeliveryFailedError", H_ERROR_FIELDS: json.dumps(fields)}
    decoded = decode_error(headers, b"", C)
    assert decoded.message == "boom\ufffd[31m red"
    headers = {H_ERROR: "NoSuchError", H_ERROR_FIELDS: "{not json"}
    assert decode_error(headers, b"line\nbreak\x07", C).message == (
        "c/d/1: remote error NoSuchError: line break"
    )
