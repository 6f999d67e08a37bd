"""The one error tree of wactor.

Families mirror the WIT error variants of ``airssys:core/errors``. Every error carries fields
(component id, file, key, limit …), a one-line message, the CLI exit code it maps to, and
``wit_case``: the case of its family's WIT variant (``wit_variant``) that a guest receives when
a host function fails with it. The timeout errors subclass the builtin ``TimeoutError`` too::

    WactorError                      exit  WIT case
    ├── ConfigError                    2   -                        bad operator or user input
    │   ├── ManifestError              2   -                        component.toml: file, key
    │   ├── HostConfigError            2   -                        wactor.toml: file, key
    │   └── DigestMismatchError        2   -                        wasm differs from its pin
    ├── WasmError                      4   wasm-error: runtime-error
    │   ├── InvalidComponentError      2   invalid-component        garbage, wrong world
    │   ├── InstantiationError         2   instantiation-failed     imports, start trapped
    │   ├── ComponentFault             4   runtime-error            the instance is discarded
    │   │   ├── TrapError              4   runtime-error            the guest trapped
    │   │   ├── ExecutionTimeoutError  4   timeout                  one call's limit; a TimeoutError
    │   │   ├── ResourceLimitError     4   resource-limit-exceeded  memory, fuel
    │   │   └── UnhealthyError         4   runtime-error            unhealthy N checks in a row
    │   └── GuestError                 4   the guest's own case     the guest returned err
    ├── ComponentError                 4   component-error: its ``case`` (lifecycle)
    ├── SecurityError                  3   security-error: policy-violation
    │   ├── CapabilityDeniedError      3   capability-denied
    │   │   └── RateLimitedError       3   capability-denied        over its message rate
    │   ├── SignatureError             3   policy-violation         signature does not verify
    │   ├── ApprovalPendingError       3   permission-denied        waits for an operator
    │   └── ApprovalDeniedError        3   permission-denied        an operator denied it
    ├── MessagingError                 4   messaging-error: delivery-failed
    │   ├── TargetNotFoundError        5   target-not-found
    │   ├── QueueFullError             4   queue-full
    │   ├── RequestTimeoutError        4   correlation-timeout      no reply; a TimeoutError
    │   ├── DeliveryFailedError        4   delivery-failed
    │   │   └── ActorStoppedError      4   delivery-failed          pending asks fail
    │   └── InvalidMessageError        2   invalid-message
    ├── StorageError                   4   storage-error: io-error
    │   ├── QuotaExceededError         4   quota-exceeded
    │   ├── InvalidKeyError            2   invalid-key
    │   └── StorageIOError             4   io-error
    │       └── CorruptStateError      2   io-error                 a state file holds no database
    ├── HttpError                      4   http-error: failed       an outbound exchange failed
    │   ├── HttpRequestError           2   invalid-request          malformed URL, method, header
    │   ├── HttpTimeoutError           4   timeout                  late; a TimeoutError
    │   └── ResponseTooLargeError      4   too-large                past the response size limit
    └── BuildError                     2   -                        building a guest failed

``http-error`` is the variant of ``wactor:http/client`` (an extension package); its ``denied``
case is a :class:`CapabilityDeniedError`.
"""

from __future__ import annotations

import re
from typing import ClassVar

from wactor._text import escape_controls as _escape_controls

__all__ = [
    "ActorStoppedError",
    "ApprovalDeniedError",
    "ApprovalPendingError",
    "BuildError",
    "CapabilityDeniedError",
    "ComponentError",
    "ComponentFault",
    "ConfigError",
    "CorruptStateError",
    "DeliveryFailedError",
    "DigestMismatchError",
    "ExecutionTimeoutError",
    "GuestError",
    "HostConfigError",
    "HttpError",
    "HttpRequestError",
    "HttpTimeoutError",
    "InstantiationError",
    "InvalidComponentError",
    "InvalidKeyError",
    "InvalidMessageError",
    "ManifestError",
    "MessagingError",
    "QueueFullError",
    "QuotaExceededError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResourceLimitError",
    "ResponseTooLargeError",
    "SecurityError",
    "SignatureError",
    "StorageError",
    "StorageIOError",
    "TargetNotFoundError",
    "TrapError",
    "UnhealthyError",
    "WactorError",
    "WasmError",
]


