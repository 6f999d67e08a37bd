"""Messaging: envelopes, correlation of requests, the dead-letter log.

Names are imported on first use: messaging without a lattice never loads a NATS client (the
``NatsBroker`` and its subject helpers), and reading a subject pattern or a dead letter loads no
broker or event loop.
"""

from __future__ import annotations

import typing

from wactor._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
    from wactor.messaging._broker import Broker, BrokerStats, Endpoint, Subscription, TopicHandler
    from wactor.messaging._correlation import CorrelationStats, Correlator, PendingRequest
    from wactor.messaging._deadletters import DeadLetter, DeadLetterLog, read_dead_letters
    from wactor.messaging._envelope import ERROR_CONTENT_TYPE, Envelope, MessageKind
    from wactor.messaging._memory import MemoryBroker
    from wactor.messaging._nats import NatsBroker, component_subject, topic_subject
    from wactor.messaging._subjects import SubjectPattern, check_subject

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

__getattr__ = _lazy_exports(
    __name__,
    {
        "wactor.messaging._broker": (
            "Broker",
            "BrokerStats",
            "Endpoint",
            "Subscription",
            "TopicHandler",
        ),
        "wactor.messaging._correlation": ("CorrelationStats", "Correlator", "PendingRequest"),
        "wactor.messaging._deadletters": ("DeadLetter", "DeadLetterLog", "read_dead_letters"),
        "wactor.messaging._envelope": ("ERROR_CONTENT_TYPE", "Envelope", "MessageKind"),
        "wactor.messaging._memory": ("MemoryBroker",),
        "wactor.messaging._nats": ("NatsBroker", "component_subject", "topic_subject"),
        "wactor.messaging._subjects": ("SubjectPattern", "check_subject"),
    },
)
