"""``[observe]`` in the host config: where the endpoint listens, loopback unless allowed."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from observe_client import fetch
from wactor.errors import HostConfigError
from wactor.host import Host, HostConfig, ObserveConfig, load_host_config
from wactor.host._listen import ListenAddress, observe_config, parse_listen


def _load(tmp_path: Path, observe: str) -> HostConfig:
    path = tmp_path / "wactor.toml"
    path.write_text(f"[observe]\n{observe}\n")
    return load_host_config(path)


def test_no_observe_table_serves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "wactor.toml"
    path.write_text("")
    assert load_host_config(path).observe == ObserveConfig(None, allow_remote=False)


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:9464", "127.0.0.1", 9464),
        ("localhost:9464", "127.0.0.1", 9464),
        ("LOCALHOST:1", "127.0.0.1", 1),
        ("[::1]:9464", "::1", 9464),
        ("127.0.0.2:0", "127.0.0.2", 0),
    ],
)
def test_listen_on_a_loopback_address(tmp_path: Path, text: str, host: str, port: int) -> None:
    config = _load(tmp_path, f'listen = "{text}"')
    assert config.observe.listen == ListenAddress(host, port)
    assert config.observe.listen.loopback


@pytest.mark.parametrize("address", ["0.0.0.0:9464", "[::]:9464", "192.0.2.7:9464"])
def test_an_address_that_is_not_loopback_is_refused_unless_allowed(
    tmp_path: Path, address: str
) -> None:
    with pytest.raises(HostConfigError) as info:
        _load(tmp_path, f'listen = "{address}"')
    assert info.value.key == "observe.listen"
    assert "not a loopback address" in str(info.value)
    assert "allow-remote" in str(info.value)
    assert "\n" not in str(info.value)
    allowed = _load(tmp_path, f'listen = "{address}"\nallow-remote = true')
    assert allowed.observe.allow_remote
    assert allowed.observe.listen == parse_listen(address)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9464", "not HOST:PORT"),
        (":9464", "not HOST:PORT"),
        ("127.0.0.1:", "port must be a number"),
        ("127.0.0.1:http", "port must be a number"),
        ("127.0.0.1:65536", "port must be a number"),
        ("127.0.0.1:-1", "port must be a number"),
        ("127.0.0.1:٩٤٦٤", "port must be a number"),  # digits, but not ASCII ones
        ("::1:9464", "in brackets"),
        ("example.com:9464", "not an IP address"),
        ("127.1:9464", "not an IP address"),
    ],
)
def test_a_bad_listen_address_is_one_line_naming_the_key(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(HostConfigError) as info:
        _load(tmp_path, f'listen = "{text}"')
    assert info.value.key == "observe.listen"
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_observe_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(HostConfigError) as info:
        _load(tmp_path, 'listen = "127.0.0.1:0"\nallow_remote = true')
    assert info.value.key == "observe.allow_remote"
    assert "allow-remote" in str(info.value)


def test_listen_must_be_a_string(tmp_path: Path) -> None:
    with pytest.raises(HostConfigError) as info:
        _load(tmp_path, "listen = 9464")
    assert info.value.key == "observe.listen"


async def test_an_allowed_remote_address_serves_with_a_warning(
    host_config: HostConfig, caplog: pytest.LogCaptureFixture
) -> None:
    config = dataclasses.replace(
        host_config, observe=observe_config("0.0.0.0:0", allow_remote=True)
    )
    with caplog.at_level(logging.WARNING, logger="wactor.observe"):
        async with Host.open(config) as host:
            assert host.observer is not None
            assert host.observer.url is not None
            port = host.observer.url.rstrip("/").rsplit(":", 1)[1]
            # any name is answered: the operator chose to serve beyond this machine
            reply = await fetch(
                f"http://127.0.0.1:{port}/", "/api/status", headers={"Host": "ops.example:1"}
            )
            assert reply.status == 200
    (warning,) = [r for r in caplog.records if r.name == "wactor.observe"]
    assert "not a loopback address" in warning.getMessage()


async def test_an_address_in_use_is_one_clear_error(host_config: HostConfig) -> None:
    config = dataclasses.replace(
        host_config, observe=observe_config("127.0.0.1:0", allow_remote=False)
    )
    async with Host.open(config) as first:
        assert first.observer is not None
        assert first.observer.url is not None
        taken = first.observer.url.removeprefix("http://").rstrip("/")
        busy = dataclasses.replace(config, observe=observe_config(taken, allow_remote=False))
        with pytest.raises(HostConfigError) as info:
            async with Host.open(busy):
                pass
    assert info.value.key == "observe.listen"
    assert taken in str(info.value)
