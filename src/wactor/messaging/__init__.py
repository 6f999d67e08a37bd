"""Messaging: envelopes and their codec, correlation of requests, the dead-letter log."""

from wactor.messaging._correlation import CorrelationStats, Correlator, PendingRequest
from wactor.messaging._deadletters import DeadLetter, DeadLetterLog
from wactor.messaging._envelope import (
    ERROR_CONTENT_TYPE,
    Envelope,
    MessageKind,
    decode_envelope,
    encode_envelope,
)

__all__ = [
    "ERROR_CONTENT_TYPE",
    "CorrelationStats",
    "Correlator",
    "DeadLetter",
    "DeadLetterLog",
    "Envelope",
    "MessageKind",
    "PendingRequest",
    "decode_envelope",
    "encode_envelope",
]
