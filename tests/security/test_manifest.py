"""Loading and validating ``component.toml``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import wactor.security
from wactor._ids import ComponentId, TargetPattern
from wactor.errors import DigestMismatchError, ManifestError
from wactor.security import (
    Capabilities,
    ComponentConfig,
    Limits,
    Manifest,
    SupervisionSpec,
    load_manifest,
    verify_digest,
)

WASM = b"\x00asm\x0d\x00\x01\x00"  # contents do not matter to the loader, only existence

MINIMAL = """
[component]
id = "shop/cart/0"
wasm = "cart.wasm"
"""

FULL = """
[component]
id = "shop/cart/1"
wasm = "build/cart.wasm"
version = "1.2.0"
sha256 = "sha256:{digest}"
description = "a shopping cart"

[resources]
memory = "32MiB"
timeout-ms = 250
fuel = 500_000_000
mailbox = 16

[capabilities.messaging]
send = ["shop/**"]
request = ["shop/pricing/*"]
broadcast = []

[capabilities.storage]
quota = "10MiB"

[capabilities.filesystem]
read = ["./assets"]
write = ["{out}"]

[capabilities.network]
connect = ["API.example.com:443", "*.internal:8000-8100", "[::1]:*", "10.0.0.1:5432", "*:80"]

[capabilities.environment]
allow = ["HOME", "LANG"]

[supervision]
restart = "transient"
max-restarts = 5
within-seconds = 2.5
backoff = {{ initial-ms = 20, max-ms = 500 }}
shutdown-timeout-ms = 100
health-interval-ms = 1000
health-threshold = 2