class WactorError(Exception):
    """Root of every error wactor raises on purpose."""

    exit_code: ClassVar[int] = 1
    wit_variant: ClassVar[str | None] = None
    """The WIT error variant of this error's family; ``None``: no guest receives it."""
    wit_case: str | None = None
    """The case of :attr:`wit_variant` a guest receives for this error."""

    def __init__(self, message: str, *, component: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.component = component

    def __str__(self) -> str:
        return self.message


# --- configuration -------------------------------------------------------------------------


class ConfigError(WactorError):
    """Operator or user input is invalid."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        expected: str | None = None,
        component: str | None = None,
    ) -> None:
        where = ": ".join(p for p in (file, key) if p)
        text = f"{where}: {message}" if where else message
        if expected:
            text = f"{text} (expected {expected})"
        super().__init__(text, component=component)
        self.file = file
        self.key = key
        self.expected = expected


class ManifestError(ConfigError):
    """A component manifest is invalid."""


class HostConfigError(ConfigError):
    """A host config file is invalid."""


class DigestMismatchError(ConfigError):
    """The component's wasm does not match its pinned digest."""


class BuildError(WactorError):
    """Building a guest component failed."""

    exit_code = 2


# --- wasm ------------------------------------------------------------------------------------


class WasmError(WactorError):
    """Family of ``wasm-error``."""

    exit_code = 4
    wit_variant = "wasm-error"
    wit_case = "runtime-error"


class InvalidComponentError(WasmError):
    """The bytes are not a component of the ``runtime-host`` world."""

    exit_code = 2
    wit_case = "invalid-component"

    def __init__(self, message: str, *, path: str | None = None, component: str | None = None):
        super().__init__(f"{path}: {message}" if path else message, component=component)
        self.path = path


class InstantiationError(WasmError):
    """The component could not be instantiated."""

    exit_code = 2
    wit_case = "instantiation-failed"


class ComponentFault(WasmError):
    """The instance died during a call; it has been discarded."""

    exit_code = 4
    wit_case = "runtime-error"


class TrapError(ComponentFault):
    """The guest trapped."""


class ExecutionTimeoutError(ComponentFault, TimeoutError):
    """One export call ran past its wall-clock limit."""

    wit_case = "timeout"

    def __init__(self, message: str, *, timeout_ms: int, component: str | None = None) -> None:
        super().__init__(message, component=component)
        self.timeout_ms = timeout_ms


class ResourceLimitError(ComponentFault):
    """The guest hit a resource limit (memory or fuel)."""

    wit_case = "resource-limit-exceeded"

    def __init__(self, message: str, *, limit: str, component: str | None = None) -> None:
        super().__init__(message, component=component)
        self.limit = limit


class UnhealthyError(ComponentFault):
    """The guest reported ``unhealthy`` too many times in a row; it is restarted."""

    def __init__(self, component: str, threshold: int) -> None:
        super().__init__(f"{component}: unhealthy {threshold} times in a row", component=component)
        self.threshold = threshold


class GuestError(WasmError):
    """The guest answered with ``err(wasm-error)``: an application error, not a crash."""

    def __init__(self, case: str, detail: str | None, *, component: str | None = None) -> None:
        text = f"{component}: guest error {case}" if component else f"guest error {case}"
        if detail:
            text = f"{text}: {_escape_controls(detail)}"  # the guest's text; ``detail`` keeps it
        super().__init__(text, component=component)
        self.case = case
        self.detail = detail
        self.wit_case = case


# --- lifecycle ------------------------------------------------------------------------------


class ComponentError(WactorError):
    """Family of ``component-error``: lifecycle failures."""

    exit_code = 4
    wit_variant = "component-error"
    wit_case = "invalid-state"

    def __init__(self, message: str, *, case: str = "invalid-state", component: str | None = None):
        super().__init__(message, component=component)
        self.case = case
        self.wit_case = case


# --- security -------------------------------------------------------------------------------


class SecurityError(WactorError):
    """Family of ``security-error``."""

    exit_code = 3
    wit_variant = "security-error"
    wit_case = "policy-violation"


class CapabilityDeniedError(SecurityError):
    """A component asked for something its capabilities do not grant."""

    wit_case = "capability-denied"

    def __init__(self, message: str, *, capability: str, component: str | None = None) -> None:
        super().__init__(message, component=component)
        self.capability = capability


class SignatureError(SecurityError):
    """A component's signature file exists but does not verify; the component is refused."""

    def __init__(self, manifest: str, reason: str, *, component: str | None = None) -> None:
        super().__init__(f"{manifest}: signature rejected: {reason}", component=component)
        self.manifest = manifest
        self.reason = reason


class ApprovalPendingError(SecurityError):
    """An unknown component waits in the approval queue until an operator decides."""

    wit_case = "permission-denied"

    def __init__(self, message: str, *, request_id: str, component: str) -> None:
        super().__init__(message, component=component)
        self.request_id = request_id


class ApprovalDeniedError(SecurityError):
    """An operator denied this component (this binary and manifest)."""

    wit_case = "permission-denied"

    def __init__(self, message: str, *, request_id: str, component: str, reason: str = "") -> None:
        super().__init__(message, component=component)
        self.request_id = request_id
        self.reason = reason


# --- messaging ------------------------------------------------------------------------------


class RateLimitedError(CapabilityDeniedError):
    """A component sent faster than its ``message-rate`` allows; the message was refused."""


class MessagingError(WactorError):
    """Family of ``messaging-error``."""

    exit_code = 4
    wit_variant = "messaging-error"
    wit_case = "delivery-failed"


class TargetNotFoundError(MessagingError):
    """No component with that id runs here."""

    exit_code = 5
    wit_case = "target-not-found"

    def __init__(self, target: str) -> None:
        super().__init__(f"target not found: {target}", component=target)
        self.target = target


class QueueFullError(MessagingError):
    """The target's mailbox is full."""

    wit_case = "queue-full"

    def __init__(self, target: str, capacity: int) -> None:
        super().__init__(f"{target}: mailbox full ({capacity} messages)", component=target)
        self.target = target
        self.capacity = capacity


class RequestTimeoutError(MessagingError, TimeoutError):
    """No reply arrived within the request's timeout."""

    wit_case = "correlation-timeout"

    def __init__(self, target: str, timeout: float, correlation_id: str | None = None) -> None:
        super().__init__(f"{target}: no reply within {timeout:g}s", component=target)
        self.target = target
        self.timeout = timeout
        self.correlation_id = correlation_id


class DeliveryFailedError(MessagingError):
    """The message could not be delivered or its handler failed."""

    wit_case = "delivery-failed"


class ActorStoppedError(DeliveryFailedError):
    """The actor stopped before it could handle the message."""

    def __init__(self, target: str, reason: str = "stopped") -> None:
        reason = _named_once(target, reason)
        super().__init__(f"{target}: {reason} before handling the message", component=target)
        self.target = target
        self.reason = reason


class InvalidMessageError(MessagingError):
    """The message is malformed or too large."""

    exit_code = 2
    wit_case = "invalid-message"


# --- storage --------------------------------------------------------------------------------


class StorageError(WactorError):
    """Family of ``storage-error``."""

    exit_code = 4
    wit_variant = "storage-error"
    wit_case = "io-error"


class QuotaExceededError(StorageError):
    """A write would take the component past its storage quota; nothing was changed."""

    wit_case = "quota-exceeded"

    def __init__(self, component: str, quota: int, needed: int) -> None:
        super().__init__(
            f"{component}: storage quota exceeded ({needed} of {quota} bytes)",
            component=component,
        )
        self.quota = quota
        self.needed = needed


class InvalidKeyError(StorageError):
    """The storage key is not acceptable."""

    exit_code = 2
    wit_case = "invalid-key"


class StorageIOError(StorageError):
    """The storage backend failed."""

    wit_case = "io-error"


class CorruptStateError(StorageIOError):
    """A file of the state directory is not a database (corrupt, truncated, replaced): the
    operator restores or removes it."""

    exit_code = 2

    def __init__(self, message: str, *, file: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file


# --- outbound HTTP (wactor:http/client) -------------------------------------------------------


class HttpError(WactorError):
    """Family of ``http-error``: DNS, connect or TLS failed, or the peer broke the protocol."""

    exit_code = 4
    wit_variant = "http-error"
    wit_case = "failed"


class HttpRequestError(HttpError):
    """A guest's request is malformed: method, URL, header or body; nothing was sent."""

    exit_code = 2
    wit_case = "invalid-request"


class HttpTimeoutError(HttpError, TimeoutError):
    """No complete answer within the exchange's limit (``call_deadline``: the limit was the
    calling component's own call deadline, which ends that call as its timeout)."""

    wit_case = "timeout"

    def __init__(
        self,
        message: str,
        *,
        timeout_ms: int,
        call_deadline: bool = False,
        component: str | None = None,
    ) -> None:
        super().__init__(message, component=component)
        self.timeout_ms = timeout_ms
        self.call_deadline = call_deadline


class ResponseTooLargeError(HttpError):
    """A response body passed the host's size limit; the connection was dropped."""

    wit_case = "too-large"

    def __init__(self, message: str, *, limit: int, component: str | None = None) -> None:
        super().__init__(message, component=component)
        self.limit = limit


_REPEATED_PREFIX = re.compile(r"(?<![^\s(])([^\s:]+: )\1+")


def _named_once(component: str, reason: str) -> str:
    """``reason`` without the ``component: `` prefixes that the message adds once itself.

    A reason passed up through supervisors arrives as ``a/b/0: a/b/0: a/b/0: what happened``;
    the user reads the component once, and any other component a reason quotes, once too.
    """
    text = reason.replace(f"{component}: ", "")
    return _REPEATED_PREFIX.sub(r"\1", text) or reason
