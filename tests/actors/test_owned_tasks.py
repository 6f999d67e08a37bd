"""An actor's stop reports what fails in it instead of dropping it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from wactor.actors import Actor, ActorCell


class BadStop(Actor[Any]):
    """Answers anything; its ``on_stop`` raises."""

    async def on_message(self, message: Any) -> Any:
        return message

    async def on_stop(self) -> None:
        raise OSError("disk gone")


async def test_a_failing_on_stop_is_logged_with_the_actor_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cell: ActorCell[Any] = ActorCell("t/badstop/0", BadStop)
    await cell.start()
    with caplog.at_level(logging.WARNING, logger="wactor.actors"):
        await cell.stop()

    assert cell.state == "terminated"
    assert [r.getMessage() for r in caplog.records] == ["t/badstop/0: on_stop failed: disk gone"]


async def test_a_failing_on_stop_after_a_normal_exit_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cell: ActorCell[Any] = ActorCell("t/badstop/1", BadStop)
    await cell.start()
    with caplog.at_level(logging.WARNING, logger="wactor.actors"):
        cell.ref.stop()
        await cell.wait_stopped()

    assert [r.getMessage() for r in caplog.records] == ["t/badstop/1: on_stop failed: disk gone"]
