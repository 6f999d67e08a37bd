"""``wactor:http/client`` from a real guest against real servers on loopback.

The guest (``tests/guests/fetcher``, built with ``wactor build --with http``) performs the
exchange its payload describes; the servers (:mod:`httpserver`) record every connection and
request that reaches them, so "denied" is shown both in the guest's answer and in what the server
saw: nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import TRUSTED, ManifestFactory, guest_binary, wat_binary
from httpserver import LocalCA, TestServer, make_test_ca, serving
from wactor.errors import ExecutionTimeoutError
from wactor.host import Host, HostConfig, HttpConfig
from waiting import wait_until

MIB = 1 << 20


@pytest.fixture(scope="module")
def fetcher() -> Path:
    return guest_binary("fetcher")


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def web() -> Iterator[TestServer]:
    with serving() as server:
        yield server


@pytest.fixture
def tls_web(test_ca: LocalCA) -> Iterator[TestServer]:
    with serving(test_ca) as server:
        yield server


Configure = Callable[..., HostConfig]


@pytest.fixture
def configure(tmp_path: Path, test_ca: LocalCA) -> Configure:
    """Make a host config whose ``[http]`` trusts the test CA and has the given settings."""

    def make(ca: LocalCA = test_ca, **http: Any) -> HostConfig:
        config = HostConfig.default(tmp_path / "state", trusted_paths=(tmp_path, *TRUSTED))
        return dataclasses.replace(config, http=HttpConfig(ca_file=ca.ca, **http))

    return make


@pytest.fixture
async def net_host(configure: Configure) -> AsyncIterator[Host]:
    async with Host.open(configure()) as host:
        yield host


def grant(*patterns: str, extra: str = "") -> str:
    listed = ", ".join(f'"{p}"' for p in patterns)
    return f"{extra}[capabilities.network]\nconnect = [{listed}]\n"


async def fetch(host: Host, target: str, url: str, **fields: Any) -> Any:
    """What the guest answers: one object, or a list of them for ``repeat``."""
    reply = await host.request(target, json.dumps({"url": url, **fields}).encode(), timeout=60)
    assert reply is not None
    return json.loads(reply)


def _denials(host: Host, component: str) -> list[tuple[str, str, str]]:
    entries = host.audit.query(component=component, denied_only=True)
    return [(e.action, e.target, e.reason) for e in entries]


# --- what a grant opens ----------------------------------------------------------------------


async def test_a_granted_fetch_returns_status_headers_and_body(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer
) -> None:
    await net_host.start(manifest("t/fetch/0", fetcher, extra=grant(f"127.0.0.1:{web.port}")))

    answer = await fetch(net_host, "t/fetch/0", web.url("/ok"))

    assert answer["status"] == 200
    assert answer["body"] == f"hello 127.0.0.1:{web.port}"
    assert [v for k, v in answer["headers"] if k == "X-Multi"] == ["a", "b"]  # both, in order
    [seen] = web.seen
    assert (seen.peer, seen.method, seen.path, seen.header("Host")) == (
        "127.0.0.1",
        "GET",
        "/ok",
        f"127.0.0.1:{web.port}",
    )
    grants = net_host.audit.query(component="t/fetch/0")
    assert [(e.event, e.action, e.target) for e in grants if e.action == "network.connect"] == [
        ("grant", "network.connect", f"127.0.0.1:{web.port}")
    ]


async def test_a_post_carries_the_guests_body_and_headers_and_the_host_frames_it(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer
) -> None:
    await net_host.start(manifest("t/fetch/0", fetcher, extra=grant(f"127.0.0.1:{web.port}")))

    answer = await fetch(
        net_host,
        "t/fetch/0",
        web.url("/echo?x=1#fragment"),
        method="POST",
        headers=[["X-Token", "t1"], ["Accept", "*/*"]],
        body="a\x00\xff",
    )

    assert (answer["status"], answer["body"]) == (200, "a\x00\xff")
    [seen] = web.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/echo?x=1", b"a\x00\xff")
    assert seen.header("X-Token") == "t1"
    assert seen.header("Content-Length") == "3"
    assert seen.header("Host") == f"127.0.0.1:{web.port}"


async def test_a_head_request_has_no_body(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer
) -> None:
    await net_host.start(manifest("t/fetch/0", fetcher, extra=grant(f"127.0.0.1:{web.port}")))

    answer = await fetch(net_host, "t/fetch/0", web.url("/ok"), method="HEAD")

    assert (answer["status"], answer["size"]) == (200, 0)
    assert web.seen[0].method == "HEAD"


async def test_https_keeps_the_name_for_host_sni_and_the_certificate(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, tls_web: TestServer
) -> None:
    extra = grant(f"localhost:{tls_web.port}")
    await net_host.start(manifest("t/fetch/0", fetcher, extra=extra))

    answer = await fetch(net_host, "t/fetch/0", tls_web.url("/ok", host="localhost"))

    assert (answer["status"], answer["body"]) == (200, f"hello localhost:{tls_web.port}")
    [seen] = tls_web.seen
    assert (seen.scheme, seen.peer, seen.sni) == ("https", "127.0.0.1", "localhost")


async def test_a_certificate_for_another_name_fails_the_exchange(
    tmp_path: Path, manifest: ManifestFactory, fetcher: Path, configure: Configure
) -> None:
    other = make_test_ca(tmp_path / "other", names=("other.example",))
    async with Host.open(configure(other)) as host:
        with serving(other) as server:
            await host.start(
                manifest("t/fetch/0", fetcher, extra=grant(f"localhost:{server.port}"))
            )

            answer = await fetch(host, "t/fetch/0", server.url("/ok", host="localhost"))

            assert answer["error"] == "failed"
            assert "TLS certificate rejected" in answer["detail"]
            assert "localhost" in answer["detail"]
            assert server.seen == []  # no request was sent over it


async def test_an_unknown_certificate_authority_fails_the_exchange(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, tmp_path: Path
) -> None:
    stranger = make_test_ca(tmp_path / "stranger")  # not the host's ca-file
    with serving(stranger) as server:
        await net_host.start(
            manifest("t/fetch/0", fetcher, extra=grant(f"localhost:{server.port}"))
        )

        answer = await fetch(net_host, "t/fetch/0", server.url("/ok", host="localhost"))

        assert answer["error"] == "failed"
        assert "certificate" in answer["detail"]
        assert server.seen == []


# --- what it does not open ---------------------------------------------------------------------


async def test_an_ungranted_host_and_port_is_denied_audited_and_nothing_reaches_the_server(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer
) -> None:
    await net_host.start(
        manifest("t/fetch/0", fetcher, extra=grant("127.0.0.1:1", "example.org:*"))
    )

    answers = [
        await fetch(net_host, "t/fetch/0", web.url("/ok")),
        await fetch(net_host, "t/fetch/0", web.url("/ok", host="localhost")),
    ]

    assert [a["error"] for a in answers] == ["denied", "denied"]
    assert answers[0]["detail"] == (
        f"t/fetch/0: 127.0.0.1:{web.port} is not granted by [capabilities.network] connect"
    )
    assert _denials(net_host, "t/fetch/0") == [
        (
            "network.connect",
            f"127.0.0.1:{web.port}",
            f"127.0.0.1:{web.port} is not granted by [capabilities.network] connect",
        ),
        (
            "network.connect",
            f"localhost:{web.port}",
            f"localhost:{web.port} is not granted by [capabilities.network] connect",
        ),
    ]
    assert web.accepted == 0


@pytest.mark.parametrize(
    "host_text",
    ["127.0.0.1", "localhost", "LOCALHOST.", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
     "[64:ff9b::7f00:1]", "127.0.0.2", "0.0.0.0", "169.254.169.254", "[fd00:ec2::254]"],
)  # fmt: skip
async def test_a_wildcard_grant_does_not_reach_loopback_or_metadata(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer, host_text: str
) -> None:
    extra = grant("*:*", "*.localhost:*")
    await net_host.start(manifest("t/fetch/0", fetcher, extra=extra))

    answer = await fetch(net_host, "t/fetch/0", f"http://{host_text}:{web.port}/ok")

    assert answer["error"] == "denied"
    assert "never a wildcard" in answer["detail"]
    [(action, _, reason)] = _denials(net_host, "t/fetch/0")
    assert action == "network.connect"
    assert "never a wildcard" in reason
    assert web.accepted == 0


async def test_a_redirect_comes_back_as_it_is_and_its_location_is_denied(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer
) -> None:
    await net_host.start(manifest("t/fetch/0", fetcher, extra=grant(f"127.0.0.1:{web.port}")))
    with serving() as elsewhere:
        locations = ["http://169.254.169.254/latest/meta-data/", elsewhere.url("/ok")]
        for location in locations:
            answer = await fetch(net_host, "t/fetch/0", web.url(f"/redirect?to={location}"))
            assert answer["status"] == 302
            assert ["Location", location] in answer["headers"]

            followed = await fetch(net_host, "t/fetch/0", location)  # a new, checked request

            assert followed["error"] == "denied"
        assert elsewhere.accepted == 0
    assert [seen.path.partition("?")[0] for seen in web.seen] == ["/redirect", "/redirect"]


async def test_a_bad_request_is_refused_before_anything_is_sent(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer
) -> None:
    await net_host.start(manifest("t/fetch/0", fetcher, extra=grant("*:*")))
    port = web.port
    bad = [
        {"url": f"http://127.0.0.1:{port}/ok", "method": "TRACE"},
        {"url": f"http://127.0.0.1:{port}/ok", "headers": [["Host", "admin.internal"]]},
        {"url": f"http://127.0.0.1:{port}/ok", "headers": [["X-A", "1\r\nX-Evil: 2"]]},
        {"url": f"http://127.0.0.1:{port}/ok", "headers": [["Transfer-Encoding", "chunked"]]},
        {"url": f"http://example.com\\@127.0.0.1:{port}/ok"},
        {"url": f"http://u:p@127.0.0.1:{port}/ok"},
        {"url": f"http://2130706433:{port}/ok"},
        {"url": f"http://127.0.0.1:{port}/ok\r\nX-Evil: 1"},
        {"url": "file:///etc/passwd"},
    ]
    for command in bad:
        answer = await fetch(net_host, "t/fetch/0", **command)
        assert answer["error"] == "invalid-request", command
    assert web.accepted == 0


# --- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_a_64_mib_body_is_too_large_and_the_host_lives_on(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer, path: str
) -> None:
    await net_host.start(manifest("t/fetch/0", fetcher, extra=grant(f"127.0.0.1:{web.port}")))
    await net_host.start(manifest("t/echo/0", wat_binary("echo")))

    answer = await fetch(net_host, "t/fetch/0", web.url(path))

    assert answer == {"error": "too-large", "detail": MIB}
    assert await net_host.request("t/echo/0", b"still here", timeout=30) == b"still here"
    assert (await fetch(net_host, "t/fetch/0", web.url("/ok")))["status"] == 200


async def test_a_body_at_the_limit_arrives_whole(
    manifest: ManifestFactory, fetcher: Path, configure: Configure, web: TestServer
) -> None:
    async with Host.open(configure(max_response_bytes=3)) as host:
        await host.start(manifest("t/fetch/0", fetcher, extra=grant(f"127.0.0.1:{web.port}")))

        exact = await fetch(host, "t/fetch/0", web.url("/echo"), method="POST", body="abc")
        over = await fetch(host, "t/fetch/0", web.url("/echo"), method="POST", body="abcd")

    assert (exact["status"], exact["body"]) == (200, "abc")
    assert over == {"error": "too-large", "detail": 3}


async def test_a_slow_server_hits_timeout_at_the_requests_limit(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer
) -> None:
    extra = grant(f"127.0.0.1:{web.port}")
    await net_host.start(manifest("t/fetch/0", fetcher, extra=extra, timeout_ms=30_000))

    answer = await fetch(net_host, "t/fetch/0", web.url("/drip"), timeout_ms=300)

    assert answer == {"error": "timeout", "detail": None}
    assert (await fetch(net_host, "t/fetch/0", web.url("/ok")))["status"] == 200


async def test_the_hosts_maximum_bounds_a_longer_request_timeout(
    manifest: ManifestFactory, fetcher: Path, configure: Configure, web: TestServer
) -> None:
    config = configure(timeout_ms=300, max_timeout_ms=300)
    async with Host.open(config) as host:
        extra = grant(f"127.0.0.1:{web.port}")
        await host.start(manifest("t/fetch/0", fetcher, extra=extra, timeout_ms=30_000))

        answers = [
            await fetch(host, "t/fetch/0", web.url("/drip"), timeout_ms=4_000_000_000),
            await fetch(host, "t/fetch/0", web.url("/drip")),  # the host's default
        ]

    assert answers == [{"error": "timeout", "detail": None}] * 2


async def test_a_fetch_never_outlasts_its_components_call(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer
) -> None:
    extra = grant(f"127.0.0.1:{web.port}")
    await net_host.start(manifest("t/fetch/0", fetcher, extra=extra, timeout_ms=400))

    with pytest.raises(ExecutionTimeoutError):
        await fetch(net_host, "t/fetch/0", web.url("/drip"), timeout_ms=60_000)

    # the call ended as its timeout; the restarted instance answers
    assert (await fetch(net_host, "t/fetch/0", web.url("/ok")))["status"] == 200


@pytest.mark.parametrize(
    "case", [("concurrency", "t/fetch/1"), ("host_concurrency", "t/other/0")], ids=str
)
async def test_exchanges_wait_for_a_free_slot(
    manifest: ManifestFactory,
    fetcher: Path,
    configure: Configure,
    web: TestServer,
    case: tuple[str, str],
) -> None:
    # Two instances of one component share its slots; every component shares the host's.
    setting, second = case
    async with Host.open(configure(**{setting: 1})) as host:
        extra = grant(f"127.0.0.1:{web.port}")
        for cid in ("t/fetch/0", second):
            await host.start(manifest(cid, fetcher, extra=extra, timeout_ms=30_000))
        holding = asyncio.create_task(fetch(host, "t/fetch/0", web.url("/hold"), timeout_ms=20_000))
        await wait_until(lambda: len(web.seen) == 1, "the first exchange to reach the server")

        waited = await fetch(host, second, web.url("/ok"), timeout_ms=300)

        assert waited == {"error": "timeout", "detail": None}
        assert [seen.path for seen in web.seen] == ["/hold"]
        web.release()
        assert (await holding)["body"] == "held"
        assert (await fetch(host, second, web.url("/ok")))["status"] == 200


async def test_each_exchange_spends_the_components_message_rate(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer
) -> None:
    path = manifest("t/fetch/0", fetcher, extra=grant(f"127.0.0.1:{web.port}"))
    path.write_text(path.read_text().replace("[resources]\n", "[resources]\nmessage-rate = 1\n"))
    await net_host.start(path)

    # five exchanges in one call, at one a second at most: the first passes, then a refusal
    answers = await fetch(net_host, "t/fetch/0", web.url("/ok"), repeat=5)

    assert answers[0]["status"] == 200
    refused = [a for a in answers if "error" in a]
    assert refused
    assert all(a["error"] == "denied" for a in refused)
    assert "message rate limit of 1/s" in refused[0]["detail"]
    assert len(web.seen) == 5 - len(refused)
    [(action, _, reason), *_] = _denials(net_host, "t/fetch/0")
    assert (action, reason.startswith("rate limit of 1/s")) == ("network.connect", True)


async def test_a_component_importing_the_client_never_runs_on_the_loop(
    net_host: Host, manifest: ManifestFactory, fetcher: Path, web: TestServer
) -> None:
    await net_host.start(manifest("t/fetch/0", fetcher))  # no grant: the import decides

    answer = await fetch(net_host, "t/fetch/0", web.url("/ok"))

    assert answer["error"] == "denied"
    [status] = [s for s in net_host.components() if str(s.id) == "t/fetch/0"]
    assert not status.placement.allowed
    assert status.placement.inline_calls == 0
