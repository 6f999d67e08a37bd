"""The ``err`` a host function answers a guest with, chosen by the error's own ``wit_case``."""

from __future__ import annotations

from wasmtime.component import Variant

from wactor.errors import (
    ComponentError,
    InvalidMessageError,
    MessagingError,
    QuotaExceededError,
    RequestTimeoutError,
    StorageError,
    TargetNotFoundError,
)
from wactor.wasm._records import error_variant


def _case(answer: Variant) -> tuple[str, object]:
    assert answer.tag == "err"
    inner = answer.payload
    assert isinstance(inner, Variant)
    return inner.tag, inner.payload


def test_an_error_of_the_family_answers_with_its_own_case_on_one_line() -> None:
    error = InvalidMessageError("t/a/0: payload\nspans lines")
    answer = error_variant(error, MessagingError, "delivery-failed")
    assert _case(answer) == ("invalid-message", "t/a/0: payload spans lines")


def test_a_case_that_names_an_id_carries_it() -> None:
    tag, detail = _case(error_variant(TargetNotFoundError("t/ghost/0"), MessagingError, "x"))
    assert tag == "target-not-found"
    assert vars(detail) == {"namespace": "t", "name": "ghost", "instance": "0"}
    timeout = RequestTimeoutError("t/a/0", 0.5, "c42")
    assert _case(error_variant(timeout, MessagingError, "x")) == ("correlation-timeout", "c42")
    quota = QuotaExceededError("t/a/0", 10, 20)
    assert _case(error_variant(quota, StorageError, "io-error")) == ("quota-exceeded", None)


def test_an_error_of_another_family_is_the_fallback_case_with_its_message() -> None:
    answer = error_variant(TargetNotFoundError("t/ghost/0"), ComponentError, "invalid-state")
    assert _case(answer) == ("invalid-state", "target not found: t/ghost/0")


def test_a_host_bug_tells_the_guest_only_its_type() -> None:
    answer = error_variant(KeyError("secret internals"), StorageError, "io-error")
    assert _case(answer) == ("io-error", "internal error: KeyError")
