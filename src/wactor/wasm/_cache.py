"""The on-disk compile cache: serialized components keyed by source digest, engine and settings.

Deserializing an entry maps it as executable code, so an entry is only ever used when the host
itself wrote it, for exactly the source bytes it is looked up by:

- the directory (symlinks resolved) must be owned by the host's user and writable by nobody
  else; otherwise the cache is not used at all (components are compiled every time) and a
  warning says why;
- a secret key (32 random bytes, mode 0600) lives beside the directory, not in it
  (``<dir>.key``: a copied or planted cache directory does not bring a valid key along);
- an entry is ``<key>.cwasm`` plus ``<key>.json``; the sidecar holds an HMAC-SHA256, under that
  key, over the cache key, the source digest, the engine settings and the sha256 of the artifact;
- before use, the artifact is opened without following symlinks, checked (regular file, owned by
  the host's user, writable by nobody else), read and hashed through that descriptor, and the
  HMAC recomputed; only then is it deserialized, from that same open file. An entry that fails
  any check is never deserialized: it is recompiled and replaced;
- once verified, the sidecar also gets an HMAC over the file's device, inode, size, mtime and
  ctime: while the open file's stat still matches it, the hash is not recomputed (a 42 MiB
  artifact costs ~55 ms to hash). Any write, rename or copy sets the ctime to the current time,
  which only root can turn back (by moving the clock), so a rewritten entry is hashed again.
  A file changed within the last two seconds gets no stamp (timestamps are coarse).
- the same kind of stamp remembers the sha256 of a component's wasm file (``<stamp key>.src``:
  an HMAC over the digest and the file's device, inode, size, mtime and ctime), so an unchanged
  file is not read and hashed on every start; :mod:`wactor.wasm._source` says why trust is still
  decided on the bytes that run.

Writes go to a temporary file renamed into place, so a reader sees a whole entry or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.metadata
import json
import logging
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime.component import Component

__all__ = ["CacheStats", "CompileCache", "stat_stamp"]

_FORMAT = 2
_WASMTIME_VERSION = importlib.metadata.version("wasmtime")
_MAC_PREFIX = b"wactor-compile-cache-v2\n"
_SOURCE_MAC_PREFIX = b"wactor-source-digest-v1\n"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_KEY_BYTES = 32
_PROC_FD = Path("/proc/self/fd")
_RACY_NS = 2_000_000_000  # a stat stamp is recorded only for files changed longer ago than this

_log = logging.getLogger("wactor.wasm")


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What the cache did since it was opened."""

    hits: int
    misses: int
    rebuilt: int


def unsafe_reason(st: os.stat_result, what: str) -> str | None:
    """Why a file or directory with this stat cannot be trusted by this user, or ``None``."""
    if st.st_uid != os.geteuid():
        return f"{what} is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{what} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


