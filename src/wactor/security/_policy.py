"""The capability policy: every decision about what a running component may do, audited.

One :class:`CapabilityPolicy` per component answers every capability question the host asks
about it: messaging targets (send, request, broadcast), topics (publish, subscribe), the message
rate, the broadcast fan-out, storage and outbound connections (``wactor:http``). Each decision
is audited: a grant the first time it is made (decisions are cached per question), every denial
each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wactor._ids import ComponentId
from wactor.errors import CapabilityDeniedError, InvalidMessageError, RateLimitedError
from wactor.security._audit import AuditLog
from wactor.security._capabilities import Capabilities, MessagingAction
from wactor.security._netpolicy import IPAddress, address_denial, grant_denial

__all__ = ["CapabilityPolicy", "MessagingPolicy", "RateLimit", "TokenBucket"]

# A guest can name arbitrarily many distinct targets; past this many cached decisions the cache
# starts over rather than growing without bound (grants are then audited once more).
_POLICY_CACHE_LIMIT = 4096


class TokenBucket:
    """Allow ``rate`` events per second on average, ``burst`` at once; thread-safe."""

    def __init__(self, rate: int, burst: int) -> None:
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take one token if there is one."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The messages per second a component may emit, and how many at once."""

    rate: int
    burst: int | None = None


