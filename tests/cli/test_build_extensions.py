"""`wactor build --with …`: guests built against runtime-host plus wactor's extension worlds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli.test_call import wactor
from conftest import ROOT
from wactor.errors import BuildError
from wactor.tooling import EXTENSIONS
from wactor.tooling._build import cache_key
from wactor.tooling._worlds import extension_names, wit_dir

TOPICS_GUEST = ROOT / "tests" / "guests" / "topics" / "app.py"


def test_the_http_contract_ships_unchanged() -> None:
    shipped = ROOT / "src" / "wactor" / "wit-ext" / EXTENSIONS["http"].wit_file
    assert "package wactor:http@0.1.0;" in shipped.read_text()
    assert "fetch: func(req: request) -> result<response, http-error>;" in shipped.read_text()


def test_extension_names_are_normalised_and_unknown_ones_refused() -> None:
    assert extension_names(None) == ()
    assert extension_names("") == ()
    assert extension_names("topics,http") == ("http", "topics")
    assert extension_names(["Topics", "topics", " http "]) == ("http", "topics")
    with pytest.raises(BuildError) as info:
        extension_names("topics,ftp")
    assert str(info.value) == "unknown extension 'ftp'; known extensions: http, topics"


def test_the_cache_key_covers_the_extension_set() -> None:
    plain = cache_key(TOPICS_GUEST)
    assert cache_key(TOPICS_GUEST, with_="") == plain
    topics = cache_key(TOPICS_GUEST, with_="topics")
    assert topics != plain
    assert cache_key(TOPICS_GUEST, with_=["topics", "topics"]) == topics
    both = cache_key(TOPICS_GUEST, with_="http,topics")
    assert both not in (plain, topics)
    assert cache_key(TOPICS_GUEST, with_="topics,http") == both


def test_the_generated_world_includes_the_core_world_and_the_named_packages() -> None:
    with wit_dir(("http", "topics")) as (root, world):
        assert world == "wactor-guest"
        text = (root / "guest.wit").read_text()
        assert "include airssys:core/runtime-host@1.0.0;" in text
        assert "import wactor:http/client@0.1.0;" in text
        assert "import wactor:topics/pubsub@0.1.0;" in text
        shipped = sorted(str(p.relative_to(root)) for p in root.rglob("*.wit"))
        assert shipped == [
            "deps/airssys-core/airssys-core.wit",
            "deps/wactor-http/wactor-http.wit",
            "deps/wactor-topics/wactor-topics.wit",
            "guest.wit",
        ]
    with wit_dir(("topics",)) as (root, _):
        assert not (root / "deps" / "wactor-http").exists()
        assert "wactor:http" not in (root / "guest.wit").read_text()
    with wit_dir(()) as (root, world):
        assert world == "runtime-host"
        assert not (root / "guest.wit").exists()


@pytest.mark.timeout(600)  # a first build and inspect take minutes when the host is loaded
def test_build_with_topics_imports_the_topics_interface(tmp_path: Path) -> None:
    out = tmp_path / "topics.wasm"
    built = wactor("build", str(TOPICS_GUEST), "-o", str(out), "--with", "topics")
    assert built.returncode == 0, built.stderr
    inspected = wactor("inspect", str(out), "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert '"wactor:topics/pubsub@0.1.0"' in inspected.stdout
    assert "wactor:http" not in inspected.stdout
    text = wactor("inspect", str(out))
    assert "extensions: wactor:topics/pubsub@0.1.0\n" in text.stdout


def test_an_unknown_extension_is_one_line_listing_the_known_ones(tmp_path: Path) -> None:
    result = wactor("build", str(TOPICS_GUEST), "-o", str(tmp_path / "x.wasm"), "--with", "ftp")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: unknown extension 'ftp'; known extensions: http, topics"
    )
    assert not (tmp_path / "x.wasm").exists()


def test_a_guest_built_without_the_extension_it_imports_is_told_which(tmp_path: Path) -> None:
    app = tmp_path / "needs_topics.py"
    shutil.copyfile(TOPICS_GUEST, app)
    result = wactor("build", str(app), "-o", str(tmp_path / "x.wasm"), "--no-cache")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: ")
    assert "cannot import name 'pubsub'" in line
    assert line.endswith("it is in the 'topics' extension: build with --with topics")
