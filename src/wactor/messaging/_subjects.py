"""Topic subjects (``orders.eu.created``) and patterns (``orders.*.created``, ``orders.#``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SubjectPattern", "check_subject"]

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+\Z")
_REST = ("#", ">")  # '#' (AMQP style) and '>' (NATS style) both match one or more tokens


def check_subject(subject: str) -> str:
    """Return ``subject`` if it is dot-separated plain tokens; raise ``ValueError`` otherwise."""
    tokens = subject.split(".")
    if not subject or len(subject) > 255 or not all(_TOKEN.match(t) for t in tokens):
        raise ValueError(
            f"subject {subject!r} must be 1-255 characters of dot-separated tokens "
            "(letters, digits, '_', '-')"
        )
    return subject


@dataclass(frozen=True, slots=True)
class SubjectPattern:
    """A subscription pattern: ``*`` matches one token, a final ``#`` (or ``>``) the rest."""

    text: str
    tokens: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> SubjectPattern:
        """Parse a pattern; raise ``ValueError`` with a one-line reason."""
        tokens = tuple(text.split("."))
        for i, tok in enumerate(tokens):
            if tok in _REST:
                if i != len(tokens) - 1:
                    raise ValueError(f"pattern {text!r}: {tok!r} may only be the last token")
            elif tok != "*" and not _TOKEN.match(tok):
                raise ValueError(f"pattern {text!r}: bad token {tok!r}")
        return cls(text, tokens)

    def matches(self, subject: str) -> bool:
        """Tell whether ``subject`` falls under this pattern."""
        parts = subject.split(".")
        for i, tok in enumerate(self.tokens):
            if tok in _REST:
                return len(parts) > i
            if i >= len(parts) or (tok != "*" and tok != parts[i]):
                return False
        return len(parts) == len(self.tokens)