class CapabilityPolicy:
    """Decide, and audit, what one component may do with its capabilities.

    Thread-safe enough for its purpose: concurrent first checks may audit the same grant twice,
    never lose a denial.
    """

    __slots__ = (
        "_audit",
        "_bucket",
        "_cache",
        "_capabilities",
        "_component",
        "_rate",
        "_rate_limited",
    )

    def __init__(
        self,
        capabilities: Capabilities,
        component_id: ComponentId | str,
        audit: AuditLog | None,
        *,
        rate: RateLimit | None = None,
    ) -> None:
        self._capabilities = capabilities
        self._component = str(component_id)
        self._audit = audit
        self._cache: dict[tuple[str, object], bool] = {}
        self._rate = rate
        self._bucket = TokenBucket(rate.rate, rate.burst or rate.rate) if rate else None
        self._rate_limited = 0

    @property
    def capabilities(self) -> Capabilities:
        """The capabilities this policy enforces."""
        return self._capabilities

    # -- messaging targets -----------------------------------------------------------------------

    def allows(self, action: MessagingAction, target: ComponentId) -> bool:
        """Tell whether ``action`` towards ``target`` is granted (cached, audits first grants)."""
        key = (action, target)
        allowed = self._cache.get(key)
        if allowed is None:
            allowed = self._capabilities.allows(action, target)  # ValueError on a bad action
            self._remember(key, allowed, action, str(target))
        return allowed

    def check(self, action: MessagingAction, target: ComponentId) -> None:
        """Return if granted; otherwise audit the denial and raise ``CapabilityDeniedError``."""
        if self._cache.get((action, target)) or self.allows(action, target):
            return
        reason = f"{action} to {target} is not granted by its capabilities"
        self._record_denial(action, str(target), reason)
        raise CapabilityDeniedError(
            f"{self._component}: {reason}",
            capability=f"messaging.{action}",
            component=self._component,
        )

    def check_message(self, action: MessagingAction, target: ComponentId) -> None:
        """Check a message about to leave: its target, then the component's message rate."""
        self.check(action, target)
        self.spend(action, str(target))

    # -- topics ----------------------------------------------------------------------------------

    def check_publish(self, subject: str) -> None:
        """Check a publication on ``subject``: the grant, then the message rate."""
        self._check_grant(
            "messaging.publish", subject, lambda: self._capabilities.allows_publish(subject)
        )
        self.spend("publish", subject)

    def check_subscribe(self, pattern: str) -> None:
        """Check a subscription to ``pattern`` (it must be covered by a granted pattern)."""
        self._check_grant(
            "messaging.subscribe", pattern, lambda: self._capabilities.allows_subscribe(pattern)
        )

    # -- rate and fan-out ------------------------------------------------------------------------

    def spend(self, action: str, target: str, *, capability: str | None = None) -> None:
        """Take one message from the rate budget, or audit and raise ``RateLimitedError``.

        The denial is audited under ``capability`` (default: ``messaging.<action>``).
        """
        if self._bucket is None or self._bucket.take():
            return
        assert self._rate is not None
        self._rate_limited += 1
        # every refusal is audited; the audit log's per-component budget sheds a flood
        # and writes one summary saying how many it shed
        self._record_denial(
            capability or f"messaging.{action}",
            target,
            f"rate limit of {self._rate.rate}/s ({self._rate_limited} refused so far)",
        )
        raise RateLimitedError(
            f"{self._component}: message rate limit of {self._rate.rate}/s exceeded",
            capability="resources.message-rate",
            component=self._component,
        )

    def check_fan_out(self, count: int, limit: int) -> None:
        """Refuse a broadcast to more than ``limit`` targets (the host's ``[limits]``)."""
        if count <= limit:
            return
        reason = f"broadcast to {count} targets exceeds the limit of {limit}"
        self._record_denial("messaging.broadcast", "", reason)
        raise InvalidMessageError(f"{self._component}: {reason} ([limits] broadcast-targets)")

    # -- storage and network ---------------------------------------------------------------------

    def allows_storage(self) -> bool:
        """Tell whether the component may use key-value storage (audits the first grant)."""
        key = ("storage", None)
        allowed = self._cache.get(key)
        if allowed is None:
            allowed = self._capabilities.has_storage
            self._remember(key, allowed, "storage", "")
        if not allowed:
            self._record_denial("storage", "", "no storage capability granted")
        return allowed

    def check_connect(
        self, host: str, port: int, addresses: Sequence[IPAddress] | None = None
    ) -> None:
        """Check an outbound connection to ``host:port``; raise ``CapabilityDeniedError``.

        Called twice per exchange: before the name is resolved (``addresses`` ``None``: is
        ``host:port`` granted at all, so an ungranted name is never looked up), then with
        every address it resolved to (see :mod:`wactor.security._netpolicy`). Every denial is
        audited with its reason; a grant once per ``host:port``, with the addresses.
        """
        grants = self._capabilities.net_connect
        if addresses is None:
            reason = grant_denial(grants, host, port)
        else:
            reason = address_denial(grants, host, port, addresses)
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if reason is None:
            key = ("network.connect", target)
            if addresses is not None and not self._cache.get(key):
                shown = ", ".join(str(a) for a in addresses)
                self._remember(key, True, "network.connect", target, f"resolved to {shown}")
            return
        self._record_denial("network.connect", target, reason)
        raise CapabilityDeniedError(
            f"{self._component}: {reason}", capability="network.connect", component=self._component
        )

    # -- auditing --------------------------------------------------------------------------------

    def _check_grant(self, capability: str, target: str, granted: Callable[[], bool]) -> None:
        key = (capability, target)
        allowed = self._cache.get(key)
        if allowed is None:
            allowed = granted()
            self._remember(key, allowed, capability, target)
        if allowed:
            return
        self._record_denial(capability, target, "not granted")
        raise CapabilityDeniedError(
            f"{self._component}: {capability} {target!r} is not granted by its manifest",
            capability=capability,
            component=self._component,
        )

    def _remember(
        self, key: tuple[str, object], allowed: bool, action: str, target: str, reason: str = ""
    ) -> None:
        if len(self._cache) >= _POLICY_CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = allowed
        if allowed and self._audit is not None:
            self._audit.record(
                "grant", self._component, allowed=True, action=action, target=target, reason=reason
            )

    def _record_denial(self, action: str, target: str, reason: str) -> None:
        if self._audit is not None:
            self._audit.record(
                "denial",
                self._component,
                allowed=False,
                action=action,
                target=target,
                reason=reason,
            )


MessagingPolicy = CapabilityPolicy
"""The policy's former name (it decided messaging only)."""
