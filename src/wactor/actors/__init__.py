"""The actor core: mailboxes, actors, refs. Plain asyncio; no wasm, no NATS."""

from wactor.actors._actor import (
    NOT_NOW,
    Actor,
    ActorCell,
    ActorRef,
    ActorState,
    ActorStats,
    ExitHandler,
    ExitReason,
    FailureAction,
    Outcome,
)
from wactor.actors._mailbox import Backpressure, Mailbox, MailboxStats
from wactor.actors._registry import Registry
from wactor.actors._supervisor import (
    Backoff,
    ChildSpec,
    RestartType,
    Strategy,
    Supervisor,
    SupervisorEvent,
    SupervisorSpec,
)

__all__ = [
    "NOT_NOW",
    "Actor",
    "ActorCell",
    "ActorRef",
    "ActorState",
    "ActorStats",
    "Backoff",
    "Backpressure",
    "ChildSpec",
    "ExitHandler",
    "ExitReason",
    "FailureAction",
    "Mailbox",
    "MailboxStats",
    "Outcome",
    "Registry",
    "RestartType",
    "Strategy",
    "Supervisor",
    "SupervisorEvent",
    "SupervisorSpec",
]
