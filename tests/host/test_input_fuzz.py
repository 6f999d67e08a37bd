"""Fuzz of bad input: every key of a manifest given a wrong type, range or path, bad files and bad
wasm, beside one good component.

Each must be refused on its own with one line naming the file and the key (exit code 2), through
the Python API and the CLI, while the good component starts and answers. The cases are
generated from the manifest's schema; all of them run in one host (and one ``wactor run``) so
the file stays fast, and ``wactor call`` runs on a representative sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import wasmtime

from conftest import TRUSTED, wat_binary
from wactor.errors import WactorError
from wactor.host import Host, load_host_config

GOOD_ID = "fz/good/0"
HERE = Path("/HERE")  # in a generated value: the folder of the case
CORE_MODULE = bytes(wasmtime.wat2wasm('(module (func (export "f")))'))

# --- TOML text from nested dicts of literal values --------------------------------------------


class Lit(str):
    """A TOML value as written in the file (``42``, ``"text"``, ``[1]``)."""


def _s(text: str) -> Lit:
    """A TOML basic string holding ``text`` (JSON escapes are TOML escapes)."""
    return Lit(json.dumps(text))


def _key(name: str) -> str:
    return name if name.replace("-", "").replace("_", "").isalnum() else json.dumps(name)


def emit(table: dict[str, object], path: tuple[str, ...] = ()) -> str:
    """Render a table of ``Lit`` values and sub-tables as TOML (sub-tables as [sections])."""
    lines = [f"{_key(k)} = {v}" for k, v in table.items() if isinstance(v, Lit)]
    out = [f"[{'.'.join(_key(p) for p in path)}]"] if path and lines else []
    out += lines
    for name, value in table.items():
        if isinstance(value, dict):
            out.append(emit(value, (*path, name)))
    return "\n".join(out) + "\n"


def base_manifest(component_id: str, assets: Path) -> dict[str, object]:
    """A manifest that sets every key to a valid value (the good component uses it as is)."""
    return {
        "component": {
            "id": _s(component_id),
            "wasm": _s(str(wat_binary("echo"))),
            "version": _s("1.0.0"),
            "description": _s("fuzz"),
        },
        "resources": {
            "memory": _s("32MiB"),
            "timeout-ms": Lit("2000"),
            "fuel": Lit("1_000_000_000"),
            "mailbox": Lit("16"),
            "backpressure": _s("reject"),
            "message-rate": Lit("100"),
            "message-burst": Lit("10"),
        },
        "capabilities": {
            "messaging": {
                "send": Lit('["fz/**"]'),
                "request": Lit('["fz/x/*"]'),
                "broadcast": Lit("[]"),
                "publish": Lit('["fz.events"]'),
                "subscribe": Lit('["fz.*"]'),
            },
            "storage": {"quota": _s("1MiB")},
            "filesystem": {"read": Lit(f"[{_s(str(assets))}]"), "write": Lit("[]")},
            "environment": {"allow": Lit('["HOME"]')},
        },
        "supervision": {
            "restart": _s("permanent"),
            "max-restarts": Lit("3"),
            "within-seconds": Lit("5"),
            "backoff": {"initial-ms": Lit("10"), "max-ms": Lit("100")},
            "shutdown-timeout-ms": Lit("1000"),
            "health-threshold": Lit("3"),
        },
        "config": {"data": _s("x"), "env": {"MODE": _s("fuzz")}},
    }


# --- what is wrong ------------------------------------------------------------------------------

_NOT_STRINGS = ["42", "true", "1.5", "[1]", "{ a = 1 }", "1979-05-27"]
_NOT_INTS = ['"12"', "true", "1.5", "[1]", "{ a = 1 }", "nan", "inf", "99999999999999999999999"]
_NOT_LISTS = ["42", '"a"', "{ a = 1 }", "[1]", '[["a"]]', "[{ a = 1 }]"]


def _bad_values(kind: str, where: Path) -> list[str]:
    """Wrong TOML values for a key of ``kind``; ``where`` holds files the paths point at."""
    a_file = where / "a-file.txt"
    loop = where / "loop"
    long_name = "x" * 300
    paths = [_s(""), _s("\0x"), _s("~nobody-such-user/x"), _s(str(loop)), _s(long_name)]
    values = {
        "string": _NOT_STRINGS,
        "id": [
            *_NOT_STRINGS,
            *map(_s, ["", "a/b/c/d", "../x/y", "a b/c/d", "*/x/0", "fz/x/\n"]),
            *map(_s, ["wactor/host/0", "wactor/x/1", "Wactor/evil/0"]),
        ],
        "wasm": [*_NOT_STRINGS, *paths, _s("missing.wasm"), _s("."), _s(str(a_file) + "/x")],
        "version": [*_NOT_STRINGS, _s(""), _s("  "), _s("1.0\n(healthy)"), _s("9" * 65)],
        "sha256": [*_NOT_STRINGS, _s("xyz"), _s("sha256:abc"), _s("sha1:" + "a" * 40)],
        "int1": [*_NOT_INTS, "0", "-1", "-9223372036854775808"],
        "int0": [*_NOT_INTS, "-1"],
        "size": [
            *map(_s, ["12 parsecs", "", "-1MiB", "1.5B", "99999999999TiB", "64 MiB MiB", "0B"]),
            "-5",
            "true",
            "[]",
            "{}",
            "1.5",
            "nan",
        ],
        "choice": ['"forever"', "1", "[]", '""', '"Permanent"'],
        "number": ['"5"', "0", "-1", "nan", "inf", "-inf", "true", "[]", "1" + "0" * 400],
        "targets": [*_NOT_LISTS, *(f"[{_s(p)}]" for p in ["a/b/c/d", "**/x/y", "", "a b/c/d"])],
        "topics": [*_NOT_LISTS, *(f"[{_s(p)}]" for p in ["a..b", "#.x", "", "a b"])],
        "dirs": [
            *_NOT_LISTS,
            *(f"[{p}]" for p in paths),
            f"[{_s(str(where / 'nope'))}]",
            f"[{_s(str(a_file))}]",
            '["./assets-missing"]',
        ],
        "connect": [*_NOT_LISTS, *(f"[{_s(p)}]" for p in ["nohost", "a:99999", "[zz]:1", "a:0"])],
        "envnames": [*_NOT_LISTS, *(f"[{_s(p)}]" for p in ["1BAD", "A-B", "", "A\nB"])],
        "envmap": [
            "42",
            '"x"',
            "[1]",
            "{ A = 1 }",
            '{ "A=B" = "x" }',
            '{ "" = "x" }',
            '{ A = "\\u0000" }',
            '{ "A\\n=" = "x" }',
            '{ A = { B = "x" } }',
        ],
        "table": ["5", '"x"', "[1]", "true"],
    }[kind]
    return [Lit(v) for v in values]


SCHEMA = {
    "component.id": "id",
    "component.wasm": "wasm",
    "component.version": "version",
    "component.sha256": "sha256",
    "component.description": "string",
    "resources.memory": "size",
    "resources.timeout-ms": "int1",
    "resources.fuel": "int1",
    "resources.mailbox": "int1",
    "resources.backpressure": "choice",
    "resources.message-rate": "int1",
    "resources.message-burst": "int1",
    "capabilities.messaging.send": "targets",
    "capabilities.messaging.request": "targets",
    "capabilities.messaging.broadcast": "targets",
    "capabilities.messaging.publish": "topics",
    "capabilities.messaging.subscribe": "topics",
    "capabilities.storage.quota": "size",
    "capabilities.filesystem.read": "dirs",
    "capabilities.filesystem.write": "dirs",
    "capabilities.network.connect": "connect",
    "capabilities.environment.allow": "envnames",
    "supervision.restart": "choice",
    "supervision.max-restarts": "int0",
    "supervision.within-seconds": "number",
    "supervision.backoff.initial-ms": "int0",
    "supervision.backoff.max-ms": "int0",
    "supervision.shutdown-timeout-ms": "int1",
    "supervision.health-interval-ms": "int1",
    "supervision.health-threshold": "int1",
    "config.env": "envmap",
    "config.data": "string",
}
TABLES = [
    "component",
    "resources",
    "capabilities",
    "capabilities.messaging",
    "capabilities.storage",
    "capabilities.filesystem",
    "capabilities.network",
    "capabilities.environment",
    "supervision",
    "supervision.backoff",
    "config",
]


@dataclass
class Case:
    """One bad component: its manifest, and what its error must name."""

    label: str
    manifest: Path
    names: str  # the file the error must name (the manifest, or the wasm for wasm errors)
    key: str | None  # the dotted key the error must name, if the problem sits at a key

    @property
    def folder(self) -> str:
        return str(self.manifest.parent) + os.sep


class Cases:
    """Writes each case into a folder of its own, with an id of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.assets = root / "assets"
        self.assets.mkdir(parents=True)
        self.items: list[Case] = []

    def _folder(self) -> tuple[Path, str]:
        n = len(self.items)
        folder = self.root / f"c{n:03d}"
        folder.mkdir()
        (folder / "a-file.txt").write_text("not a directory")
        (folder / "loop").symlink_to(folder / "loop")
        return folder, f"fz/c{n:03d}/0"

    def add_bytes(self, label: str, data: bytes, key: str | None = None) -> Case:
        folder, _ = self._folder()
        path = folder / "component.toml"
        path.write_bytes(data)
        case = Case(label, path, str(path), key)
        self.items.append(case)
        return case

    def add(self, label: str, table: dict[str, object], key: str | None) -> Case:
        return self.add_bytes(label, emit(table).encode(), key)

    def mutated(self, dotted: str, value: Lit | None, *, key: str | None = None) -> Case:
        """A valid manifest with ``dotted`` set to ``value`` (removed when None); ``HERE`` in
        the value stands for the case's own folder."""
        folder, component_id = self._folder()
        if value is not None:
            value = Lit(value.replace(str(HERE), str(folder)))
        table = base_manifest(component_id, self.assets)
        *parents, last = dotted.split(".")
        node = table
        for name in parents:
            node = node.setdefault(name, {})  # type: ignore[assignment]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
        path = folder / "component.toml"
        path.write_text(emit(table))
        case = Case(f"{dotted} = {value}", path, str(path), dotted if key is None else key)
        self.items.append(case)
        return case

    def bad_wasm(self, label: str, data: bytes) -> None:
        folder, component_id = self._folder()
        wasm = folder / "bad.wasm"
        wasm.write_bytes(data)
        table = base_manifest(component_id, self.assets)
        table["component"]["wasm"] = _s(str(wasm))  # type: ignore[index]
        path = folder / "component.toml"
        path.write_text(emit(table))
        self.items.append(Case(label, path, str(wasm), None))


