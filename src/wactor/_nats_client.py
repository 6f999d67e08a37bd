"""The nats-py client every wactor connection uses, hardened against a hostile peer's headers.

nats-py parses a message's header block on its connection's read loop. A status line that is
not UTF-8 (``NATS/1.0 503 \\xff``), which any peer may publish to any subject we listen on,
raises there, and the read loop stops: nothing more is read until the connection is given up
and re-established, seconds later. This client reads such a block as a message whose headers
are the single :data:`MALFORMED_HEADER`, which the receiving code refuses like any other
malformed message.
"""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client

__all__ = ["MALFORMED_HEADER", "NatsClient"]

MALFORMED_HEADER = "Wactor-Malformed-Headers"
"""The one header of a message whose header block nats-py could not parse."""


class NatsClient(Client):
    """A nats-py ``Client`` whose read loop survives malformed header blocks."""

    async def _process_headers(self, headers: Any) -> dict[str, str] | None:
        try:
            parsed: dict[str, str] | None = await super()._process_headers(headers)
        except Exception:  # noqa: BLE001 - a peer's garbage must not stop the read loop
            return {MALFORMED_HEADER: "1"}
        return parsed