class CompileCache:
    """Serialized compiled components in one directory, shared by every host of a user."""

    def __init__(self, directory: Path, engine_fingerprint: str) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self.key_path = self.directory.with_name(self.directory.name + ".key")
        self._fingerprint = engine_fingerprint
        self._secret: bytes | None = None
        self._disabled: str | None = None
        self._hits = 0
        self._misses = 0
        self._rebuilt = 0

    def statistics(self) -> CacheStats:
        """Return counts of hits, misses and rebuilt (corrupt, stale or foreign) entries."""
        return CacheStats(self._hits, self._misses, self._rebuilt)

    def key(self, digest: str) -> str:
        """The cache key of a component digest under this engine's settings."""
        raw = f"{_FORMAT}|{digest}|{_WASMTIME_VERSION}"
        return hashlib.sha256(f"{raw}|{self._fingerprint}".encode()).hexdigest()[:40]

    # --- the directory and its key ----------------------------------------------------------

    def _ready(self) -> bytes | None:
        """The MAC key once the directory is checked, or ``None`` when the cache is unusable."""
        if self._secret is not None or self._disabled is not None:
            return self._secret
        try:
            self._secret = self._open_dir()
        except OSError as exc:
            self._disabled = f"cannot use {self.directory}: {exc.strerror or exc}"
        except _Unsafe as exc:
            self._disabled = str(exc)
        why = self._disabled
        if why is not None:
            _log.warning("compile cache not used (components compile every time): %s", why)
        return self._secret

    def _open_dir(self) -> bytes:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        reason = unsafe_reason(self.directory.stat(), f"cache directory {self.directory}")
        parent = self.directory.parent
        if reason is None:
            reason = _parent_reason(parent.stat(), parent)
        if reason is not None:
            raise _Unsafe(reason)
        return self._read_or_create_key()

    def _read_or_create_key(self) -> bytes:
        path = self.key_path
        for _ in range(2):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                self._create_key()
                continue
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                reason = unsafe_reason(st, f"cache key {path}")
                if reason is None and st.st_mode & 0o077:
                    reason = f"cache key {path} is readable by others (mode {st.st_mode & 0o777:o})"
                if reason is not None or not stat.S_ISREG(st.st_mode):
                    raise _Unsafe(reason or f"cache key {path} is not a regular file")
                secret = f.read(_KEY_BYTES + 1)
            if len(secret) != _KEY_BYTES:
                raise _Unsafe(f"cache key {path} is not {_KEY_BYTES} bytes")
            return secret
        raise _Unsafe(f"cache key {path} could not be created")

    def _create_key(self) -> None:
        # Written whole under a temporary name, then linked: two hosts starting at once agree.
        fd, tmp = tempfile.mkstemp(dir=self.key_path.parent, prefix=".key-")
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(secrets.token_bytes(_KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self.key_path)
        finally:
            os.unlink(tmp)

    def _mac(self, secret: bytes, key: str, digest: str, artifact_sha256: str) -> str:
        text = f"{key}\n{digest}\n{self._fingerprint}\n{_WASMTIME_VERSION}\n{artifact_sha256}"
        return hmac.new(secret, _MAC_PREFIX + text.encode(), hashlib.sha256).hexdigest()

    # --- marks ------------------------------------------------------------------------------

    def mark(self, name: str) -> None:
        """Remember a negative fact about ``name`` (e.g. "cannot be wrapped")."""
        if self._ready() is None:
            return
        with contextlib.suppress(OSError):
            (self.directory / f"{self.key(name)}.mark").touch(mode=0o600)

    def is_marked(self, name: str) -> bool:
        """Tell whether :meth:`mark` was called for ``name``."""
        return self._ready() is not None and (self.directory / f"{self.key(name)}.mark").exists()

    # --- digests of source files --------------------------------------------------------------

    def known_digest(self, st: os.stat_result) -> str | None:
        """The sha256 that :meth:`remember_digest` recorded for the file with exactly this stat
        (device, inode, size, mtime, ctime), or ``None``."""
        secret = self._ready()
        if secret is None:
            return None
        entry = _read_meta(self._source_path(st))
        if entry is None:
            return None
        digest, mac = entry.get("digest"), entry.get("mac")
        if not (isinstance(digest, str) and isinstance(mac, str)):
            return None
        if _SHA256_HEX.fullmatch(digest) is None:
            return None
        if not hmac.compare_digest(_source_mac(secret, st, digest), mac):
            return None
        return digest

    def remember_digest(self, st: os.stat_result, digest: str) -> None:
        """Record ``digest`` as the sha256 of the file with this stat, just read and hashed
        (unchanged from before the read to after it); a file changed in the last two seconds
        is not recorded: a write in the same clock tick could share its stat."""
        secret = self._ready()
        if secret is None or time.time_ns() - st.st_ctime_ns <= _RACY_NS:
            return
        with contextlib.suppress(OSError):
            _write_json(
                self._source_path(st),
                {"digest": digest, "mac": _source_mac(secret, st, digest)},
            )

    def _source_path(self, st: os.stat_result) -> Path:
        # One entry per file (device and inode): a changed file replaces its own entry.
        name = hashlib.sha256(f"source|{st.st_dev}|{st.st_ino}".encode()).hexdigest()[:40]
        return self.directory / f"{name}.src"

    # --- entries ----------------------------------------------------------------------------

    def load_or_compile(
        self,
        engine: wasmtime.Engine,
        digest: str,
        compile_fn: Callable[[], Component],
    ) -> Component:
        """Return the compiled component for source ``digest``: from a verified entry written
        by this user's hosts, else compiled by ``compile_fn`` (and stored)."""
        secret = self._ready()
        if secret is None:
            self._misses += 1
            return compile_fn()
        key = self.key(digest)
        blob = self.directory / f"{key}.cwasm"
        if blob.exists() or blob.with_suffix(".json").exists():
            component = self._load_verified(engine, secret, key, digest)
            if component is not None:
                self._hits += 1
                return component
            self._rebuilt += 1
        else:
            self._misses += 1
        component = compile_fn()
        self._store(secret, component, key, digest)
        return component

    def _load_verified(
        self, engine: wasmtime.Engine, secret: bytes, key: str, digest: str
    ) -> Component | None:
        meta_path = self.directory / f"{key}.json"
        meta = _read_meta(meta_path)
        if meta is None or meta.get("key") != key or meta.get("digest") != digest:
            return None
        expected_mac = meta.get("mac")
        if not isinstance(expected_mac, str):
            return None
        try:
            fd = os.open(self.directory / f"{key}.cwasm", os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        by_fd = _PROC_FD.is_dir()
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or unsafe_reason(st, "entry") is not None:
                return None
            stamp = list(stat_stamp(st))
            stamp_mac = self._stamp_mac(secret, expected_mac, stamp)
            seen = meta.get("verified_mac")
            if not (by_fd and isinstance(seen, str) and hmac.compare_digest(stamp_mac, seen)):
                h = hashlib.sha256()
                data = bytearray()
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
                    if not by_fd:
                        data += block
                if not hmac.compare_digest(
                    self._mac(secret, key, digest, h.hexdigest()), expected_mac
                ):
                    return None
                if not by_fd:
                    try:
                        return Component.deserialize(engine, bytes(data))
                    except wasmtime.WasmtimeError:
                        return None
                # Like git's "racy" index entries: a ctime this recent may still be shared by a
                # write in the same clock tick (timestamps are coarse), so it proves nothing yet.
                if time.time_ns() - st.st_ctime_ns > _RACY_NS:
                    meta["verified_mac"] = stamp_mac
                    with contextlib.suppress(OSError):
                        _write_json(meta_path, meta)
            try:
                # Map the very file just verified (this descriptor), not whatever the name
                # points to now.
                return Component.deserialize_file(engine, str(_PROC_FD / str(f.fileno())))
            except wasmtime.WasmtimeError:
                return None

    def _stamp_mac(self, secret: bytes, entry_mac: str, stamp: list[int]) -> str:
        """The MAC of "this entry's file, as verified, has this stat": device, inode, size,
        mtime and ctime. Any write, rename or copy changes the ctime, which no one but root can
        set back, so a stat that still matches means the very bytes verified earlier."""
        text = f"verified\n{entry_mac}\n{stamp}"
        return hmac.new(secret, _MAC_PREFIX + text.encode(), hashlib.sha256).hexdigest()

    def _store(self, secret: bytes, component: Component, key: str, digest: str) -> None:
        blob = self.directory / f"{key}.cwasm"
        meta_path = blob.with_suffix(".json")
        try:
            data = component.serialize()
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, blob)
            meta = {
                "format": _FORMAT,
                "key": key,
                "digest": digest,
                "engine": self._fingerprint,
                "wasmtime": _WASMTIME_VERSION,
                "size": len(data),
                "mac": self._mac(secret, key, digest, hashlib.sha256(data).hexdigest()),
            }
            _write_json(meta_path, meta)
        except OSError:
            # A cache that cannot be written only costs speed; the compiled component is fine.
            with contextlib.suppress(OSError):
                blob.unlink(missing_ok=True)


def _parent_reason(st: os.stat_result, parent: Path) -> str | None:
    """Why the directory holding the cache key cannot be trusted, or ``None``.

    Root may own it (``/var/cache``); a sticky directory of root's such as ``/tmp`` is fine (no
    one else can replace this user's files there); otherwise it follows :func:`unsafe_reason`.
    """
    if st.st_uid == 0 and (st.st_mode & stat.S_ISVTX or not st.st_mode & 0o022):
        return None
    return unsafe_reason(st, f"directory {parent}")


def stat_stamp(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What identifies a file's content without reading it: device, inode, size, mtime and
    ctime. Any write, rename, copy, ``chmod`` or ``touch`` sets the ctime to the current time,
    and only root can set it otherwise (by moving the system clock)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _source_mac(secret: bytes, st: os.stat_result, digest: str) -> str:
    """The MAC of "the file with this stat has this sha256"."""
    text = f"{':'.join(map(str, stat_stamp(st)))}\n{digest}"
    return hmac.new(secret, _SOURCE_MAC_PREFIX + text.encode(), hashlib.sha256).hexdigest()


class _Unsafe(Exception):
    """The cache directory or its key cannot be trusted."""


def _read_meta(meta_path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_json(path: Path, meta: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(meta, f)
    os.replace(tmp, path)
