"""Messaging: envelopes, correlation of requests, the dead-letter log.

The NATS backend (``NatsBroker`` and its subject helpers) is imported on first use, so that
messaging without a lattice never loads a NATS client.
"""

from __future__ import annotations

import typing

from wactor._lazy import lazy_exports as _lazy_exports
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

_NATS = "wactor.messaging._nats"
__getattr__ = _lazy_exports(
    __name__,
    {_NATS: ("NatsBroker", "component_subject", "topic_subject")},
)
