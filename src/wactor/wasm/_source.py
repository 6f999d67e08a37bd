"""A component's wasm file as trust sees it: the sha256 of its bytes, and those bytes.

Trust (a pinned digest, a signature, an approval) is decided on the sha256 of a wasm file, and
what runs is code compiled from bytes with that sha256: compiled just now from bytes hashed to
it, or served by the compile cache, whose entries are bound by an HMAC to the digest of the bytes
they were compiled from (:mod:`wactor.wasm._cache`).

Hashing a componentize-py guest (~18 MiB) costs ~20 ms, most of a start from the cache, so the
digest of a file is remembered:

- once a file is read and hashed, the compile cache records its digest under the file's stat
  stamp (device, inode, size, mtime, ctime), with an HMAC over both under the cache's secret key
  (kept beside the cache directory, mode 0600): an entry planted or edited without that key is
  ignored;
- the next start opens the file and ``fstat``s it; when an entry's HMAC verifies for that exact
  stamp, the digest is taken from it and the bytes are not read;
- any write to the file, a rename over it, a copy, ``chmod``, ``chown`` or ``touch`` sets its ctime
  to the current time, and only root can set a ctime otherwise (by moving the system clock); a
  different file at the same path has another inode or a newer ctime. So the stamp of a changed
  file no longer matches: it is read and hashed again. An mtime set back (``touch -d``) does not
  hide a change, the ctime moves anyway;
- a stamp is recorded only when it is the same before and after the read and the ctime is more
  than two seconds old (timestamps are coarse: a write in the same clock tick as the hash could
  share its stamp), the rule git applies to "racy" index entries.

Why this still decides trust on the bytes that run: the remembered digest only ever names code
compiled from bytes with that digest. On a cache hit, the entry is the compile of bytes that
hashed to it (its HMAC says so); with no entry, the bytes are read now, hashed again and refused
unless they have the very digest trust was decided on. So a change the stamp does not show (root
moving the clock; a write through a shared memory mapping to a page already dirty, which Linux does
not time-stamp again until the page is written back) can only make the file start as the bytes
that were hashed and checked before, never as its new bytes; the next change the stamp shows, or
the next start after the entry is gone, reads and hashes it again.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from wactor._files import MAX_WASM_BYTES, open_regular_file, read_bounded, read_regular_file
from wactor.errors import InvalidComponentError
from wactor.wasm._cache import CompileCache, stat_stamp

__all__ = ["WasmBytes", "read_wasm"]

_HEAD = 8  # magic and version: enough to tell a component from a core module or garbage


@dataclass(frozen=True, slots=True)
class WasmBytes:
    """A wasm file's sha256 (what trust is decided on) and its bytes (what gets compiled).

    ``data`` is ``None`` when the digest was remembered for the file's unchanged stat; then
    :meth:`contents` reads the bytes if they are needed after all, and checks them.
    Make one with :meth:`of`, :meth:`read` or :func:`read_wasm`.
    """

    data: bytes | None = field(repr=False)
    digest: str
    path: str
    head: bytes = field(default=b"", repr=False)  # the first bytes, for the kind check

    def __post_init__(self) -> None:
        if not self.head and self.data is not None:
            object.__setattr__(self, "head", self.data[:_HEAD])

    @classmethod
    def of(cls, data: bytes, path: str) -> WasmBytes:
        """Wrap ``data`` (read from ``path``) with its sha256."""
        return cls(data, hashlib.sha256(data).hexdigest(), path)

    @classmethod
    def read(cls, path: Path) -> WasmBytes:
        """Read the file at ``path`` once; raise ``OSError`` if it cannot be read, is no
        regular file or is larger than :data:`MAX_WASM_BYTES`."""
        return cls.of(read_regular_file(path, MAX_WASM_BYTES), str(path))

    def contents(self) -> bytes:
        """The bytes with :attr:`digest`: those held, or the file read now and checked."""
        if self.data is not None:
            return self.data
        try:
            data = read_regular_file(Path(self.path), MAX_WASM_BYTES)
        except OSError as exc:
            raise InvalidComponentError(
                f"cannot be read again to compile it: {exc.strerror or exc}", path=self.path
            ) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.digest:
            raise InvalidComponentError(
                f"changed while it was being started (sha256 {actual[:12]}..., checked as "
                f"{self.digest[:12]}...); start it again",
                path=self.path,
            )
        return data


def read_wasm(path: Path, cache: CompileCache | None) -> WasmBytes:
    """The wasm file at ``path`` with its sha256: remembered in ``cache`` for the file's
    unchanged stat, or read and hashed (and remembered). Raise ``OSError`` if it cannot be
    read, is no regular file or is larger than :data:`MAX_WASM_BYTES`."""
    with open_regular_file(path, MAX_WASM_BYTES) as (f, st):
        known = cache.known_digest(st) if cache is not None else None
        if known is not None:
            return WasmBytes(None, known, str(path), os.pread(f.fileno(), _HEAD, 0))
        data = read_bounded(f, path, MAX_WASM_BYTES)
        after = os.fstat(f.fileno())
    source = WasmBytes.of(data, str(path))
    if cache is not None and stat_stamp(after) == stat_stamp(st):
        cache.remember_digest(st, source.digest)
    return source
