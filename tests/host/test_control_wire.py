"""The control socket's wire format: frames, bytes and errors as they cross."""

from __future__ import annotations

import pytest

from wactor.errors import (
    ComponentError,
    InvalidMessageError,
    RequestTimeoutError,
    TargetNotFoundError,
    TrapError,
)
from wactor.host._control_wire import (
    HEADER_SIZE,
    decode_bytes,
    decode_error,
    decode_message,
    encode_bytes,
    encode_error,
    encode_frame,
    frame_length,
)


def test_a_frame_is_its_length_then_its_json() -> None:
    frame = encode_frame({"op": "ping", "args": {"text": "wörld"}})
    length = frame_length(frame[:HEADER_SIZE], 1 << 20)
    assert length == len(frame) - HEADER_SIZE
    assert decode_message(frame[HEADER_SIZE:]) == {"op": "ping", "args": {"text": "wörld"}}


def test_a_frame_past_the_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(InvalidMessageError, match="larger than the limit of 1024 bytes"):
        frame_length(b"GET ", 1024)  # an HTTP request read as a length: 1.2 GB


@pytest.mark.parametrize("body", [b"\xff\xfe", b"not json", b"[1, 2]", b'"text"', b""])
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidMessageError, match="control frame"):
        decode_message(body)


def test_bytes_cross_as_base64_and_bad_base64_names_the_argument() -> None:
    assert decode_bytes(encode_bytes(b"\x00\xffab"), "payload") == b"\x00\xffab"
    with pytest.raises(InvalidMessageError, match="payload is not base64"):
        decode_bytes("***", "payload")
    with pytest.raises(InvalidMessageError, match="payload must be base64 text"):
        decode_bytes(42, "payload")


@pytest.mark.parametrize(
    "error",
    [
        TrapError("demo/x/0: handle-message trapped: unreachable", component="demo/x/0"),
        TargetNotFoundError("demo/x/0"),
        RequestTimeoutError("demo/x/0", 2.5, "c-1"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_crosses_as_the_same_type_message_exit_code_and_fields(error: Exception) -> None:
    assert isinstance(error, TrapError | TargetNotFoundError | RequestTimeoutError)
    again = decode_error(decode_message(encode_frame(encode_error(error))[HEADER_SIZE:]))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.exit_code == error.exit_code
    assert again.component == error.component
    if isinstance(error, RequestTimeoutError):
        assert isinstance(again, TimeoutError)
        assert again.timeout == 2.5  # type: ignore[attr-defined]
        assert again.correlation_id == "c-1"  # type: ignore[attr-defined]


def test_an_error_of_a_type_unknown_here_is_a_component_error_naming_it() -> None:
    again = decode_error({"type": "KeyError", "message": "'x'", "exit_code": 1})
    assert isinstance(again, ComponentError)
    assert str(again) == "the host failed: KeyError: 'x'"
    forged = decode_error({"type": "TrapError", "message": "m", "exit_code": 0})
    assert isinstance(forged, ComponentError)  # a known name with another exit code is not it
    assert isinstance(decode_error("nonsense"), InvalidMessageError)
