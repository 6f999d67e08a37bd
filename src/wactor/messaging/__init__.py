"""Messaging: envelopes, correlation of requests, the dead-letter log.

The NATS backend (``NatsBroker`` and its subject helpers) is imported on first use, so that
messaging without a lattice never loads a NATS client.
"""

from __future__ import annotations

import importlib
import typing

from wactor.messaging._broker import Broker, BrokerStats, Endpoint, Subscription, TopicHandler
from wactor.messaging._correlation import CorrelationStats, Correlator, PendingRequest
from wactor.messaging._deadletters import DeadLetter, DeadLetterLog, read_dead_letters
from wactor.messaging._envelope import ERROR_CONTENT_TYPE, Envelope, MessageKind
from wactor.messaging._memory import MemoryBroker
from wactor.messaging._subjects import SubjectPattern, check_subject

if typing.TYPE_CHECKING:
    from wactor.messaging._nats import NatsBroker, component_subject, topic_subject

__all__ = [
    "ERROR_CONTENT_TYPE",
    "Broker",
    "BrokerStats",
    "CorrelationStats",
    "Correlator",
    "DeadLetter",
    "DeadLetterLog",
    "Endpoint",
    "Envelope",
    "MemoryBroker",
    "MessageKind",
    "NatsBroker",
    "PendingRequest",
    "SubjectPattern",
    "Subscription",
    "TopicHandler",
    "check_subject",
    "component_subject",
    "read_dead_letters",
    "topic_subject",
]

_NATS_NAMES = frozenset({"NatsBroker", "component_subject", "topic_subject"})


def __getattr__(name: str) -> typing.Any:
    if name not in _NATS_NAMES:
        raise AttributeError(f"module 'wactor.messaging' has no attribute {name!r}")
    value = getattr(importlib.import_module("wactor.messaging._nats"), name)
    globals()[name] = value
    return value
