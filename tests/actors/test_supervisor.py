"""OTP supervision with plain actors: own restart budgets, significant children, strategies.

A child with a budget of its own is charged its own crashes only; past that budget it alone is
given up and stays listed as failed. Significant children also count toward their supervisor's
intensity and their final failure makes it give up (escalate). Siblings restarted by
``one_for_all`` / ``rest_for_one`` are not charged a crash.
"""

from __future__ import annotations

import asyncio
import collections

import pytest

from wactor.actors import (
    Actor,
    ActorCell,
    Backoff,
    ChildSpec,
    FailureAction,
    RestartType,
    Strategy,
    Supervisor,
    SupervisorEvent,
    SupervisorSpec,
)
from wactor.errors import ActorStoppedError

DEADLINE = 10.0
NO_PAUSE = Backoff(initial=0.0, maximum=0.0, jitter=0.0)


class Boom(Exception):
    """The crash the test actors are asked for."""


class Crasher(Actor[str]):
    """Echoes its message; ``boom`` crashes this incarnation."""

    async def on_message(self, message: str) -> str:
        if message == "boom":
            raise Boom("asked to crash")
        return message

    async def on_failure(self, exc: BaseException, message: str) -> FailureAction:
        return "crash"


class Events:
    """Every supervisor event, with a way to wait for one (no sleeps)."""

    def __init__(self) -> None:
        self.seen: list[SupervisorEvent] = []
        self._changed = asyncio.Condition()
        self.given_up: list[str] = []
        self._top_gave_up = asyncio.Event()

    def __call__(self, event: SupervisorEvent) -> None:
        self.seen.append(event)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def count(self, kind: str, child: str) -> int:
        return sum(1 for e in self.seen if e.kind == kind and e.child == child)

    async def wait(self, kind: str, child: str, count: int = 1) -> None:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: self.count(kind, child) >= count), DEADLINE
            )

    async def on_give_up(self, supervisor: Supervisor, reason: str) -> None:
        self.given_up.append(reason)
        self._top_gave_up.set()

    async def wait_top_gave_up(self) -> None:
        """Wait until the top supervisor gave up and told its owner."""
        await asyncio.wait_for(self._top_gave_up.wait(), DEADLINE)


@pytest.fixture
def events() -> Events:
    return Events()


def _supervisor(
    events: Events, strategy: Strategy = "one_for_one", max_restarts: int = 3, name: str = "top"
) -> Supervisor:
    return Supervisor(
        name,
        SupervisorSpec(strategy, max_restarts, within_seconds=60),
        on_event=events,
        on_give_up=events.on_give_up,
    )


async def _child(
    sup: Supervisor,
    name: str,
    *,
    budget: int | None = 10,
    significant: bool = False,
    restart: RestartType = "permanent",
) -> ActorCell[str]:
    spec = ChildSpec(
        name,
        Crasher,
        restart=restart,
        backoff=NO_PAUSE,
        max_restarts=budget,
        within_seconds=60,
        significant=significant,
    )
    return await sup.start_child(spec)


async def _crash(cell: ActorCell[str]) -> None:
    with pytest.raises(Boom):
        await cell.ref.ask("boom", timeout=DEADLINE)


async def _crash_and_restart(events: Events, cell: ActorCell[str], nth: int) -> None:
    await _crash(cell)
    await events.wait("restarted", cell.id, nth)


async def test_a_child_with_its_own_budget_is_not_charged_to_the_supervisor(
    events: Events,
) -> None:
    sup = _supervisor(events, max_restarts=1)
    looper = await _child(sup, "looper", budget=10)
    other = await _child(sup, "other")
    for n in range(1, 6):
        await _crash_and_restart(events, looper, n)
    assert sup.state == "running"
    assert events.given_up == []
    assert await looper.ref.ask("still here", timeout=DEADLINE) == "still here"
    assert await other.ref.ask("fine", timeout=DEADLINE) == "fine"
    await sup.stop()


async def test_a_child_out_of_its_own_budget_fails_alone_and_stays_listed(
    events: Events,
) -> None:
    sup = _supervisor(events)
    weak = await _child(sup, "weak", budget=2)
    other = await _child(sup, "other")
    for n in (1, 2):
        await _crash_and_restart(events, weak, n)
    await _crash(weak)
    await events.wait("gave_up", "weak")

    assert sup.state == "running"
    assert events.given_up == []
    assert sup.children() == [weak, other]  # still listed, in start order
    assert sup.is_failed("weak")
    assert not sup.is_failed("other")
    stats = weak.statistics()
    assert stats.state == "failed"
    assert stats.last_failure is not None
    assert "gave up after 2 restarts within 60 s" in stats.last_failure
    assert "asked to crash" in stats.last_failure
    assert events.count("removed", "weak") == 0
    with pytest.raises(ActorStoppedError):
        await weak.ref.ask("anyone?", timeout=DEADLINE)  # a clear error at once, no hang
    assert await other.ref.ask("fine", timeout=DEADLINE) == "fine"

    await sup.terminate_child("weak")  # the operator clears the failed record
    assert sup.children() == [other]
    await sup.stop()


async def test_only_significant_children_count_toward_the_supervisor_intensity(
    events: Events,
) -> None:
    sup = _supervisor(events, max_restarts=2)
    key = await _child(sup, "key", significant=True)
    plugin = await _child(sup, "plugin")
    for n in (1, 2):
        await _crash_and_restart(events, plugin, n)
    for n in (1, 2):
        await _crash_and_restart(events, key, n)
    assert sup.state == "running"  # 2 significant restarts: within the intensity of 2

    await _crash(key)  # the third significant restart in the window is one too many
    await events.wait_top_gave_up()
    assert len(events.given_up) == 1
    assert events.given_up[0].startswith("key: ")
    assert sup.state == "failed"
    assert sup.children() == []