[config]
env = {{ MODE = "test", EMPTY = "" }}
data = "hello"
"""


def write_manifest(tmp_path: Path, text: str, *, wasm: str = "cart.wasm") -> Path:
    (tmp_path / wasm).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / wasm).write_bytes(WASM)
    path = tmp_path / "component.toml"
    path.write_text(text, encoding="utf-8")
    return path


def write_full_manifest(tmp_path: Path, digest: str) -> Path:
    """FULL, with the directories it exposes created (preopens must exist)."""
    (tmp_path / "assets").mkdir()
    out = tmp_path / "elsewhere" / "out"  # an absolute path
    out.mkdir(parents=True)
    return write_manifest(tmp_path, FULL.format(digest=digest, out=out), wasm="build/cart.wasm")


def load_error(tmp_path: Path, text: str) -> ManifestError:
    path = write_manifest(tmp_path, text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    error = info.value
    message = str(error)
    assert "\n" not in message
    assert str(path) in message
    assert error.file == str(path)
    return error


def test_package_all_names_exist() -> None:
    for name in wactor.security.__all__:
        assert hasattr(wactor.security, name)


# --- valid manifests ---------------------------------------------------------------------------


def test_minimal_manifest_gets_the_documented_defaults(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, MINIMAL)
    manifest = load_manifest(path)
    assert manifest == Manifest(
        path=path.resolve(),
        id=ComponentId("shop", "cart", "0"),
        wasm=(tmp_path / "cart.wasm").resolve(),
        version="0.0.0",
        sha256=None,
        description=None,
        limits=Limits(memory_bytes=64 * 1024 * 1024, timeout_ms=1000, fuel=None, mailbox=1024),
        capabilities=Capabilities(),
        supervision=SupervisionSpec(),
        config=ComponentConfig(),
    )
    assert manifest.capabilities.storage_quota is None
    assert not manifest.capabilities.has_storage
    assert manifest.supervision == SupervisionSpec(
        restart="permanent",
        max_restarts=3,
        within_seconds=5.0,
        backoff_initial_ms=10,
        backoff_max_ms=2000,
        shutdown_timeout_ms=5000,
        health_interval_ms=None,
        health_threshold=3,
    )


def test_full_manifest_is_parsed(tmp_path: Path) -> None:
    digest = hashlib.sha256(WASM).hexdigest().upper()
    path = write_full_manifest(tmp_path, digest)
    out = tmp_path / "elsewhere" / "out"
    manifest = load_manifest(path)
    assert manifest.id == ComponentId("shop", "cart", "1")
    assert manifest.wasm == (tmp_path / "build" / "cart.wasm").resolve()
    assert manifest.version == "1.2.0"
    assert manifest.sha256 == digest.lower()
    assert manifest.description == "a shopping cart"
    assert manifest.limits == Limits(32 * 1024 * 1024, 250, 500_000_000, 16)
    caps = manifest.capabilities
    assert caps.send == (TargetPattern.parse("shop/**"),)
    assert caps.request == (TargetPattern.parse("shop/pricing/*"),)
    assert caps.broadcast == ()
    assert caps.storage_quota == 10 * 1024 * 1024
    assert caps.fs_read == ((tmp_path / "assets").resolve(),)
    assert caps.fs_write == (out.resolve(),)
    assert caps.net_connect[0] == "api.example.com:443"
    assert caps.env == ("HOME", "LANG")
    assert manifest.supervision == SupervisionSpec("transient", 5, 2.5, 20, 500, 100, 1000, 2)
    assert manifest.config == ComponentConfig(env=(("MODE", "test"), ("EMPTY", "")), data="hello")


def test_manifest_is_found_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_manifest(tmp_path, MINIMAL)
    monkeypatch.chdir(tmp_path)
    manifest = load_manifest("component.toml")
    assert manifest.path == (tmp_path / "component.toml").resolve()
    assert manifest.wasm == (tmp_path / "cart.wasm").resolve()


def test_two_segment_id_means_instance_zero(tmp_path: Path) -> None:
    manifest = load_manifest(write_manifest(tmp_path, MINIMAL.replace("shop/cart/0", "shop/cart")))
    assert manifest.id == ComponentId("shop", "cart", "0")


def test_storage_section_without_quota_grants_the_default_quota(tmp_path: Path) -> None:
    manifest = load_manifest(write_manifest(tmp_path, MINIMAL + "[capabilities.storage]\n"))
    assert manifest.capabilities.storage_quota == 10 * 1024 * 1024


def test_sizes_accept_integers_of_bytes(tmp_path: Path) -> None:
    text = MINIMAL + "[resources]\nmemory = 1048576\n[capabilities.storage]\nquota = 1\n"
    manifest = load_manifest(write_manifest(tmp_path, text))
    assert manifest.limits.memory_bytes == 1024 * 1024
    assert manifest.capabilities.storage_quota == 1


def test_backoff_as_its_own_table(tmp_path: Path) -> None:
    text = MINIMAL + "[supervision.backoff]\ninitial-ms = 0\nmax-ms = 0\n"
    manifest = load_manifest(write_manifest(tmp_path, text))
    assert (manifest.supervision.backoff_initial_ms, manifest.supervision.backoff_max_ms) == (0, 0)


def test_backoff_initial_above_default_max_raises_max_with_it(tmp_path: Path) -> None:
    text = MINIMAL + "[supervision]\nbackoff = { initial-ms = 5000 }\n"
    manifest = load_manifest(write_manifest(tmp_path, text))
    assert manifest.supervision.backoff_max_ms == 5000


# --- capabilities ------------------------------------------------------------------------------


def test_messaging_capabilities_match_patterns_per_action() -> None:
    caps = Capabilities(
        send=(TargetPattern.parse("shop/**"),),
        request=(TargetPattern.parse("shop/pricing/*"),),
    )
    cart = ComponentId.parse("shop/cart/0")
    pricing = ComponentId.parse("shop/pricing/3")
    other = ComponentId.parse("bank/vault/0")
    assert caps.allows("send", cart)
    assert caps.allows("send", pricing)
    assert not caps.allows("send", other)
    assert caps.allows("request", pricing)
    assert not caps.allows("request", cart)
    assert not caps.allows("broadcast", cart)


def test_unknown_messaging_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown messaging action"):
        Capabilities().allows("publish", ComponentId.parse("a/b/c"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("api.example.com", 443, True),
        ("API.Example.com.", 443, True),
        ("api.example.com", 80, True),  # "*:80"
        ("api.example.com", 444, False),
        ("db.internal", 8000, True),
        ("a.b.internal", 8100, True),
        ("internal", 8000, False),  # "*.internal" needs a subdomain
        ("db.internal", 8101, False),
        ("::1", 9, True),
        ("[::1]", 65535, True),
        ("0:0::1", 1, True),
        ("10.0.0.1", 5432, True),
        ("10.0.0.2", 5432, False),
        ("evil.com", 443, False),
    ],
)
def test_network_capability_matches_host_and_port(
    tmp_path: Path, host: str, port: int, allowed: bool
) -> None:
    digest = hashlib.sha256(WASM).hexdigest()
    manifest = load_manifest(write_full_manifest(tmp_path, digest))
    assert manifest.capabilities.allows_connect(host, port) is allowed


def test_no_network_patterns_means_no_sockets() -> None:
    assert not Capabilities().allows_connect("127.0.0.1", 80)


# --- digests -----------------------------------------------------------------------------------


def test_verify_digest_returns_hex_when_unpinned(tmp_path: Path) -> None:
    manifest = load_manifest(write_manifest(tmp_path, MINIMAL))
    assert verify_digest(manifest, WASM) == hashlib.sha256(WASM).hexdigest()


def test_verify_digest_accepts_the_pinned_bytes(tmp_path: Path) -> None:
    digest = hashlib.sha256(WASM).hexdigest()
    text = MINIMAL + f'sha256 = "{digest}"\n'
    manifest = load_manifest(write_manifest(tmp_path, text))
    assert verify_digest(manifest, WASM) == digest


def test_verify_digest_refuses_other_bytes_in_one_line(tmp_path: Path) -> None:
    pinned = hashlib.sha256(b"something else").hexdigest()
    path = write_manifest(tmp_path, MINIMAL + f'sha256 = "sha256:{pinned}"\n')
    manifest = load_manifest(path)
    with pytest.raises(DigestMismatchError) as info:
        verify_digest(manifest, WASM)
    message = str(info.value)
    assert "\n" not in message
    assert str(path.resolve()) in message
    assert "component.sha256" in message
    assert pinned[:12] in message
    assert hashlib.sha256(WASM).hexdigest()[:12] in message
    assert pinned not in message  # shortened
    assert info.value.component == "shop/cart/0"


# --- bad input: one test per class -------------------------------------------------------------


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[component]\nid = "a/b/c"\nwasm = \n')
    assert "invalid TOML" in str(error)
    assert "line 3" in str(error)
    assert "column" in str(error)


def test_duplicate_key_is_invalid_toml(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + 'id = "x/y/z"\n')
    assert "line 5" in str(error)


def test_non_utf8_file(tmp_path: Path) -> None:
    error = load_error(tmp_path, "")
    path = Path(error.file or "")
    path.write_bytes(b'[component]\nid = "\xff"\n')
    with pytest.raises(ManifestError, match="UTF-8"):
        load_manifest(path)


def test_unknown_top_level_table(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "[resource]\nmemory = 1\n")
    assert error.key == "resource"
    assert "unknown table" in str(error)
    assert "did you mean 'resources'" in str(error)
    assert error.expected is not None
    assert "resources" in error.expected


def test_unknown_nested_key_is_named_with_dots(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + '[resources]\nmemroy = "1MiB"\n')
    assert error.key == "resources.memroy"
    assert "resources.memroy" in str(error)
    assert "memory" in str(error)


def test_unknown_key_deep_inside_an_inline_table(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "[supervision]\nbackoff = { initial = 1 }\n")
    assert error.key == "supervision.backoff.initial"


def test_unknown_capability_kind(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "[capabilities.gpu]\n")
    assert error.key == "capabilities.gpu"


def test_missing_component_table(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[resources]\nmailbox = 1\n")
    assert error.key == "component"


def test_missing_id(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[component]\nwasm = "cart.wasm"\n')
    assert error.key == "component.id"
    assert "missing" in str(error)


@pytest.mark.parametrize("bad_id", ["shop", "shop/cart/0/extra", "shop/*/0", "shop//0", "a b/c/d"])
def test_bad_id(tmp_path: Path, bad_id: str) -> None:
    error = load_error(tmp_path, MINIMAL.replace("shop/cart/0", bad_id))
    assert error.key == "component.id"
    assert "namespace/name/instance" in str(error)


def test_wrong_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + '[resources]\ntimeout-ms = "1000"\n')
    assert error.key == "resources.timeout-ms"
    assert "got string" in str(error)
    assert "integer" in str(error)


def test_boolean_is_not_an_integer(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "[resources]\nmailbox = true\n")
    assert error.key == "resources.mailbox"


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'resources = "big"\n' + MINIMAL)
    assert error.key == "resources"
    assert "table" in str(error)


@pytest.mark.parametrize("size", ['"64XB"', '"lots"', '"-1MiB"', '"1.5B"', "1.5", '""', "-5"])
def test_bad_size(tmp_path: Path, size: str) -> None:
    error = load_error(tmp_path, MINIMAL + f"[resources]\nmemory = {size}\n")
    assert error.key == "resources.memory"
    assert "64KiB" in str(error)  # what is expected


def test_memory_below_one_wasm_page(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + '[resources]\nmemory = "63KiB"\n')
    assert error.key == "resources.memory"
    assert "too small" in str(error)


@pytest.mark.parametrize(
    ("key", "value"),
    [("timeout-ms", "0"), ("mailbox", "0"), ("fuel", "0"), ("timeout-ms", "-1")],
)
def test_resource_numbers_must_be_positive(tmp_path: Path, key: str, value: str) -> None:
    error = load_error(tmp_path, MINIMAL + f"[resources]\n{key} = {value}\n")
    assert error.key == f"resources.{key}"
    assert ">= 1" in str(error)


def test_storage_quota_must_be_positive(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "[capabilities.storage]\nquota = 0\n")
    assert error.key == "capabilities.storage.quota"


@pytest.mark.parametrize("pattern", ["shop", "**/cart", "shop/**/x", "shop/c@rt/*", ""])
def test_bad_target_pattern_is_named_by_index(tmp_path: Path, pattern: str) -> None:
    text = MINIMAL + f'[capabilities.messaging]\nsend = ["shop/**", "{pattern}"]\n'
    error = load_error(tmp_path, text)
    assert error.key == "capabilities.messaging.send[1]"


def test_pattern_list_item_of_wrong_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "[capabilities.messaging]\nrequest = [1]\n")
    assert error.key == "capabilities.messaging.request[0]"


@pytest.mark.parametrize(
    "pattern",
    ["example.com", "example.com:0", "example.com:70000", "ex ample.com:80", "[::1:80",
     "[nothex]:80", "*.:80", "host:8100-8000", "host:abc", "-bad.com:80", "[fe80::1%eth0]:80"],
)  # fmt: skip
def test_bad_network_pattern(tmp_path: Path, pattern: str) -> None:
    text = MINIMAL + f'[capabilities.network]\nconnect = ["{pattern}"]\n'
    error = load_error(tmp_path, text)
    assert error.key == "capabilities.network.connect[0]"
    assert "host:port" in str(error)


def test_bad_environment_variable_name(tmp_path: Path) -> None:
    text = MINIMAL + '[capabilities.environment]\nallow = ["PATH", "1BAD"]\n'
    error = load_error(tmp_path, text)
    assert error.key == "capabilities.environment.allow[1]"


def test_filesystem_path_must_not_be_empty(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + '[capabilities.filesystem]\nread = [""]\n')
    assert error.key == "capabilities.filesystem.read[0]"


def test_missing_wasm_file_names_component_wasm(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL.replace("cart.wasm", "missing.wasm"))
    assert error.key == "component.wasm"
    assert "not found" in str(error)
    assert "missing.wasm" in str(error)


def test_wasm_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.wasm").mkdir()
    error = load_error(tmp_path, MINIMAL.replace("cart.wasm", "dir.wasm"))
    assert error.key == "component.wasm"


@pytest.mark.parametrize("digest", ["abc", "sha256:" + "g" * 64, "md5:" + "0" * 64, "0" * 65])
def test_bad_sha256(tmp_path: Path, digest: str) -> None:
    error = load_error(tmp_path, MINIMAL + f'sha256 = "{digest}"\n')
    assert error.key == "component.sha256"
    assert "64 hex" in str(error)


def test_empty_version(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + 'version = " "\n')
    assert error.key == "component.version"


def test_bad_restart_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + '[supervision]\nrestart = "always"\n')
    assert error.key == "supervision.restart"
    assert "permanent, transient, temporary" in str(error)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("max-restarts = -1", "supervision.max-restarts"),
        ("within-seconds = 0", "supervision.within-seconds"),
        ("within-seconds = nan", "supervision.within-seconds"),
        ("within-seconds = inf", "supervision.within-seconds"),
        ("shutdown-timeout-ms = 0", "supervision.shutdown-timeout-ms"),
        ("health-interval-ms = 0", "supervision.health-interval-ms"),
        ("health-threshold = 0", "supervision.health-threshold"),
        ("backoff = { initial-ms = -1 }", "supervision.backoff.initial-ms"),
        ("backoff = { initial-ms = 100, max-ms = 50 }", "supervision.backoff.max-ms"),
        ("backoff = 10", "supervision.backoff"),
    ],
)
def test_bad_supervision_numbers(tmp_path: Path, line: str, key: str) -> None:
    error = load_error(tmp_path, MINIMAL + f"[supervision]\n{line}\n")
    assert error.key == key


def test_config_env_values_must_be_strings(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "[config]\nenv = { PORT = 80 }\n")
    assert error.key == "config.env.PORT"


def test_config_env_names_must_not_contain_equals(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + '[config]\nenv = { "A=B" = "x" }\n')
    assert error.key == "config.env.A=B"


def test_config_data_must_be_a_string(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "[config]\ndata = [1, 2]\n")
    assert error.key == "config.data"


def test_values_in_messages_stay_on_one_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + '[supervision]\nrestart = """a\nb"""\n')
    assert error.key == "supervision.restart"


@pytest.mark.parametrize("component_id", ["wactor/host/0", "wactor/anything/1", "WACTOR/x/0"])
def test_ids_in_the_wactor_namespace_are_reserved_for_the_host(
    tmp_path: Path, component_id: str
) -> None:
    error = load_error(tmp_path, MINIMAL.replace("shop/cart/0", component_id))
    assert error.key == "component.id"
    assert "reserved for the host" in str(error)


@pytest.mark.parametrize("action", ["read", "write"])
def test_filesystem_directory_must_exist(tmp_path: Path, action: str) -> None:
    text = MINIMAL + f'[capabilities.filesystem]\n{action} = ["./no-such-dir"]\n'
    error = load_error(tmp_path, text)
    assert error.key == f"capabilities.filesystem.{action}[0]"
    assert "directory not found" in str(error)
    assert str(tmp_path / "no-such-dir") in str(error)


def test_filesystem_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    error = load_error(tmp_path, MINIMAL + '[capabilities.filesystem]\nread = ["notes.txt"]\n')
    assert error.key == "capabilities.filesystem.read[0]"
    assert "not a directory" in str(error)


@pytest.mark.parametrize(
    "path", ["~no-such-user-here/x", "loop", "x" * 300], ids=["no-such-user", "loop", "too-long"]
)
def test_unresolvable_filesystem_path_is_one_line(tmp_path: Path, path: str) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    error = load_error(tmp_path, MINIMAL + f'[capabilities.filesystem]\nread = ["{path}"]\n')
    assert error.key == "capabilities.filesystem.read[0]"


def test_number_past_the_float_range(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "[supervision]\nwithin-seconds = 1" + "0" * 400 + "\n")
    assert error.key == "supervision.within-seconds"
    assert "out of range" in str(error)


def test_key_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + '[resources]\n"time\\nout" = 1\n')
    assert error.key == 'resources."time\\nout"'


def test_deeply_nested_toml_is_invalid_not_a_crash(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "[config]\ndata = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in str(error)


def test_file_over_a_mebibyte_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "# " + "x" * (1024 * 1024) + "\n")
    assert "larger than 1MiB" in str(error)


def test_manifest_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "component.toml"
    os.mkfifo(fifo)
    with pytest.raises(ManifestError) as info:
        load_manifest(fifo)
    assert str(info.value) == f"{fifo}: not a regular file"


def test_manifest_path_with_a_nul_is_a_manifest_error() -> None:
    with pytest.raises(ManifestError, match="cannot read file"):
        load_manifest("component\0.toml")
