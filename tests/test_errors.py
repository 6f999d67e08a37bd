"""The error tree: families mirror the WIT error variants, timeouts are ``TimeoutError``\\s."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import pytest

from wactor import errors
from wactor.actors import Actor, ActorCell
from wactor.errors import (
    ComponentError,
    ComponentFault,
    ExecutionTimeoutError,
    GuestError,
    MessagingError,
    RequestTimeoutError,
    SecurityError,
    StorageError,
    UnhealthyError,
    WactorError,
    WasmError,
)


def _wit_variants() -> dict[str, set[str]]:
    """Each ``variant`` of the packaged WIT (the core world and the extensions) and its cases."""
    package = resources.files("wactor")
    text = (package / "wit" / "airssys-core.wit").read_text()
    text += (package / "wit-ext" / "wactor-http.wit").read_text()
    text = re.sub(r"//.*", "", text)  # doc comments hold commas and parentheses
    out = {}
    for name, body in re.findall(r"variant\s+([\w-]+)\s*\{(.*?)\}", text, re.DOTALL):
        out[name] = {re.sub(r"\(.*", "", case).strip() for case in body.split(",")} - {""}
    return out


ERROR_CLASSES = [
    cls
    for cls in (getattr(errors, name) for name in errors.__all__)
    if isinstance(cls, type) and issubclass(cls, WactorError)
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_names_a_case_of_its_family_wit_variant(cls: type[WactorError]) -> None:
    if cls.wit_variant is None:
        assert cls.wit_case is None
        return
    assert cls.wit_case in _wit_variants()[cls.wit_variant]


@pytest.mark.parametrize(
    ("family", "variant"),
    [
        (WasmError, "wasm-error"),
        (ComponentError, "component-error"),
        (SecurityError, "security-error"),
        (MessagingError, "messaging-error"),
        (StorageError, "storage-error"),
        (errors.HttpError, "http-error"),
    ],
)
def test_each_family_mirrors_its_wit_variant(family: type[WactorError], variant: str) -> None:
    assert family.wit_variant == variant
    members = [cls for cls in ERROR_CLASSES if issubclass(cls, family)]
    assert all(cls.wit_variant == variant for cls in members)


@pytest.mark.parametrize(
    ("error", "case"),
    [
        (errors.TargetNotFoundError("t/ghost/0"), "target-not-found"),
        (errors.QueueFullError("t/a/0", 4), "queue-full"),
        (RequestTimeoutError("t/a/0", 0.1, "c1"), "correlation-timeout"),
        (errors.ActorStoppedError("t/a/0"), "delivery-failed"),
        (errors.InvalidMessageError("too big"), "invalid-message"),
        (errors.QuotaExceededError("t/a/0", 10, 20), "quota-exceeded"),
        (errors.InvalidKeyError("empty key"), "invalid-key"),
        (errors.StorageIOError("disk"), "io-error"),
        (ExecutionTimeoutError("slow", timeout_ms=5), "timeout"),
        (errors.ResourceLimitError("memory", limit="memory"), "resource-limit-exceeded"),
        (errors.TrapError("unreachable"), "runtime-error"),
        (errors.CapabilityDeniedError("no", capability="messaging.send"), "capability-denied"),
        (errors.HttpRequestError("bad url"), "invalid-request"),
        (errors.HttpTimeoutError("slow", timeout_ms=5), "timeout"),
        (errors.ResponseTooLargeError("big", limit=10), "too-large"),
        (errors.HttpError("refused"), "failed"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, WactorError) else v,
)
def test_an_error_carries_the_wit_case_a_guest_receives(error: WactorError, case: str) -> None:
    assert error.wit_case == case


def test_guest_and_lifecycle_errors_carry_the_case_they_were_raised_with() -> None:
    assert GuestError("export-not-found", "nope", component="t/a/0").wit_case == "export-not-found"
    failed = ComponentError("t/a/0: init failed", case="initialization-failed")
    assert failed.wit_case == failed.case == "initialization-failed"
    assert ComponentError("t/a/0: stopped").wit_case == "invalid-state"


@pytest.mark.parametrize(
    "error",
    [
        ExecutionTimeoutError("t/a/0: handle-message timed out after 5 ms", timeout_ms=5),
        RequestTimeoutError("t/a/0", 0.5, "c1"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_timeout_errors_are_builtin_timeout_errors_in_their_family(error: WactorError) -> None:
    with pytest.raises(TimeoutError) as info:
        raise error
    assert info.value is error
    assert isinstance(error, ComponentFault | MessagingError)
    assert str(error).startswith("t/a/0: ")
    assert error.args == (str(error),)


def test_unhealthy_error_is_a_fault_naming_the_component_and_threshold() -> None:
    error = UnhealthyError("t/a/0", 3)
    assert isinstance(error, ComponentFault)
    assert str(error) == "t/a/0: unhealthy 3 times in a row"
    assert (error.component, error.threshold, error.exit_code) == ("t/a/0", 3, 4)
    assert errors.__all__.count("UnhealthyError") == 1


class _Asker(Actor[Any]):
    """Fails each message with the error it carries."""

    async def on_message(self, message: Any) -> Any:
        raise message


async def test_a_timeout_the_actor_answers_with_is_not_taken_for_the_askers_own() -> None:
    cell: ActorCell[Any] = ActorCell("t/asker/0", _Asker)
    await cell.start()
    downstream = RequestTimeoutError("t/downstream/0", 0.25, "c7")
    with pytest.raises(RequestTimeoutError) as info:
        await cell.ref.ask(downstream, timeout=30)
    assert info.value is downstream
    await cell.stop()
