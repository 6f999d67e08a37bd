"""The component actor: one incarnation of a component, one export call at a time.

Each incarnation owns one instance, made against the component's :class:`ComponentRuntime`
(which outlives it); a fault discards the instance and the supervisor starts a new incarnation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from wactor._bridge import run_on_thread
from wactor.actors import NOT_NOW, Actor, FailureAction, Outcome
from wactor.errors import (
    ComponentError,
    ComponentFault,
    InvalidMessageError,
    UnhealthyError,
    WactorError,
)
from wactor.host._placement import InlineClock
from wactor.host._runtime import ComponentRuntime
from wactor.messaging import Envelope
from wactor.wasm import ComponentInstance, in_guest_call

__all__ = ["HEALTH_CHECK", "ComponentActor", "HealthCheck"]


class HealthCheck:
    """The control message that makes a component actor ask its guest for its health."""

    __slots__ = ()


HEALTH_CHECK = HealthCheck()


class ComponentActor(Actor["Envelope | HealthCheck"]):
    """One incarnation of a component: one instance, one call at a time.

    A message's call runs on the loop's own thread when the component's calls are short, else
    on a worker thread (the runtime's :class:`~wactor.host.CallPlacement` decides, from call
    times it measures here). On workers, messages already queued are handled in batches by
    one job, so a busy component pays the thread hand-off once per batch, not per message.
    """

    batch_limit = 32

    def __init__(self, runtime: ComponentRuntime, executor: Executor) -> None:
        self.runtime = runtime
        self._executor = executor
        self.instance: ComponentInstance | None = None

    async def _run(self, fn: Callable[[], Any]) -> Any:
        return await run_on_thread(self._executor, fn)

    async def on_start(self) -> None:
        self.instance = await self._run(self.runtime.new_instance)
        self.runtime.instance = self.instance

    async def on_message(self, message: Envelope | HealthCheck) -> Any:
        instance = self.instance
        if instance is None:
            raise ComponentError(
                f"{self.runtime.component_id}: not running", case="not-initialized"
            )
        if isinstance(message, HealthCheck):
            return await self._check_health(instance)
        if self.runtime.placement.inline:
            return self._call_inline(instance, message)
        return await self._run(lambda: self._call_on_worker(instance, message))

    def handle_now(self, message: Envelope | HealthCheck) -> Any:
        """Run a message's call right away on the caller's task when it would run inline.

        Not from inside another component's call (a host function delivering a callback or a
        publication): one guest's call never runs nested in another's.
        """
        instance = self.instance
        if (
            instance is None
            or not isinstance(message, Envelope)
            or not self.runtime.placement.inline
            or in_guest_call()
        ):
            return NOT_NOW
        return self._call_inline(instance, message)

    def _call(self, instance: ComponentInstance, env: Envelope) -> bytes | None:
        """Deliver one message (a callback, or anything else) to the instance."""
        if env.kind == "callback":
            instance.handle_callback(env)
            return None
        return self._checked(instance.handle_message(env))

    def _call_inline(self, instance: ComponentInstance, env: Envelope) -> bytes | None:
        """On the loop's thread: timed for how long it held the loop, and why."""
        clock = InlineClock()
        runtime = self.runtime
        try:
            return self._call(instance, env)
        finally:
            runtime.metrics.called(env.kind, clock.stop(runtime.placement))

    def _call_on_worker(self, instance: ComponentInstance, env: Envelope) -> bytes | None:
        """On a worker thread: timed in CPU time, without the waits for the GIL that the same
        call on the loop's thread would not have (and on the wall clock, for its latency)."""
        start = time.thread_time()
        began = time.perf_counter()
        runtime = self.runtime
        try:
            return self._call(instance, env)
        finally:
            runtime.metrics.called(env.kind, time.perf_counter() - began)
            runtime.placement.ran_on_worker(time.thread_time() - start)

    def _checked(self, reply: bytes | None) -> bytes | None:
        """Refuse a reply over the host's payload limit (the requester gets the error)."""
        limit = self.runtime.router.max_payload_bytes
        if reply is not None and len(reply) > limit:
            raise InvalidMessageError(
                f"{self.runtime.component_id}: reply of {len(reply)} bytes exceeds the "
                f"{limit}-byte payload limit"
            )
        return reply

    async def on_batch(self, messages: list[Envelope | HealthCheck]) -> list[Outcome]:
        instance = self.instance
        if instance is None or any(isinstance(m, HealthCheck) for m in messages):
            return await super().on_batch(messages)  # rare: keep the simple path
        if self.runtime.placement.inline:
            # on the loop's thread: as many as fit in the slice; the rest stay queued
            return self._handle(instance, messages, inline=True)
        result: list[Outcome] = await self._run(lambda: self._handle(instance, messages))
        return result

    def _handle(
        self,
        instance: ComponentInstance,
        messages: list[Envelope | HealthCheck],
        *,
        inline: bool = False,
    ) -> list[Outcome]:
        """Handle queued messages in order (on the loop's thread if ``inline``: then only while
        the placement keeps the component there and within one slice of the loop's time)."""
        placement = self.runtime.placement
        call = self._call_inline if inline else self._call_on_worker
        out: list[Outcome] = []
        began = time.perf_counter()
        for env in messages:
            if (
                inline
                and out
                and (not placement.inline or time.perf_counter() - began > placement.slice_s)
            ):
                break
            assert isinstance(env, Envelope)
            try:
                out.append((True, call(instance, env)))
            except ComponentFault as exc:
                out.append((False, exc))
                break  # the instance is gone; the rest wait for the next one
            except Exception as exc:  # noqa: BLE001 - an application error, per message
                out.append((False, exc))
        return out

    async def _check_health(self, instance: ComponentInstance) -> str:
        runtime = self.runtime
        status = await self._run(instance.health)
        runtime.health = status
        runtime.unhealthy_streak = runtime.unhealthy_streak + 1 if status == "unhealthy" else 0
        threshold = runtime.manifest.supervision.health_threshold
        if runtime.unhealthy_streak >= threshold:
            runtime.unhealthy_streak = 0
            raise UnhealthyError(str(runtime.component_id), threshold)
        return str(status)

    async def on_failure(
        self, exc: BaseException, message: Envelope | HealthCheck
    ) -> FailureAction:
        self.runtime.metrics.failed(exc)
        poisoned = self.instance is not None and self.instance.poisoned
        if not isinstance(exc, ComponentFault) and not poisoned:
            return "resume"  # an application error (the guest answered err): nothing died
        if isinstance(message, Envelope) and not isinstance(exc, UnhealthyError):
            self.runtime.router.dead_letters.record(
                str(self.runtime.component_id),
                str(exc),
                sender=str(message.sender),
                kind=message.kind,
                size=len(message.payload),
                correlation_id=message.correlation_id,
            )
        instance, self.instance = self.instance, None
        self.runtime.instance = None
        self.runtime.health = "unhealthy"
        if instance is not None:
            await self._run(instance.close)  # now, not whenever the last reference goes
        return "crash"

    async def on_stop(self) -> None:
        held = [self.instance] if self.instance is not None else []
        self.instance = None
        self.runtime.instance = None
        if not held:
            return

        def shut_down() -> None:
            # One job, so the Store is released even if this hook is given up on (timeout);
            # it lets go of the instance before it reports back, so nothing holds it after.
            instance = held.pop()
            try:
                if not instance.poisoned:
                    instance.shutdown()
            finally:
                instance.close()

        try:
            await self._run(shut_down)
        except WactorError as exc:
            logging.getLogger("wactor.host").warning("%s", exc)
