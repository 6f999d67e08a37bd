"""Strings other than the payload on the fast path, checked through stock wasmtime-py calls.

The record's strings cross into the adapter inside the metadata string and reach the guest as
UTF-8, copied as they are; the guest's error strings come back inside the answer string.
"""

from __future__ import annotations

from typing import Any

import pytest
import wasmtime
from wasmtime.component import Component, Variant

from fastpath_stock import Guest, instantiate, read_answer
from wactor.wasm._fastpath import FAST_HANDLE_CALLBACK, wrap_component


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return wasmtime.Engine()


# A guest that reports what it received.  Payload byte 0 selects the answer:
#   0..7  ok(some(<the UTF-8 bytes of string field #n>)), ok(none) when its option is none;
#         fields: sender namespace/name/instance, correlation-id, reply-to namespace/name/instance,
#         content-type
#   8     err(runtime-error(<payload bytes 1..> as the string)), also from handle-callback
#   9     err(timeout)
#   else  ok(some(payload))
# Its realloc traps on a true reallocation (old-ptr != 0), like componentize-py's panics.
INSPECT_WAT = """
(component
  (type $component-id (record
    (field "namespace" string) (field "name" string) (field "instance" string)))
  (type $timestamp (record (field "seconds" u64) (field "nanoseconds" u32)))
  (type $message-metadata (record
    (field "correlation-id" (option string))
    (field "reply-to" (option $component-id))
    (field "timestamp" $timestamp)
    (field "content-type" (option string))))
  (type $component-message (record
    (field "sender" $component-id)
    (field "payload" (list u8))
    (field "metadata" $message-metadata)))
  (type $wasm-error (variant
    (case "component-not-found" string)
    (case "instantiation-failed" string)
    (case "export-not-found" string)
    (case "timeout")
    (case "resource-limit-exceeded" string)
    (case "invalid-component" string)
    (case "runtime-error" string)))

  (core module $M
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 0x1000))
    (func (export "realloc") (param $old i32) (param i32) (param $align i32) (param $size i32)
      (result i32)
      (local $p i32)
      (if (local.get $old) (then unreachable))
      (local.set $p (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
      (global.set $bump (i32.add (local.get $p) (local.get $size)))
      (if (i32.gt_u (global.get $bump) (i32.shl (memory.size) (i32.const 16)))
        (then (drop (memory.grow (i32.sub
          (i32.shr_u (i32.add (global.get $bump) (i32.const 0xffff)) (i32.const 16))
          (memory.size))))))
      (local.get $p))
    ;; string field offsets, then the offset of their option discriminant (0: none)
    (data (i32.const 0x100) "\\00\\00\\00\\00\\08\\00\\00\\00\\10\\00\\00\\00\\24\\00\\00\\00"
                            "\\30\\00\\00\\00\\38\\00\\00\\00\\40\\00\\00\\00\\5c\\00\\00\\00")
    (data (i32.const 0x140) "\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\20\\00\\00\\00"
                            "\\2c\\00\\00\\00\\2c\\00\\00\\00\\2c\\00\\00\\00\\58\\00\\00\\00")
    (func $set (param $ret i32) (param $tag i32) (param $case i32) (param $p i32) (param $n i32)
      (i32.store8 (local.get $ret) (local.get $tag))
      (i32.store8 offset=4 (local.get $ret) (local.get $case))
      (i32.store offset=8 (local.get $ret) (local.get $p))
      (i32.store offset=12 (local.get $ret) (local.get $n)))
    (func (export "handle-message") (param $msg i32) (result i32)
      (local $p i32) (local $n i32) (local $mode i32) (local $disc i32) (local $at i32)
      (local.set $p (i32.load offset=24 (local.get $msg)))
      (local.set $n (i32.load offset=28 (local.get $msg)))
      (if (i32.eqz (local.get $n))
        (then (call $set (i32.const 0x10) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
              (return (i32.const 0x10))))
      (local.set $mode (i32.load8_u (local.get $p)))
      (if (i32.lt_u (local.get $mode) (i32.const 8))
        (then
          (local.set $disc (i32.load offset=0x140 (i32.shl (local.get $mode) (i32.const 2))))
          (if (i32.and (i32.ne (local.get $disc) (i32.const 0))
                       (i32.eqz (i32.load8_u (i32.add (local.get $msg) (local.get $disc)))))
            (then
              (call $set (i32.const 0x10) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
              (return (i32.const 0x10))))
          (local.set $at (i32.add (local.get $msg)
            (i32.load offset=0x100 (i32.shl (local.get $mode) (i32.const 2)))))
          (call $set (i32.const 0x10) (i32.const 0) (i32.const 1)
            (i32.load (local.get $at)) (i32.load offset=4 (local.get $at)))
          (return (i32.const 0x10))))
      (if (i32.eq (local.get $mode) (i32.const 8))
        (then (call $set (i32.const 0x10) (i32.const 1) (i32.const 6)
                (i32.add (local.get $p) (i32.const 1)) (i32.sub (local.get $n) (i32.const 1)))
              (return (i32.const 0x10))))
      (if (i32.eq (local.get $mode) (i32.const 9))
        (then (call $set (i32.const 0x10) (i32.const 1) (i32.const 3) (i32.const 0) (i32.const 0))
              (return (i32.const 0x10))))
      (call $set (i32.const 0x10) (i32.const 0) (i32.const 1) (local.get $p) (local.get $n))
      (i32.const 0x10))
    (func (export "handle-callback") (param $msg i32) (result i32)
      (local $p i32) (local $n i32)
      (local.set $p (i32.load offset=24 (local.get $msg)))
      (local.set $n (i32.load offset=28 (local.get $msg)))
      (call $set (i32.const 0x20) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
      (if (i32.and (i32.ne (local.get $n) (i32.const 0))
                   (i32.eq (i32.load8_u (local.get $p)) (i32.const 8)))
        (then (call $set (i32.const 0x20) (i32.const 1) (i32.const 6)
                (i32.add (local.get $p) (i32.const 1)) (i32.sub (local.get $n) (i32.const 1)))))
      (i32.const 0x20))
  )
  (core instance $m (instantiate $M))
  (func $handle-message (param "msg" $component-message)
    (result (result (option (list u8)) (error $wasm-error)))
    (canon lift (core func $m "handle-message") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc"))))
  (func $handle-callback (param "msg" $component-message) (result (result (error $wasm-error)))
    (canon lift (core func $m "handle-callback") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc"))))
  (instance $lifecycle
    (export "component-id" (type $component-id))
    (export "timestamp" (type $timestamp))
    (export "message-metadata" (type $message-metadata))
    (export "component-message" (type $component-message))
    (export "wasm-error" (type $wasm-error))
    (export "handle-message" (func $handle-message))
    (export "handle-callback" (func $handle-callback)))
  (export "airssys:core/component-lifecycle@1.0.0" (instance $lifecycle))
)
"""

