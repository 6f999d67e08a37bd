"""Loading and validating the host config (``wactor.toml``)."""

from __future__ import annotations

from pathlib import Path

import pytest

import wactor.host
from httpserver import make_test_ca
from wactor.errors import HostConfigError
from wactor.host import (
    BrokerConfig,
    HostConfig,
    HostSupervision,
    HttpConfig,
    TrustConfig,
    load_host_config,
)

DIGEST = "ab" * 32
OTHER_DIGEST = "cd" * 32

FULL = f"""
state-dir = "state"
dev = true
components = ["echo/component.toml", "cart/component.toml"]
cache-dir = "~/.cache/wactor-test"
storage = "memory"
max-payload = "1MiB"
log-level = "debug"

[broker]
type = "nats"
url = "nats://127.0.0.1:4333, tls://nats.example.com"
lattice = "prod-1"

[supervision]
strategy = "rest_for_one"
max-restarts = 10
within-seconds = 60

[trust]
keys = ["keys/release.pub"]
digests = ["sha256:{DIGEST.upper()}", "{OTHER_DIGEST}"]
paths = ["./components", "/opt/wactor"]
"""


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wactor.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> HostConfigError:
    path = write_config(tmp_path, text)
    with pytest.raises(HostConfigError) as info:
        load_host_config(path)
    error = info.value
    assert "\n" not in str(error)
    assert str(path) in str(error)
    assert error.file == str(path)
    return error


def test_package_all_names_exist() -> None:
    for name in wactor.host.__all__:
        assert hasattr(wactor.host, name)


# --- valid configs -----------------------------------------------------------------------------


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    config = load_host_config(path)
    assert config == HostConfig(
        path=path.resolve(),
        state_dir=(tmp_path / ".wactor").resolve(),
        dev=False,
        components=(),
        broker=BrokerConfig(type="memory", url=None, lattice="default"),
        supervision=HostSupervision(strategy="one_for_one", max_restarts=3, within_seconds=5.0),
        trust=TrustConfig(keys=(), digests=(), paths=()),
        cache_dir=None,
        storage="sqlite",
        max_payload_bytes=16 * 1024 * 1024,
        log_level="info",
    )


def test_full_config_is_parsed_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "release.pub").write_text(
        "a key file must exist; its contents are read later"
    )
    config = load_host_config(write_config(tmp_path, FULL))
    base = tmp_path.resolve()
    assert config.state_dir == base / "state"
    assert config.dev is True
    assert config.components == (
        base / "echo" / "component.toml",
        base / "cart" / "component.toml",
    )
    assert config.cache_dir == (Path.home() / ".cache" / "wactor-test").resolve()
    assert config.storage == "memory"
    assert config.max_payload_bytes == 1024 * 1024
    assert config.log_level == "debug"
    assert config.broker == BrokerConfig(
        "nats", "nats://127.0.0.1:4333, tls://nats.example.com", "prod-1"
    )
    assert config.supervision == HostSupervision("rest_for_one", 10, 60.0)
    assert config.trust == TrustConfig(
        keys=(base / "keys" / "release.pub",),
        digests=(DIGEST, OTHER_DIGEST),
        paths=(base / "components", Path("/opt/wactor")),
    )


def test_nats_broker_without_url_uses_the_local_default(tmp_path: Path) -> None:
    config = load_host_config(write_config(tmp_path, '[broker]\ntype = "nats"\n'))
    assert config.broker.url == "nats://127.0.0.1:4222"


def test_missing_component_manifests_are_not_an_error_at_load(tmp_path: Path) -> None:
    config = load_host_config(write_config(tmp_path, 'components = ["nowhere/component.toml"]\n'))
    assert config.components == (tmp_path.resolve() / "nowhere" / "component.toml",)


def test_absolute_state_dir_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    config = load_host_config(write_config(tmp_path, f'state-dir = "{target}"\n'))
    assert config.state_dir == target.resolve()


def test_default_config_without_a_file(tmp_path: Path) -> None:
    config = HostConfig.default(tmp_path / "state")
    assert config.path is None
    assert config.state_dir == (tmp_path / "state").resolve()
    assert config.broker.type == "memory"
    assert config.storage == "sqlite"
    assert config.components == ()


def test_config_is_found_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "components = ['a/component.toml']\n")
    monkeypatch.chdir(tmp_path)
    config = load_host_config("wactor.toml")
    assert config.path == (tmp_path / "wactor.toml").resolve()
    assert config.components == ((tmp_path / "a" / "component.toml").resolve(),)


# --- bad input: one test per class -------------------------------------------------------------


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(HostConfigError) as info:
        load_host_config(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'dev = false\n[broker\ntype = "nats"\n')
    assert "line 2" in str(error)
    assert "column" in str(error)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'state_dir = "x"\n')
    assert error.key == "state_dir"
    assert "did you mean 'state-dir'" in str(error)


