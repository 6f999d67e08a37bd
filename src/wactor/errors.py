"""The one error tree of wactor.

Families mirror the WIT error variants of ``airssys:core/errors``; every error carries fields
(component id, file, key, limit …), a one-line message, and the CLI exit code it maps to::

    WactorError                              exit
    ├── ConfigError                            2   bad input from the operator or user
    │   ├── ManifestError                      2   component.toml: file, key, expected
    │   ├── HostConfigError                    2   wactor.toml: file, key, expected
    │   └── DigestMismatchError                2   wasm bytes differ from the pinned sha256
    ├── WasmError                                  mirrors wasm-error
    │   ├── InvalidComponentError              2   garbage, core module, wrong world
    │   ├── InstantiationError                 2   imports unsatisfied, start trapped
    │   ├── ComponentFault                     4   the instance died; it is discarded
    │   │   ├── TrapError                      4   runtime-error: the guest trapped
    │   │   ├── ExecutionTimeoutError          4   timeout: wall-clock limit of one call
    │   │   └── ResourceLimitError             4   resource-limit-exceeded: memory, fuel
    │   └── GuestError                         4   the guest returned err(wasm-error)
    ├── ComponentError                         4   mirrors component-error (lifecycle)
    ├── SecurityError                          3   mirrors security-error
    │   ├── CapabilityDeniedError              3
    │   │   └── RateLimitedError               3   over the component's message rate
    │   ├── SignatureError                     3   a signature exists but does not verify
    │   ├── ApprovalPendingError               3   unknown component waits for an operator
    │   └── ApprovalDeniedError                3   the operator denied this component
    ├── MessagingError                             mirrors messaging-error
    │   ├── TargetNotFoundError                5
    │   ├── QueueFullError                     4
    │   ├── RequestTimeoutError                4   correlation-timeout
    │   ├── DeliveryFailedError                4
    │   │   └── ActorStoppedError              4   the actor stopped; pending asks fail
    │   └── InvalidMessageError                2
    ├── StorageError                           4   mirrors storage-error
    │   ├── QuotaExceededError                 4
    │   ├── InvalidKeyError                    2
    │   └── StorageIOError                     4
    │       └── CorruptStateError              2   a state file holds no database
    └── BuildError                             2   building a guest failed
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
    "SecurityError",
    "SignatureError",
    "StorageError",
    "StorageIOError",
    "TargetNotFoundError",
    "TrapError",
    "WactorError",
    "WasmError",
]


class WactorError(Exception):
    """Root of every error wactor raises on purpose."""

    exit_code: ClassVar[int] = 1

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
    wit_case: ClassVar[str] = "runtime-error"


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


class TrapError(ComponentFault):
    """The guest trapped."""

    wit_case = "runtime-error"


class ExecutionTimeoutError(ComponentFault):
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


class GuestError(WasmError):
    """The guest answered with ``err(wasm-error)``: an application error, not a crash."""

    def __init__(self, case: str, detail: str | None, *, component: str | None = None) -> None:
        text = f"{component}: guest error {case}" if component else f"guest error {case}"
        if detail:
            text = f"{text}: {_escape_controls(detail)}"  # the guest's text; ``detail`` keeps it
        super().__init__(text, component=component)
        self.case = case
        self.detail = detail


# --- lifecycle ------------------------------------------------------------------------------


class ComponentError(WactorError):
    """Family of ``component-error``: lifecycle failures."""

    exit_code = 4

    def __init__(self, message: str, *, case: str = "invalid-state", component: str | None = None):
        super().__init__(message, component=component)
        self.case = case


# --- security -------------------------------------------------------------------------------


class SecurityError(WactorError):
    """Family of ``security-error``."""

    exit_code = 3


class CapabilityDeniedError(SecurityError):
    """A component asked for something its capabilities do not grant."""

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

    def __init__(self, message: str, *, request_id: str, component: str) -> None:
        super().__init__(message, component=component)
        self.request_id = request_id


class ApprovalDeniedError(SecurityError):
    """An operator denied this component (this binary and manifest)."""

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


class TargetNotFoundError(MessagingError):
    """No component with that id runs here."""

    exit_code = 5

    def __init__(self, target: str) -> None:
        super().__init__(f"target not found: {target}", component=target)
        self.target = target


class QueueFullError(MessagingError):
    """The target's mailbox is full."""

    def __init__(self, target: str, capacity: int) -> None:
        super().__init__(f"{target}: mailbox full ({capacity} messages)", component=target)
        self.target = target
        self.capacity = capacity


class RequestTimeoutError(MessagingError):
    """No reply arrived within the request's timeout."""

    def __init__(self, target: str, timeout: float, correlation_id: str | None = None) -> None:
        super().__init__(f"{target}: no reply within {timeout:g}s", component=target)
        self.target = target
        self.timeout = timeout
        self.correlation_id = correlation_id


class DeliveryFailedError(MessagingError):
    """The message could not be delivered or its handler failed."""


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


# --- storage --------------------------------------------------------------------------------


class StorageError(WactorError):
    """Family of ``storage-error``."""

    exit_code = 4


class QuotaExceededError(StorageError):
    """A write would take the component past its storage quota; nothing was changed."""

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


class StorageIOError(StorageError):
    """The storage backend failed."""


class CorruptStateError(StorageIOError):
    """A file of the state directory is not a database (corrupt, truncated, replaced): the
    operator restores or removes it."""

    exit_code = 2

    def __init__(self, message: str, *, file: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file


_REPEATED_PREFIX = re.compile(r"(?<![^\s(])([^\s:]+: )\1+")


def _named_once(component: str, reason: str) -> str:
    """``reason`` without the ``component: `` prefixes that the message adds once itself.

    A reason passed up through supervisors arrives as ``a/b/0: a/b/0: a/b/0: what happened``;
    the user reads the component once, and any other component a reason quotes, once too.
    """
    text = reason.replace(f"{component}: ", "")
    return _REPEATED_PREFIX.sub(r"\1", text) or reason
