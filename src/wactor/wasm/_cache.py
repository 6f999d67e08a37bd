"""The on-disk compile cache: serialized components keyed by digest, engine and settings.

An entry is ``<key>.cwasm`` plus ``<key>.json`` (what it was built from, its size, sha256 and the
file's stat when it was last verified). An entry is used only when its sidecar matches the key and
the file's stat still matches the verified one; otherwise its sha256 is checked in full, and an
entry that fails any check is discarded and rebuilt — a cache file is never trusted blindly, since
wasmtime maps it as executable code. Writes go to a temporary file renamed into place, so a reader
sees a whole entry or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime.component import Component

__all__ = ["CacheStats", "CompileCache", "stat_marker"]

_FORMAT = 1
_WASMTIME_VERSION = importlib.metadata.version("wasmtime")


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What the cache did since it was opened."""

    hits: int
    misses: int
    rebuilt: int


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stat_marker(path: Path) -> list[int]:
    """Size, modification time and inode: what tells that a file changed."""
    return _stat_marker(path)


def _stat_marker(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class CompileCache:
    """Serialized compiled components in one directory, shared by every host of a user."""

    def __init__(self, directory: Path, engine_fingerprint: str) -> None:
        self.directory = directory
        self._fingerprint = engine_fingerprint
        self._hits = 0
        self._misses = 0
        self._rebuilt = 0

    def statistics(self) -> CacheStats:
        """Return counts of hits, misses and rebuilt (corrupt or stale) entries."""
        return CacheStats(self._hits, self._misses, self._rebuilt)

    def known_digest(self, path: Path) -> str | None:
        """The sha256 of a wasm file read earlier, if the file is unchanged since (by stat)."""
        try:
            marker = _stat_marker(path)
            meta = json.loads(self._digest_path(path).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("stat") != marker:
            return None
        digest = meta.get("digest")
        return digest if isinstance(digest, str) else None

    def remember_digest(self, path: Path, digest: str, marker: list[int]) -> None:
        """Remember ``digest`` for ``path`` as long as its stat stays ``marker``."""
        with contextlib.suppress(OSError):
            target = self._digest_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            self._write_json(target, {"path": str(path), "stat": marker, "digest": digest})

    def _digest_path(self, path: Path) -> Path:
        name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
        return self.directory / "digests" / f"{name}.json"

    def key(self, digest: str) -> str:
        """The cache key of a component digest under this engine's settings."""
        raw = f"{_FORMAT}|{digest}|{_WASMTIME_VERSION}"
        return hashlib.sha256(f"{raw}|{self._fingerprint}".encode()).hexdigest()[:40]

    def mark(self, name: str) -> None:
        """Remember a negative fact about ``name`` (e.g. "cannot be wrapped")."""
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"{self.key(name)}.mark").touch()

    def is_marked(self, name: str) -> bool:
        """Tell whether :meth:`mark` was called for ``name``."""
        return (self.directory / f"{self.key(name)}.mark").exists()

    def has_sound_entry(self, digest: str) -> bool:
        """Tell (cheaply, by stat) whether a usable entry for ``digest`` is on disk."""
        key = self.key(digest)
        blob = self.directory / f"{key}.cwasm"
        meta = self._read_meta(self.directory / f"{key}.json")
        if meta is None or meta.get("key") != key or meta.get("digest") != digest:
            return False
        try:
            return stat_marker(blob) == meta.get("verified_stat")
        except OSError:
            return False

    def load_or_compile(
        self,
        engine: wasmtime.Engine,
        digest: str,
        compile_fn: Callable[[], Component],
    ) -> Component:
        """Return the compiled component for ``digest``, from disk when a sound entry exists."""
        key = self.key(digest)
        blob = self.directory / f"{key}.cwasm"
        meta_path = self.directory / f"{key}.json"
        meta = self._read_meta(meta_path)
        if meta is not None and blob.exists():
            if self._entry_sound(blob, meta_path, meta, key, digest):
                try:
                    component = Component.deserialize_file(engine, str(blob))
                except wasmtime.WasmtimeError:
                    self._rebuilt += 1
                else:
                    self._hits += 1
                    return component
            else:
                self._rebuilt += 1
        elif meta is not None or blob.exists():
            self._rebuilt += 1
        else:
            self._misses += 1
        component = compile_fn()
        self._store(component, blob, meta_path, key, digest)
        return component

    def _read_meta(self, meta_path: Path) -> dict[str, Any] | None:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    def _entry_sound(
        self, blob: Path, meta_path: Path, meta: dict[str, Any], key: str, digest: str
    ) -> bool:
        if meta.get("key") != key or meta.get("digest") != digest:
            return False
        try:
            marker = _stat_marker(blob)
        except OSError:
            return False
        if marker == meta.get("verified_stat"):
            return True
        # The file changed since it was last verified (or was copied here): check it in full.
        if marker[0] != meta.get("size") or _file_hash(blob) != meta.get("sha256"):
            return False
        meta["verified_stat"] = marker
        self._write_json(meta_path, meta)
        return True

    def _store(
        self, component: Component, blob: Path, meta_path: Path, key: str, digest: str
    ) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            data = component.serialize()
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, blob)
            meta = {
                "key": key,
                "digest": digest,
                "engine": self._fingerprint,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "verified_stat": _stat_marker(blob),
            }
            self._write_json(meta_path, meta)
        except OSError:
            # A cache that cannot be written only costs speed; the compiled component is fine.
            with contextlib.suppress(OSError):
                blob.unlink(missing_ok=True)

    def _write_json(self, path: Path, meta: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, path)