TEXTS = [
    "",
    "plain ascii",
    "latin1 \u00e9\u00ff\u0080",
    "bmp \u20ac\u0100\uffff\u07ff\u0800",
    "astral \U0001f600\U00010000\U0010ffff",
    "mixed \u00e9\u20ac\U0001f600\x00",
]


def _fields(index: int, text: str) -> dict[str, Any]:
    """Message keyword arguments that put ``text`` into string field #index."""
    sender = ["a", "b", "0"]
    reply_to = ["x", "y", "z"]
    fields: dict[str, Any] = {}
    if index < 3:
        sender[index] = text
    elif index == 3:
        fields["correlation"] = text
    elif index < 7:
        reply_to[index - 4] = text
    else:
        fields["content_type"] = text
    return {"sender": tuple(sender), "reply_to": tuple(reply_to), **fields}


@pytest.fixture(scope="module")
def inspect_component(engine: wasmtime.Engine) -> Component:
    return Component(engine, wrap_component(bytes(wasmtime.wat2wasm(INSPECT_WAT))))


@pytest.fixture
def inspect(engine: wasmtime.Engine, inspect_component: Component) -> Guest:
    return instantiate(engine, inspect_component)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("index", range(8))
def test_strings_reach_the_guest_as_utf8(inspect: Guest, index: int, text: str) -> None:
    fields = _fields(index, text)
    assert inspect.fast(bytes([index]), **fields) == text.encode("utf-8")
    assert inspect.slow(bytes([index]), **fields) == text.encode("utf-8")


def test_absent_options_stay_absent(inspect: Guest) -> None:
    for index, field in [(3, "correlation"), (4, "reply_to"), (7, "content_type")]:
        assert inspect.fast(bytes([index]), **{field: None}) is None
    assert inspect.fast(b"") is None


@pytest.mark.parametrize("text", TEXTS)
def test_error_strings_reach_the_host_as_text(inspect: Guest, text: str) -> None:
    payload = b"\x08" + text.encode("utf-8")
    assert inspect.fast(payload) == Variant("runtime-error", text)
    assert inspect.slow(payload) == Variant("runtime-error", text)
    callback = inspect.fast_text(payload.decode("latin-1"), FAST_HANDLE_CALLBACK)
    assert read_answer(callback) == Variant("runtime-error", text)


def test_error_without_a_string(inspect: Guest) -> None:
    assert inspect.fast(b"\x09") == inspect.slow(b"\x09")


@pytest.mark.parametrize(
    "garbage", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80"]
)
def test_invalid_utf8_error_string_traps(
    engine: wasmtime.Engine, inspect_component: Component, garbage: bytes
) -> None:
    # wasmtime checks a UTF-8 string when it lifts it: the guest's error string on its way out.
    guest = instantiate(engine, inspect_component)
    with pytest.raises(wasmtime.WasmtimeError):
        guest.fast(b"\x08" + garbage)
    assert instantiate(engine, inspect_component).fast(b"\x08ok") == Variant("runtime-error", "ok")
