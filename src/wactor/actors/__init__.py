"""The actor core: mailboxes, actors, refs. Plain asyncio; no wasm, no NATS."""

from wactor.actors._actor import (
    Actor,
    ActorCell,
    ActorRef,
    ActorState,
    ActorStats,
    CrashHandler,
    FailureAction,
)
from wactor.actors._mailbox import Backpressure, Mailbox, MailboxStats

__all__ = [
    "Actor",
    "ActorCell",
    "ActorRef",
    "ActorState",
    "ActorStats",
    "Backpressure",
    "CrashHandler",
    "FailureAction",
    "Mailbox",
    "MailboxStats",
]
