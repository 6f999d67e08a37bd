"""Storage in a JetStream key-value bucket, shared by every host of a lattice.

Layout of the bucket ``wactor-<lattice>-kv`` (history 1, ``replicas`` copies)::

    c.<B32(component)>.k.<B32(key)>    the value, as raw bytes
    u.<B32(component)>                 the usage record (JSON, below)

``B32`` is RFC 4648 base32 of the UTF-8 bytes with the ``=`` padding stripped (``_`` for the
empty string): any component id and any key map to one valid token, and no key string can
reach into another component's namespace. Listing reads the key subjects of one component
(an ephemeral headers-only consumer, last message per subject), decodes them and filters by
exact prefix, so ``%``, ``_``, ``*`` or ``>`` in a prefix mean nothing special.

Quota accounting. Every write is guarded by compare-and-set (``Nats-Expected-Last-Subject-
Sequence``) on the usage record and on the key, in a retry loop, as two steps:

1. *reserve*: the usage record ``{"used", "keys", "pending": {key: reservation}}`` gets the
   growth of this write added (a shrink or a delete is subtracted only once it has happened) and
   a reservation naming the key, the key's sequence it expects and an id. A write past the quota
   fails here and changes nothing. One reservation per key at a time: a second writer of the
   same key waits until the first one is resolved;
2. *write*: the value (or a delete marker) is written with that expected sequence and a
   ``Wactor-Write: <id>`` header. A shrink or delete then settles its reservation at once (so
   freed space shows at once); a growth leaves it to be settled by this host's next write.

If a process dies between the two steps (or its write's answer is lost), the reservation stays
behind, over-counting: never past the quota, only too cautious. Every writer of the component
heals what it finds: a reservation whose key carries its id has landed (settle it); one whose
key is still at the expected sequence and that is older than ``stale_after`` seconds was
abandoned: the healer first rewrites the key's current value with ``Wactor-Write: heal:<id>``
(so a late write from the presumed-dead writer fails its compare-and-set instead of landing
uncounted), then gives the reserved bytes back. So ``usage`` only ever over-counts, by writes
in flight or abandoned and not yet healed (the next write of that component heals them), and
the quota holds under any interleaving of threads, hosts and crashes.

Atomic batches (nats-server 2.12) would make both steps one, but on a file-backed stream every
batch commit costs ~3.5 ms and they run one at a time per stream (measured on this machine:
~285 commits/s for the whole lattice); the two compare-and-set steps take ~0.4 ms each and run
concurrently.

Reads go to the stream leader (``STREAM.MSG.GET``, not direct gets from possibly lagging
replicas), so a host reads its own writes. The backend is synchronous and thread-safe like every
storage backend: it runs each call on the event loop of its NATS connection (the host's, shared
with its broker and registry; or, given a URL, a private loop in a background thread) and waits
for it at most ``timeout`` seconds, retrying across reconnections and leader elections. It
cannot be called from that loop's own thread (it would wait for itself). NATS failures become
``StorageIOError`` (after which the outcome of that write is unknown).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import api
from nats.js.client import JetStreamContext

from wactor._bridge import LoopGoneError, LoopWaitTimeout, run_on_loop
from wactor._nats_client import NatsConnection
from wactor._nats_names import kv_bucket
from wactor.errors import DeliveryFailedError, QuotaExceededError, StorageIOError, WactorError
from wactor.storage._base import StorageUsage, encode_key, encode_prefix
from wactor.storage._nats_kv_layout import (
    Record,
    Usage,
    component_token,
    key_token,
    parse_stored_headers,
    token_key,
)

__all__ = ["NatsKvStorage"]

T = TypeVar("T")

_WRONG_LAST_SEQUENCE = 10071  # JetStream: a Nats-Expected-Last-Subject-Sequence did not match
_NO_MESSAGE = 10037  # JetStream: no message found
_STREAM_IN_USE = 10058  # JetStream: stream name already in use with a different configuration
_REQUEST_TIMEOUT = 2.0  # one NATS request; the whole call retries within ``timeout``
_WRITE_ID = "Wactor-Write"
_HEAL = "heal:"


class _Conflict(Exception):
    """A compare-and-set lost against a concurrent writer: re-read and retry."""


class _Busy(Exception):
    """Another writer holds the reservation of this key: wait a little and retry."""


class _Transient(Exception):
    """NATS is briefly unavailable (reconnecting, electing a leader): wait and retry."""


class NatsKvStorage:
    """Key-value storage in the JetStream KV bucket ``wactor-<lattice>-kv``.

    ``connection`` is the host's :class:`NatsConnection` (open; its lattice is the storage's;
    whoever opened it closes it, and this constructor must then run off its loop's thread), or
    the NATS URL (one server URL, a comma-separated list, or a list) of a connection of the
    storage's own to ``lattice``, on a loop thread of its own. The bucket is created when
    missing, with ``replicas`` copies (1, or 3 on a 3-node cluster); an existing bucket is used as
    it is. ``timeout`` bounds every call, retries included; ``stale_after`` is how old a
    reservation must be before another writer presumes its writer dead and heals it.
    """

    def __init__(
        self,
        connection: NatsConnection | str | Sequence[str],
        lattice: str = "default",
        *,
        replicas: int = 1,
        timeout: float = 15.0,
        stale_after: float = 10.0,
    ) -> None:
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, not {replicas}")
        if isinstance(connection, NatsConnection):
            self._conn, owned = connection, False
        else:
            self._conn = NatsConnection(
                connection, lattice, host_id="storage", connect_timeout=timeout
            )
            owned = True
        lattice = self._conn.lattice
        self.servers = list(self._conn.servers)
        self.bucket = kv_bucket(lattice)
        self._stream = f"KV_{self.bucket}"
        self._pre = f"$KV.{self.bucket}."
        self._replicas = replicas
        self._timeout = timeout
        self._stale_after = stale_after
        self._closed = False
        self._close_lock = threading.Lock()
        self._js: JetStreamContext | None = None
        # Loop-thread state: per-component write locks, reservations of this process whose
        # write landed (settled by the next write), and ids whose write may never have landed.
        self._locks: dict[str, asyncio.Lock] = {}
        self._landed: dict[str, dict[str, str]] = {}
        self._doubtful: set[str] = set()
        self._thread: threading.Thread | None = None  # the loop thread of a connection of our own
        if owned:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name=f"wactor-nats-kv-{lattice}", daemon=True
            )
            self._thread.start()
        else:
            self._loop = self._conn.loop
        try:
            self._call("", self._open())
        except BaseException:
            self.close()
            raise

    # --- the loop thread -----------------------------------------------------------------------

    def _call(self, component: str, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the storage loop (through the one thread-to-loop bridge); it gets
        ``timeout`` (plus a margin), and the wait also ends at the calling guest's deadline."""
        who = component or None
        if self._closed:
            coro.close()
            raise StorageIOError(f"{self.bucket}: storage is closed", component=who)
        if _running_loop() is self._loop:
            coro.close()
            raise StorageIOError(f"{self.bucket}: called from its own event loop thread")
        if self._loop.is_closed() or not self._loop.is_running():
            coro.close()
            raise StorageIOError(f"{self.bucket}: storage is closed", component=who)
        limit = self._timeout + 2 * _REQUEST_TIMEOUT

        async def bounded() -> T:
            try:
                return await asyncio.wait_for(coro, limit)
            except TimeoutError as exc:
                if isinstance(exc, WactorError):
                    raise  # an answer of the store's own, not this wait running out
                raise StorageIOError(
                    f"{self.bucket}: no answer from NATS within {self._timeout:g}s", component=who
                ) from None

        try:
            return run_on_loop(self._loop, bounded)
        except LoopGoneError:
            raise StorageIOError(f"{self.bucket}: storage is closed", component=who) from None
        except LoopWaitTimeout as exc:
            raise StorageIOError(
                f"{self.bucket}: no answer from NATS before the call's deadline "
                f"({exc.waited:.3g} s)",
                component=who,
            ) from None

    async def _open(self) -> None:
        try:
            await self._conn.connect()  # idempotent: a shared connection is open already
            self._js = self._conn.jetstream(_REQUEST_TIMEOUT)
        except DeliveryFailedError as exc:
            raise StorageIOError(f"{self.bucket}: {exc.message}") from exc
        await self._retrying("", self._ensure_bucket)

    async def _ensure_bucket(self) -> None:
        js = self._jetstream()
        config = api.StreamConfig(
            name=self._stream,
            subjects=[f"{self._pre}>"],
            allow_rollup_hdrs=True,
            allow_msg_ttl=True,
            allow_direct=False,
            deny_delete=True,
            discard=api.DiscardPolicy.NEW,
            duplicate_window=120.0,
            max_consumers=-1,
            max_msgs=-1,
            max_msgs_per_subject=1,
            num_replicas=self._replicas,
            storage=api.StorageType.FILE,
        )
        try:
            await js.add_stream(config)
        except nats.js.errors.APIError as exc:
            if exc.err_code != _STREAM_IN_USE:
                raise
            # Created elsewhere with another configuration (replicas …): use it as it is.

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise StorageIOError(f"{self.bucket}: storage is not open")
        return self._js

    def _client(self) -> Client:
        nc = self._conn.client
        if nc is None:
            raise StorageIOError(f"{self.bucket}: storage is not open")
        if not nc.is_connected:
            raise _Transient("not connected to NATS")
        return nc

    async def _retrying(self, component: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` until it succeeds, retrying conflicts and transient failures."""
        deadline = time.monotonic() + self._timeout
        conflicts = 0
        last: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                return await attempt()
            except WactorError:
                raise
            except _Conflict as exc:
                last = exc
                conflicts += 1
                if conflicts > 3:  # other hosts write too: spread the retries out
                    await asyncio.sleep(random.uniform(0, 0.002 * min(conflicts, 50)))
            except _Busy as exc:
                last = exc
                await asyncio.sleep(random.uniform(0.002, 0.01))
            except (
                _Transient,
                nats.errors.TimeoutError,
                nats.errors.NoRespondersError,
                nats.js.errors.ServiceUnavailableError,
            ) as exc:
                last = exc
                await asyncio.sleep(0.05)
            except (nats.errors.Error, OSError) as exc:
                raise StorageIOError(
                    f"{self.bucket}: {_describe(exc)}", component=component or None
                ) from exc
        raise StorageIOError(
            f"{self.bucket}: gave up after {self._timeout:g}s: {_describe(last)}",
            component=component or None,
        ) from last

    # --- records -------------------------------------------------------------------------------

    def _key_token(self, key: bytes) -> str:
        return key_token(key)

    def _key_subject(self, component: str, token: str) -> str:
        return f"{self._pre}c.{component_token(component)}.k.{token}"

    def _usage_subject(self, component: str) -> str:
        return f"{self._pre}u.{component_token(component)}"

    async def _read(self, subject: str) -> Record:
        """Read the last message of ``subject`` from the stream leader."""
        nc = self._client()
        request = json.dumps({"last_by_subj": subject}).encode()
        msg = await nc.request(
            f"$JS.API.STREAM.MSG.GET.{self._stream}", request, timeout=_REQUEST_TIMEOUT
        )
        answer = json.loads(msg.data)
        error = answer.get("error")
        if error is not None:
            if error.get("err_code") == _NO_MESSAGE:
                return Record(0, None, None)
            _raise_api_error(error)
        message = answer["message"]
        headers = parse_stored_headers(base64.b64decode(message.get("hdrs") or b""))
        deleted = headers.get("KV-Operation") in ("DEL", "PURGE")
        value = None if deleted else base64.b64decode(message.get("data") or b"")
        return Record(int(message["seq"]), value, headers.get(_WRITE_ID))

    async def _read_usage(self, component: str) -> Usage:
        record = await self._read(self._usage_subject(component))
        if record.value is None:
            return Usage(record.seq)
        try:
            data = json.loads(record.value)
            return Usage(
                record.seq, int(data["used"]), int(data["keys"]), dict(data.get("pending") or {})
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageIOError(
                f"{self.bucket}: corrupt usage record of {component}", component=component
            ) from exc

    async def _put(
        self, subject: str, value: bytes | None, expected: int, write_id: str | None
    ) -> None:
        """Write ``value`` (``None``: a delete marker) if ``subject`` is still at ``expected``."""
        nc = self._client()
        headers = {"Nats-Expected-Last-Subject-Sequence": str(expected)}
        if write_id is not None:
            headers[_WRITE_ID] = write_id
        if value is None:
            headers["KV-Operation"] = "DEL"
        msg = await nc.request(subject, value or b"", timeout=_REQUEST_TIMEOUT, headers=headers)
        if msg.headers and msg.headers.get("Status") == "503":
            raise _Transient("no stream leader")
        error = json.loads(msg.data).get("error")
        if error is not None:
            _raise_api_error(error)

    async def _save_usage(self, component: str, usage: Usage) -> None:
        await self._put(self._usage_subject(component), usage.encode(), usage.seq, None)

    def _lock(self, component: str) -> asyncio.Lock:
        # Writers of one component in this process take turns instead of racing each other's
        # compare-and-set; other hosts are kept in line by the compare-and-set itself.
        lock = self._locks.get(component)
        if lock is None:
            lock = self._locks[component] = asyncio.Lock()
        return lock

    # --- writing -------------------------------------------------------------------------------

    async def _resolve(self, component: str, usage: Usage, token: str, key: Record) -> bool:
        """Settle the reservation of ``token`` in ``usage``; tell whether the key was rewritten.

        ``key`` is the key's record as read now. Raises ``_Busy`` for a live foreign writer.
        """
        entry = usage.pending[token]
        write_id = str(entry["id"])
        if key.write_id == write_id:
            usage.settle(token, landed=True)
            return False
        if key.write_id == _HEAL + write_id:
            usage.settle(token, landed=False)
            return False
        if key.seq != int(entry["e"]):
            # Written since by someone outside this protocol: count the reservation as landed.
            usage.settle(token, landed=True)
            return False
        stale = time.time() - float(entry.get("t", 0)) > self._stale_after
        if not stale and write_id not in self._doubtful:
            raise _Busy(f"{component}: a write of this key is in flight")
        # Abandoned: make sure the write can never land later, then give its bytes back.
        await self._put(self._key_subject(component, token), key.value, key.seq, _HEAL + write_id)
        self._doubtful.discard(write_id)
        usage.settle(token, landed=False)
        return True

    async def _heal_others(self, component: str, usage: Usage, token: str) -> None:
        """Settle this process's landed reservations and every stale one of other keys."""
        mine = self._landed.get(component, {})
        for other, write_id in list(mine.items()):
            entry = usage.pending.get(other)
            if entry is not None and entry["id"] == write_id:
                usage.settle(other, landed=True)
        now = time.time()
        for other, entry in list(usage.pending.items()):
            if other != token and now - float(entry.get("t", 0)) > self._stale_after:
                record = await self._read(self._key_subject(component, other))
                with contextlib.suppress(_Busy):
                    await self._resolve(component, usage, other, record)

    async def _write(
        self, component: str, key: bytes, value: bytes | None, quota: int | None
    ) -> bool:
        """Set (``value``) or delete (``None``) one key; tell whether it existed before."""
        token = self._key_token(key)
        subject = self._key_subject(component, token)
        usage, record = await asyncio.gather(self._read_usage(component), self._read(subject))
        if token in usage.pending and await self._resolve(component, usage, token, record):
            record = await self._read(subject)  # the heal rewrote it
        await self._heal_others(component, usage, token)
        old = record.value
        if value is None and old is None:
            return False
        size_old = 0 if old is None else len(key) + len(old)
        size_new = 0 if value is None else len(key) + len(value)
        d = size_new - size_old
        n = (value is not None) - (old is not None)
        if quota is not None and usage.used + d > quota:
            raise QuotaExceededError(component, quota, usage.used + d)
        write_id = uuid.uuid4().hex
        usage.pending[token] = {"e": record.seq, "d": d, "n": n, "id": write_id, "t": time.time()}
        usage.used += max(d, 0)
        usage.keys += max(n, 0)
        # Until its fate is known, a retry of this very call may find the reservation (or the
        # write) landed after all: it must heal it at once instead of waiting for it to go stale.
        self._doubtful.add(write_id)
        try:
            await self._save_usage(component, usage)  # step 1: reserve
        except _Conflict:
            self._doubtful.discard(write_id)  # certainly not saved
            raise
        self._landed.pop(component, None)  # settled by the reservation just saved
        try:
            await self._put(subject, value, record.seq, write_id)  # step 2: write
        except _Conflict:
            await self._release(component, token, write_id, landed=False)
            self._doubtful.discard(write_id)
            raise
        self._doubtful.discard(write_id)
        if d < 0 or n < 0:
            await self._release(component, token, write_id, landed=True)  # show freed space now
        else:
            self._landed.setdefault(component, {})[token] = write_id
        return old is not None

    async def _release(self, component: str, token: str, write_id: str, *, landed: bool) -> None:
        """Settle this process's own reservation ``write_id`` (compare-and-set loop)."""
        while True:
            usage = await self._read_usage(component)
            entry = usage.pending.get(token)
            if entry is None or entry["id"] != write_id:
                return  # settled by someone else already
            usage.settle(token, landed=landed)
            try:
                await self._save_usage(component, usage)
            except _Conflict:
                continue
            return

    async def _locked_write(
        self, component: str, key: bytes, value: bytes | None, quota: int | None
    ) -> bool:
        async with self._lock(component):
            return await self._retrying(
                component, lambda: self._write(component, key, value, quota)
            )

    async def _keys(self, scope: str) -> list[bytes]:
        """Return the keys (decoded from their tokens) under ``scope``, sorted as bytes.

        An ephemeral pull consumer delivers the last message of every key subject, headers only;
        each message tells how many are still pending, so the listing knows when it is whole.
        """
        js = self._jetstream()
        info = await js.add_consumer(
            self._stream,
            api.ConsumerConfig(
                filter_subject=self._pre + scope + ">",
                deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
                ack_policy=api.AckPolicy.NONE,
                headers_only=True,
                mem_storage=True,
                num_replicas=1,
                inactive_threshold=30.0,  # cleaned up by the server if we die mid-listing
            ),
        )
        prefix = len(self._pre + scope)
        keys: list[bytes] = []
        try:
            remaining = info.num_pending or 0
            if remaining:
                sub = await js.pull_subscribe_bind(consumer=info.name, stream=self._stream)
                try:
                    while remaining > 0:
                        for msg in await sub.fetch(min(remaining, 1000), _REQUEST_TIMEOUT):
                            remaining = msg.metadata.num_pending
                            if (msg.headers or {}).get("KV-Operation") not in ("DEL", "PURGE"):
                                keys.append(token_key(msg.subject[prefix:]))
                finally:
                    await sub.unsubscribe()
        finally:
            with contextlib.suppress(nats.errors.Error):
                await js.delete_consumer(self._stream, info.name)
        # UTF-8 byte order is code point order: the same order as sorted() on the strings.
        return sorted(keys)

    # --- the backend ---------------------------------------------------------------------------

    def get(self, component: str, key: str) -> bytes | None:
        """Return the value of ``key``, or ``None`` when it is not set."""
        subject = self._key_subject(component, self._key_token(encode_key(component, key)))

        async def attempt() -> bytes | None:
            return (await self._read(subject)).value

        return self._call(component, self._retrying(component, attempt))

    def set(self, component: str, key: str, value: bytes, *, quota: int) -> None:
        """Store ``value`` under ``key``; past the quota, raise and change nothing."""
        key_bytes = encode_key(component, key)
        self._call(component, self._locked_write(component, key_bytes, bytes(value), quota))

    def delete(self, component: str, key: str) -> bool:
        """Remove ``key``; tell whether it was there."""
        key_bytes = encode_key(component, key)
        return self._call(component, self._locked_write(component, key_bytes, None, None))

    def exists(self, component: str, key: str) -> bool:
        """Tell whether ``key`` is set."""
        return self.get(component, key) is not None

    def list_keys(self, component: str, prefix: str | None = None) -> list[str]:
        """Return the component's keys starting with ``prefix``, sorted by code point."""
        wanted = encode_prefix(component, prefix)
        scope = f"c.{component_token(component)}.k."

        async def attempt() -> list[str]:
            return [k.decode("utf-8") for k in await self._keys(scope) if k.startswith(wanted)]

        return self._call(component, self._retrying(component, attempt))

    def usage(self, component: str, *, quota: int) -> StorageUsage:
        """Return the component's used bytes and key count, with ``quota`` echoed back."""
        usage = self._call(
            component, self._retrying(component, lambda: self._read_usage(component))
        )
        return StorageUsage(usage.used, quota, usage.keys)

    def close(self) -> None:
        """Stop serving calls (later ones raise ``StorageIOError``); with a connection of its
        own, disconnect and stop its loop thread. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        thread = self._thread
        if thread is None:
            return  # the connection is shared: its owner closes it
        if self._loop.is_running() and threading.current_thread() is not thread:
            done = asyncio.run_coroutine_threadsafe(self._conn.close(), self._loop)
            with contextlib.suppress(Exception):
                done.result(5.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(5.0)
        if not self._loop.is_running():
            self._loop.close()


def _raise_api_error(error: dict[str, Any]) -> None:
    if error.get("err_code") == _WRONG_LAST_SEQUENCE:
        raise _Conflict(error.get("description", "wrong last sequence"))
    if error.get("code") == 503:
        raise _Transient(error.get("description", "JetStream unavailable"))
    raise nats.js.errors.APIError(
        code=error.get("code"), description=error.get("description"), err_code=error.get("err_code")
    )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no attempt finished"
    if isinstance(exc, nats.js.errors.APIError):
        return f"JetStream error {exc.code}/{exc.err_code}: {exc.description}"
    return str(exc) or type(exc).__name__