def test_unknown_table(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[brokers]\n")
    assert error.key == "brokers"
    assert "unknown table" in str(error)


def test_unknown_nested_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[broker]\nurls = "nats://x"\n')
    assert error.key == "broker.urls"


def test_wrong_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'dev = "yes"\n')
    assert error.key == "dev"
    assert "true or false" in str(error)


def test_components_must_be_a_list_of_strings(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'components = ["a.toml", 3]\n')
    assert error.key == "components[1]"


def test_component_listed_twice(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'components = ["a/component.toml", "./a/component.toml"]\n')
    assert error.key == "components[1]"
    assert "twice" in str(error)


def test_bad_broker_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[broker]\ntype = "kafka"\n')
    assert error.key == "broker.type"
    assert "memory, nats" in str(error)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:4222", "nats://", "127.0.0.1:4222", "nats://h:99999", "nats://h:0"]
)
def test_bad_broker_url(tmp_path: Path, url: str) -> None:
    error = load_error(tmp_path, f'[broker]\ntype = "nats"\nurl = "{url}"\n')
    assert error.key == "broker.url"


@pytest.mark.parametrize("lattice", ["a.b", "a b", "*", ">", ""])
def test_bad_lattice_name(tmp_path: Path, lattice: str) -> None:
    error = load_error(tmp_path, f'[broker]\nlattice = "{lattice}"\n')
    assert error.key == "broker.lattice"


def test_bad_strategy(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[supervision]\nstrategy = "one-for-one"\n')
    assert error.key == "supervision.strategy"
    assert "one_for_one" in str(error)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("max-restarts = -1", "supervision.max-restarts"),
        ("within-seconds = 0", "supervision.within-seconds"),
        ("within-seconds = -2.5", "supervision.within-seconds"),
    ],
)
def test_bad_supervision_numbers(tmp_path: Path, line: str, key: str) -> None:
    error = load_error(tmp_path, f"[supervision]\n{line}\n")
    assert error.key == key


def test_bad_trust_digest(tmp_path: Path) -> None:
    error = load_error(tmp_path, f'[trust]\ndigests = ["sha256:{DIGEST}", "sha1:abc"]\n')
    assert error.key == "trust.digests[1]"
    assert "64 hex" in str(error)


def test_bad_trust_path(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[trust]\nkeys = [""]\n')
    assert error.key == "trust.keys[0]"


@pytest.mark.parametrize("value", ['"huge"', "0", '"0B"'])
def test_bad_max_payload(tmp_path: Path, value: str) -> None:
    error = load_error(tmp_path, f"max-payload = {value}\n")
    assert error.key == "max-payload"


def test_bad_storage_kind(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'storage = "redis"\n')
    assert error.key == "storage"
    assert "sqlite, memory" in str(error)


def test_bad_log_level(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'log-level = "verbose"\n')
    assert error.key == "log-level"


def test_trust_key_file_must_exist(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[trust]\nkeys = ["keys/missing.pub"]\n')
    assert error.key == "trust.keys[0]"
    assert "file not found" in str(error)


@pytest.mark.parametrize("name", ["state-dir", "cache-dir"])
def test_state_and_cache_dir_cannot_be_below_a_file(tmp_path: Path, name: str) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    error = load_error(tmp_path, f'{name} = "a-file/sub"\n')
    assert error.key == name
    assert "not a directory" in str(error)


def test_the_http_table_sets_the_guests_client(tmp_path: Path) -> None:
    make_test_ca(tmp_path / "certs")
    path = write_config(
        tmp_path,
        '[http]\ntimeout-ms = 500\nmax-timeout-ms = 2000\nmax-response = "4MiB"\n'
        'max-request = "64KiB"\nconcurrency = 2\nhost-concurrency = 8\nca-file = "certs/ca.pem"\n',
    )

    assert load_host_config(path).http == HttpConfig(
        timeout_ms=500,
        max_timeout_ms=2000,
        max_response_bytes=4 << 20,
        max_request_bytes=64 << 10,
        concurrency=2,
        host_concurrency=8,
        ca_file=tmp_path / "certs" / "ca.pem",
    )
    assert load_host_config(write_config(tmp_path, "")).http == HttpConfig()


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("timeout-ms = 5000\nmax-timeout-ms = 1000", "http.timeout-ms", "more than max-timeout"),
        ("concurrency = 0", "http.concurrency", ""),
        ('max-response = "0B"', "http.max-response", ""),
        ('ca-file = "missing.pem"', "http.ca-file", "file not found"),
        ('ca-file = "wactor.toml"', "http.ca-file", "no certificates read"),
        ("proxy = true", "http.proxy", ""),
    ],
)
def test_a_bad_http_setting_names_its_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    error = load_error(tmp_path, f"[http]\n{text}\n")
    assert error.key == key
    assert words in str(error)