def generate(root: Path) -> list[Case]:
    cases = Cases(root)
    for dotted, kind in SCHEMA.items():
        for value in _bad_values(kind, HERE):
            cases.mutated(dotted, value)
    for dotted in TABLES:
        for value in _bad_values("table", root):
            cases.mutated(dotted, value)
    for dotted in ["component.id", "component.wasm", "component"]:
        cases.mutated(dotted, None)  # missing
    for table in ["", *TABLES]:
        cases.mutated(f"{table}.bogus" if table else "bogus", Lit("1"))  # unknown keys
    cases.mutated("resources.timeout", Lit("5"))  # a near miss of timeout-ms
    cases.mutated("resources." + "k" * 100_000, Lit("1"), key="resources.kkk")  # a long key
    cases.mutated("component.id", _s("a/" * 100_000 + "b"))  # a long value
    cases.mutated('resources.bad\nkey"', Lit("1"), key="resources.")  # would break the line
    cases.mutated("supervision.backoff.max-ms", Lit("5"))  # below initial-ms
    cases.mutated("supervision.health-interval-ms", Lit("0"))

    # Whole files that are no manifest at all.
    cases.add_bytes("empty file", b"", "component")
    cases.add_bytes("bad UTF-8", b'[component]\nid = "fz/\xff\xfe/0"\n')
    cases.add_bytes("not TOML", b"this is = = not toml\n")
    cases.add_bytes("binary", bytes(range(256)) * 4)
    cases.add_bytes("duplicate key", b'[component]\nid = "a/b/0"\nid = "a/b/1"\n')
    cases.add_bytes("nested too deep", b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n")
    cases.add_bytes("too big", b"# " + b"x" * (2 * 1024 * 1024) + b"\n")
    missing = cases.add_bytes("manifest missing", b"")
    missing.manifest.unlink()
    a_dir = cases.add_bytes("manifest is a directory", b"")
    a_dir.manifest.unlink()
    a_dir.manifest.mkdir()
    fifo = cases.add_bytes("manifest is a FIFO (reading it would block)", b"")
    fifo.manifest.unlink()
    os.mkfifo(fifo.manifest)

    # Wasm files that are not components of the world.
    echo = wat_binary("echo").read_bytes()
    cases.bad_wasm("text, not wasm", b"this is not wasm at all")
    cases.bad_wasm("empty wasm", b"")
    cases.bad_wasm("magic only", b"\x00asm")
    cases.bad_wasm("truncated component", echo[: len(echo) // 2])
    cases.bad_wasm("component header, garbage body", echo[:8] + os.urandom(512))
    cases.bad_wasm("core module", CORE_MODULE)
    cases.bad_wasm("missing handle-message", wat_binary("missing_export").read_bytes())
    cases.mutated("component.id", _s(GOOD_ID))  # already running: last, after the good one
    return cases.items


# --- checks ---------------------------------------------------------------------------------------


def problem_with(case: Case, error: BaseException | None) -> str | None:
    """Say what is wrong with the error a case got, or None if it is the expected one line."""
    if not isinstance(error, WactorError):
        return f"not a WactorError: {error!r}"
    text = str(error)
    if error.exit_code != 2:
        return f"exit code {error.exit_code}: {text}"
    if "\n" in text or "\r" in text:
        return f"more than one line: {text!r}"
    if len(text) > 3000:
        return f"a line of {len(text)} characters"
    if case.names not in text:
        return f"does not name {case.names}: {text}"
    if case.key is not None and f": {case.key.split(chr(10))[0]}" not in text:
        return f"does not name key {case.key!r}: {text}"
    return None


def write_config(directory: Path, manifests: list[Path]) -> Path:
    path = directory / "wactor.toml"
    trusted = [directory, *TRUSTED]
    path.write_text(
        f"state-dir = {_s(str(directory / 'state'))}\n"
        f"components = [{', '.join(_s(str(m)) for m in manifests)}]\n\n"
        f"[trust]\npaths = [{', '.join(_s(str(p)) for p in trusted)}]\n"
    )
    return path


def good_manifest(root: Path) -> Path:
    folder = root / "good"
    folder.mkdir()
    (folder / "assets").mkdir()
    path = folder / "component.toml"
    path.write_text(emit(base_manifest(GOOD_ID, folder / "assets")))
    return path


def wactor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wactor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def fuzz(tmp_path: Path) -> tuple[list[Case], Path]:
    """Every generated bad case plus the good component in the middle, in one host config."""
    cases = generate(tmp_path / "cases")
    assert len(cases) > 300
    half = len(cases) // 2
    manifests = [c.manifest for c in cases]
    manifests[half:half] = [good_manifest(tmp_path)]
    return cases, write_config(tmp_path, manifests)


async def test_every_bad_manifest_and_wasm_is_refused_alone_in_one_line(
    fuzz: tuple[list[Case], Path],
) -> None:
    cases, config = fuzz
    async with Host.open(config) as host:
        assert [str(s.id) for s in host.components()] == [GOOD_ID]
        assert await host.request(GOOD_ID, b"alive") == b"alive"
        got = {failure.manifest: failure.error for failure in host.load_failures}
        problems = [
            f"{case.label!r}: {problem}"
            for case in cases
            if (problem := problem_with(case, got.get(case.manifest))) is not None
        ]
        assert problems == []
        assert len(host.load_failures) == len(cases)


def test_wactor_run_starts_the_good_one_and_says_each_bad_one_once(
    fuzz: tuple[list[Case], Path],
) -> None:
    cases, config = fuzz
    result = wactor("run", str(config), "--once")
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert f"running {GOOD_ID} v1.0.0 (healthy)" in lines
    assert f"host ready: 1 running, {len(cases)} failed; Ctrl-C to stop" in lines
    problems = []
    for case in cases:
        said = [line for line in lines if case.folder in line]
        if len(said) != 1:
            problems.append(f"{case.label!r}: {len(said)} lines")
        elif case.key is not None and f": {case.key.split(chr(10))[0]}" not in said[0]:
            problems.append(f"{case.label!r}: key not named in {said[0]}")
    assert problems == []


SAMPLE = [
    ("component.id", Lit("42"), "fz/c000/0"),  # the id cannot be read: any missing target
    ("component.id", _s("wactor/host/0"), "wactor/host/0"),
    ("capabilities.filesystem.read", Lit('["./no-such-dir"]'), "fz/c000/0"),
    ("capabilities.filesystem.write", Lit('["a-file.txt"]'), "fz/c000/0"),
    ("supervision.within-seconds", Lit("1" + "0" * 400), "fz/c000/0"),
]


@pytest.mark.parametrize(
    ("dotted", "value", "target"), SAMPLE, ids=[f"{k}={v}"[:40] for k, v, _ in SAMPLE]
)
def test_wactor_call_of_a_bad_component_is_one_line_exit_2(
    tmp_path: Path, dotted: str, value: Lit, target: str
) -> None:
    cases = Cases(tmp_path / "cases")
    cases.mutated(dotted, value)
    (case,) = cases.items
    config = write_config(tmp_path, [case.manifest, good_manifest(tmp_path)])
    called = wactor("call", target, "hi", "--config", str(config))
    assert called.returncode == 2, called.stderr
    (line,) = called.stderr.splitlines()
    assert line.startswith(f"error: {case.manifest}: {dotted}"), line
    assert called.stdout == ""


def test_wactor_call_of_the_good_one_answers_beside_a_bad_one(tmp_path: Path) -> None:
    cases = Cases(tmp_path / "cases")
    cases.mutated("component.id", Lit("42"))
    (case,) = cases.items
    config = write_config(tmp_path, [case.manifest, good_manifest(tmp_path)])
    called = wactor("call", GOOD_ID, "hi", "--config", str(config))
    assert called.returncode == 0, called.stderr
    assert called.stdout == "hi\n"
    (warning,) = called.stderr.splitlines()
    assert warning.startswith(f"warning: {case.manifest}: component.id: got integer 42")


# --- the host config -----------------------------------------------------------------------------

HOST_SCHEMA = {
    "state-dir": "dir",
    "cache-dir": "dir",
    "dev": "bool",
    "components": "components",
    "storage": "choice",
    "storage-replicas": "replicas",
    "max-payload": "size",
    "log-level": "choice",
    "broker.type": "choice",
    "broker.url": "url",
    "broker.lattice": "lattice",
    "supervision.strategy": "choice",
    "supervision.max-restarts": "int0",
    "supervision.within-seconds": "number",
    "trust.keys": "keys",
    "trust.digests": "digests",
    "trust.paths": "paths",
}


def _host_bad_values(kind: str, where: Path) -> list[Lit]:
    a_file = where / "a-file.txt"
    a_file.write_text("not a directory")
    values = {
        "dir": [*_NOT_STRINGS, '""', _s(str(a_file)), _s(str(a_file / "sub")), '"~nobody-x/y"'],
        "bool": ['"yes"', "1", "[]"],
        "paths": [*_NOT_LISTS, '[""]'],
        "components": [*_NOT_LISTS, '[""]', '["a.toml", "./a.toml"]'],
        "choice": ['"kafka"', "1", "[]", '""'],
        "replicas": ["0", "6", '"3"', "1.5"],
        "size": ['"huge"', "0", '"0B"', "-1", "[]"],
        "url": ["1", '"http://x:1"', '"nats://"', '"nats://h:99999"', '"nats://h:0"'],
        "lattice": ["1", '"a.b"', '"*"', '""'],
        "int0": [*_NOT_INTS, "-1"],
        "number": ['"5"', "0", "nan", "inf", "1" + "0" * 400],
        "keys": [*_NOT_LISTS, '[""]', _s_list(where / "no.pub"), _s_list(where)],
        "digests": [*_NOT_LISTS, '["sha1:abc"]', '["xyz"]'],
    }[kind]
    return [Lit(v) for v in values]


def _s_list(path: Path) -> str:
    return f"[{_s(str(path))}]"


def test_every_bad_host_config_is_one_line_naming_file_and_key(tmp_path: Path) -> None:
    problems = []
    n = 0
    for dotted, kind in HOST_SCHEMA.items():
        for value in _host_bad_values(kind, tmp_path):
            n += 1
            folder = tmp_path / f"h{n:03d}"
            folder.mkdir()
            table, _, key = dotted.rpartition(".")
            text = f"[{table}]\n{key} = {value}\n" if table else f"{key} = {value}\n"
            path = folder / "wactor.toml"
            path.write_text(text)
            try:
                load_host_config(path)
            except WactorError as exc:
                error: BaseException | None = exc
            except Exception as exc:  # noqa: BLE001 - reported below as a problem
                error = exc
            else:
                error = None
            case = Case(f"{dotted} = {value}", path, str(path), dotted)
            problem = problem_with(case, error)
            if problem is not None:
                problems.append(f"{case.label!r}: {problem}")
    assert n > 80
    assert problems == []


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('state-dir = "a-file.txt/sub"\n', "state-dir"),
        ('state-dir = "/proc/no-such-dir"\n', "state-dir"),  # cannot be created
        ('[trust]\nkeys = ["missing.pub"]\n', "trust.keys"),
        ("[supervision]\nwithin-seconds = 1" + "0" * 400 + "\n", "supervision.within-seconds"),
    ],
)
def test_wactor_call_with_a_bad_host_config_is_one_line_exit_2(
    tmp_path: Path, text: str | bytes, key: str | None
) -> None:
    (tmp_path / "a-file.txt").write_text("not a directory")
    config = tmp_path / "wactor.toml"
    config.write_bytes(text.encode() if isinstance(text, str) else text)
    called = wactor("call", "fz/any/0", "hi", "--config", str(config))
    assert called.returncode == 2, called.stderr
    (line,) = called.stderr.splitlines()
    assert line.startswith(f"error: {config}: {key or ''}"), line
