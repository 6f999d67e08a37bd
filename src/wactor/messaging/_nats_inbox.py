"""A host's reply inbox: the requests it has in flight over NATS, and what ends each of them.

Every request, send and ping a host publishes to another host waits here for its reply, under a
reply subject of its own: the host's inbox prefix plus a fresh random token (a peer that saw
other reply subjects of this host cannot guess the next one; a message to any other token is
dropped and counted). A request's receiving host acknowledges it with its host id unless it
replies within 20 ms, so the inbox knows which host holds each request that takes longer, and
:meth:`ReplyInbox.lattice_view` fails the ones held by a host that left the lattice instead of
letting them wait out their timeouts.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Collection, Mapping

from nats.aio.msg import Msg

from wactor._ids import ComponentId
from wactor.errors import DeliveryFailedError, WactorError
from wactor.messaging._nats_wire import acknowledged_by, decode_reply, is_no_responders

__all__ = ["ReplyInbox"]


class _Pending:
    """A request (or send, or ping) of this host waiting for its reply."""

    __slots__ = ("acked_at", "counted", "fut", "host", "sent_at", "target", "watched")

    def __init__(
        self, fut: asyncio.Future[bytes | None], target: ComponentId, counted: bool, watched: bool
    ) -> None:
        self.fut = fut
        self.target = target
        self.counted = counted  # a missing target counts as undeliverable
        self.watched = watched  # a request whose receiving host acknowledges with its id
        self.sent_at = time.monotonic()
        self.host: str | None = None  # the host that acknowledged it
        self.acked_at = 0.0

    def fail(self, error: WactorError) -> None:
        if not self.fut.done():
            self.fut.set_exception(error)


class ReplyInbox:
    """The requests of one host in flight over NATS, by reply token."""

    def __init__(self, ack_timeout: float) -> None:
        self.prefix = ""  # "<inbox>." once the connection is open
        self._ack_timeout = ack_timeout
        self._pending: dict[str, _Pending] = {}
        self._hosts: frozenset[str] = frozenset()  # the hosts of the last lattice view
        self.undeliverable = 0
        self.rejected = 0

    def expect(
        self, target: ComponentId, *, counted: bool, watched: bool
    ) -> tuple[str, asyncio.Future[bytes | None]]:
        """A fresh reply subject and the future its reply completes."""
        fut: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        token = secrets.token_urlsafe(16)
        self._pending[token] = _Pending(fut, target, counted, watched)
        fut.add_done_callback(lambda _: self._pending.pop(token, None))
        return self.prefix + token, fut

    def on_reply(self, msg: Msg) -> None:
        """Take a message that arrived on the inbox."""
        token = msg.subject[len(self.prefix) :]
        entry = self._pending.get(token)
        headers = msg.headers or {}
        host = acknowledged_by(headers)
        if entry is None or entry.fut.done():
            if host is None:  # an acknowledgement may trail its quick reply: no matter
                self.rejected += 1  # late (timed out, cancelled) or forged: nobody waits for it
            return
        if host is not None:
            if entry.host is None:  # the first acknowledgement names the host; no reply yet
                entry.host = host
                entry.acked_at = time.monotonic()
            return
        del self._pending[token]
        try:
            if entry.counted and is_no_responders(headers):
                self.undeliverable += 1
            entry.fut.set_result(decode_reply(headers, msg.data, entry.target))
        except WactorError as exc:
            entry.fut.set_exception(exc)
        except Exception:  # noqa: BLE001 - no reply, however malformed, leaves a request hanging
            entry.fail(
                DeliveryFailedError(f"{entry.target}: malformed reply", component=str(entry.target))
            )

    def fail_all(self, reason: str) -> None:
        """Fail every request in flight (the connection dropped, the broker closed)."""
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            entry.fail(
                DeliveryFailedError(f"{entry.target}: {reason}", component=str(entry.target))
            )

    def lattice_view(self, hosts: Mapping[str, Collection[str]], read_at: float) -> None:
        """Fail the requests in flight whose host left the lattice.

        ``hosts`` maps every live host id to the component ids it runs, as the lattice registry
        read them at ``time.monotonic()`` ``read_at``. A request acknowledged (before the read)
        by a host that is not in the view fails at once; it may have been handled, so it is
        never moved elsewhere (requests are not idempotent). When a host that was in the last
        view is gone, a request that no host acknowledged within ``ack_timeout`` and whose
        target no live host runs fails too: it went to the dead host or nowhere.
        """
        gone = self._hosts.difference(hosts)
        self._hosts = frozenset(hosts)
        serving = {cid for components in hosts.values() for cid in components}
        for entry in list(self._pending.values()):
            if not entry.watched or entry.fut.done():
                continue
            target = str(entry.target)
            if entry.host is not None:
                if entry.host not in hosts and entry.acked_at < read_at:
                    entry.fail(
                        DeliveryFailedError(
                            f"{target}: its host {entry.host} stopped answering before the "
                            "reply (lattice heartbeat expired); the request may have been handled",
                            component=target,
                        )
                    )
            elif gone and target not in serving and entry.sent_at < read_at - self._ack_timeout:
                entry.fail(
                    DeliveryFailedError(
                        f"{target}: no host took the request and no live host of the lattice "
                        f"runs it any more (host {', '.join(sorted(gone))} left)",
                        component=target,
                    )
                )