async def test_a_significant_child_out_of_its_own_budget_makes_the_supervisor_give_up(
    events: Events,
) -> None:
    sup = _supervisor(events, max_restarts=100)
    key = await _child(sup, "key", budget=1, significant=True)
    other = await _child(sup, "other")
    await _crash_and_restart(events, key, 1)
    await _crash(key)
    await events.wait_top_gave_up()
    assert events.count("gave_up", "key") == 0  # not failed alone: it took the supervisor down
    (reason,) = events.given_up
    assert reason.startswith("key: gave up after 1 restart within 60 s")
    with pytest.raises(ActorStoppedError):
        await other.ref.ask("gone", timeout=DEADLINE)


async def test_a_significant_temporary_child_that_crashes_makes_the_supervisor_give_up(
    events: Events,
) -> None:
    sup = _supervisor(events, max_restarts=100)
    await _child(sup, "plain", restart="temporary")
    once = await _child(sup, "once", restart="temporary", significant=True)
    await _crash(sup.child("plain"))
    await events.wait("removed", "plain")
    assert sup.state == "running"
    await _crash(once)
    await events.wait_top_gave_up()
    assert sup.state == "failed"


async def test_one_for_all_does_not_charge_siblings_for_another_childs_crash(
    events: Events,
) -> None:
    sup = _supervisor(events, "one_for_all")
    looper = await _child(sup, "looper", budget=10)
    careful = await _child(sup, "careful", budget=1)
    for n in range(1, 5):  # more than the supervisor's intensity of 3 and careful's budget of 1
        await _crash(looper)
        await events.wait("restarted", "looper", n)
        await events.wait("restarted", "careful", n)
    assert careful.statistics().restarts == 4
    assert sup.state == "running"
    assert not sup.is_failed("careful")

    await _crash(careful)  # its own first crash: within its budget of 1
    await events.wait("restarted", "careful", 5)
    await events.wait("restarted", "looper", 5)  # one_for_all still restarts the sibling
    await _crash(careful)  # its own second crash: out of budget, it alone fails
    await events.wait("gave_up", "careful")
    assert sup.is_failed("careful")
    assert events.count("restarted", "looper") == 5  # not restarted for a child given up
    assert await looper.ref.ask("alive", timeout=DEADLINE) == "alive"

    await _crash_and_restart(events, looper, 6)  # the failed sibling is not brought back
    assert careful.statistics().state == "failed"
    assert events.count("restarted", "careful") == 5
    await sup.stop()


async def test_rest_for_one_restarts_later_siblings_but_not_failed_ones(
    events: Events,
) -> None:
    sup = _supervisor(events, "rest_for_one")
    first = await _child(sup, "first")
    middle = await _child(sup, "middle")
    last = await _child(sup, "last", budget=0)
    later = await _child(sup, "later")
    await _crash(last)  # budget 0: fails at its first crash; later siblings are untouched
    await events.wait("gave_up", "last")
    assert events.count("restarted", "later") == 0

    for n in range(1, 5):  # more than the supervisor's intensity of 3
        await _crash(middle)
        await events.wait("restarted", "middle", n)
        await events.wait("restarted", "later", n)
    restarted = collections.Counter(e.child for e in events.seen if e.kind == "restarted")
    assert restarted == {"middle": 4, "later": 4}
    assert sup.state == "running"
    assert last.statistics().state == "failed"
    for cell in (first, middle, later):
        assert await cell.ref.ask(cell.id, timeout=DEADLINE) == cell.id
    await sup.stop()


async def test_a_significant_child_escalates_through_a_nested_supervisor(
    events: Events,
) -> None:
    top = _supervisor(events, max_restarts=1)
    group = Supervisor(
        "group", SupervisorSpec(max_restarts=100, within_seconds=60), on_event=events
    )
    await top.start_supervisor(group)
    key = await _child(group, "key", budget=1, significant=True)
    plugin = await _child(group, "plugin", budget=0)

    await _crash(plugin)  # not significant: fails alone, the group goes on
    await events.wait("gave_up", "plugin")
    assert group.state == "running"

    await _crash_and_restart(events, key, 1)
    await _crash(key)  # out of its budget: the group gives up and escalates
    await events.wait("escalated", "group")
    await events.wait("restarted", "group")  # the top supervisor restarts the group
    assert top.state == "running"
    assert group.state == "running"
    assert await key.ref.ask("back", timeout=DEADLINE) == "back"
    assert group.is_failed("plugin")  # given up alone before: stays failed across the restart

    await _crash_and_restart(events, key, 2)  # the restarted group gave it a fresh budget
    await _crash(key)
    await events.wait("escalated", "group", 2)  # a second group restart: past top's intensity
    await events.wait_top_gave_up()
    assert events.given_up[0].startswith("group: ")
    assert top.state == "failed"


async def test_a_nested_supervisor_counts_toward_its_parent_like_a_child_without_a_budget(
    events: Events,
) -> None:
    top = _supervisor(events, max_restarts=1)
    group = Supervisor("group", SupervisorSpec(max_restarts=0, within_seconds=60), on_event=events)
    await top.start_supervisor(group)
    member = await _child(group, "member", budget=None)  # no budget: charged to the group
    await _crash(member)
    await events.wait("restarted", "group")
    assert await member.ref.ask("ok", timeout=DEADLINE) == "ok"
    await _crash(member)
    await events.wait_top_gave_up()
    assert top.state == "failed"
