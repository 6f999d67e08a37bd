"""Guest-side topics through a real Python guest built ``--with topics``: ``subscribe`` in
``initialize``, ``current-subject`` while handling a publication, ``unsubscribe``, ``publish``,
and the manifest's subject grants."""

from __future__ import annotations

import asyncio

import pytest

from conftest import ManifestFactory, guest_binary
from wactor.host import Host

GUEST = "t/topics/0"
GRANTS = """
[capabilities.messaging]
subscribe = ["orders.*.created", "audit.#", "extra.*"]
publish = ["orders.*.created", "news.*"]
"""


async def _ask(host: Host, command: str) -> str:
    reply = await host.request(GUEST, command.encode(), timeout=60)
    assert reply is not None
    return reply.decode()


async def _seen_through(host: Host, last: str) -> list[str]:
    """What the guest recorded, once ``last`` (the latest publication) is among it."""
    for _ in range(1000):
        text = await _ask(host, "seen")
        seen = text.split(";") if text else []
        if last in seen:
            return seen
        await asyncio.sleep(0.01)
    raise AssertionError(f"{last} never reached the guest; it saw {seen}")


@pytest.fixture
async def topics(host: Host, manifest: ManifestFactory) -> Host:
    await host.start(manifest(GUEST, guest_binary("topics"), extra=GRANTS, timeout_ms=10_000))
    return host


async def test_subscribed_in_initialize_it_receives_exactly_the_matching_publications(
    topics: Host,
) -> None:
    host = topics
    assert await _ask(host, "init-errors") == ""
    published = {
        "orders.eu.created": b"o1",
        "orders.eu.deleted": b"no",  # the last token differs
        "orders.created": b"no",  # too short for orders.*.created
        "orders.eu.created.late": b"no",  # too long: * is one token
        "audit.login": b"a1",
        "audit.login.failed": b"a2",  # a final # takes the rest
        "auditor.x": b"no",
        "extra.x": b"no",  # granted, but never subscribed to
    }
    matched = {subject: await host.publish(subject, body) for subject, body in published.items()}
    assert matched == {subject: int(body != b"no") for subject, body in published.items()}
    # A last matching publication; a mailbox keeps order, so the others came before it.
    assert await host.publish("audit.end", b"end") == 1
    assert await _seen_through(host, "audit.end=end") == [
        "orders.eu.created=o1",
        "audit.login=a1",
        "audit.login.failed=a2",
        "audit.end=end",
    ]
    assert await _ask(host, "subject") == "none"  # a direct message has no subject


async def test_unsubscribe_stops_delivery_and_subscribe_adds_a_pattern(topics: Host) -> None:
    host = topics
    assert await _ask(host, "unsub audit.#") == "ok"
    assert await _ask(host, "unsub never.subscribed") == "ok"  # not an error
    assert await host.publish("audit.login", b"gone") == 0
    assert await _ask(host, "sub extra.*") == "ok"
    assert await host.publish("extra.one", b"e1") == 1
    assert await _seen_through(host, "extra.one=e1") == ["extra.one=e1"]


async def test_subscribing_or_publishing_beyond_the_grants_is_refused_and_audited(
    topics: Host,
) -> None:
    host = topics
    refused = await _ask(host, "sub secrets.#")
    assert refused.startswith("err "), refused
    assert "secrets.#" in refused
    assert await host.publish("secrets.key", b"x") == 0  # nothing was subscribed
    assert (await _ask(host, "pub payroll.eu leak")).startswith("err ")
    denied = host.audit.query(component=GUEST, denied_only=True)
    assert [(entry.action, entry.target) for entry in denied] == [
        ("messaging.subscribe", "secrets.#"),
        ("messaging.publish", "payroll.eu"),
    ]


async def test_a_guest_publication_reaches_host_subscribers_and_its_own_subscription(
    topics: Host,
) -> None:
    host = topics
    outside: list[tuple[str, bytes]] = []
    await host.subscribe("orders.#", lambda subject, env: outside.append((subject, env.payload)))
    # The host callback and the guest's own orders.*.created subscription both match.
    assert await _ask(host, "pub orders.us.created from guest") == "ok 2"
    assert outside == [("orders.us.created", b"from guest")]
    assert await _seen_through(host, "orders.us.created=from guest") == [
        "orders.us.created=from guest"
    ]
