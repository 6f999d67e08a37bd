"""Topics guest: built ``--with topics``; subscribes in ``initialize`` and records what arrives.

In ``initialize`` it subscribes to ``orders.*.created`` and ``audit.#``. Every publication that
reaches ``handle-message`` (``pubsub.current_subject()`` is set) is recorded as
``<subject>=<payload>``; direct messages are commands (UTF-8, words separated by spaces):

    seen                  -> the recorded publications joined by ";" ("" if none)
    subject               -> current-subject while handling this direct message ("none")
    sub PATTERN           -> "ok" or "err <reason>"
    unsub PATTERN         -> "ok" or "err <reason>"
    pub SUBJECT TEXT...   -> "ok <matched>" or "err <reason>"
    init-errors           -> what initialize could not subscribe to ("" if nothing)
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import component_lifecycle
from wit_world.imports import pubsub, types

INITIAL = ("orders.*.created", "audit.#")

seen: list[str] = []
init_errors: list[str] = []


def _result(call: object) -> str:
    try:
        value = call()  # type: ignore[operator]
    except Err as exc:
        return f"err {exc.value}"
    return "ok" if value is None else f"ok {value}"


class ComponentLifecycle(exports.ComponentLifecycle):
    def initialize(self, config: types.ComponentConfig) -> None:
        for pattern in INITIAL:
            try:
                pubsub.subscribe(pattern)
            except Err as exc:
                init_errors.append(f"{pattern}: {exc.value}")

    def handle_message(self, msg: types.ComponentMessage) -> bytes | None:
        subject = pubsub.current_subject()
        text = bytes(msg.payload).decode("utf-8")
        if subject is not None:
            seen.append(f"{subject}={text}")
            return None
        word, _, rest = text.partition(" ")
        if word == "seen":
            reply = ";".join(seen)
        elif word == "subject":
            reply = "none"
        elif word == "sub":
            reply = _result(lambda: pubsub.subscribe(rest))
        elif word == "unsub":
            reply = _result(lambda: pubsub.unsubscribe(rest))
        elif word == "pub":
            target, _, body = rest.partition(" ")
            reply = _result(lambda: pubsub.publish(target, body.encode(), "text/plain"))
        elif word == "init-errors":
            reply = ";".join(init_errors)
        else:
            reply = f"err usage unknown command {word!r}"
        return reply.encode()

    def handle_callback(self, msg: types.ComponentMessage) -> None:
        return None

    def metadata(self) -> component_lifecycle.ComponentMetadata:
        return component_lifecycle.ComponentMetadata(
            name="topics",
            version="0.1.0",
            description="Subscribes in initialize and records publications.",
            author="",
            license="",
            supported_operations=["seen", "sub", "unsub", "pub"],
            stateful=True,
        )

    def health(self) -> types.HealthStatus:
        return types.HealthStatus.HEALTHY

    def shutdown(self) -> None:
        pass
