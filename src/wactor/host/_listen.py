"""Where the observe endpoint listens (``[observe] listen``, ``wactor run --listen``).

An address is an IP literal or ``localhost`` with a port: ``127.0.0.1:9464``, ``[::1]:9464``,
``localhost:9464`` (port 0: any free port). Names are not resolved: what is bound is what the
operator wrote. The endpoint shows component ids, failures and audit entries to anyone who can
reach it, so an address that is not loopback is refused unless the operator allows it
(``allow-remote = true``, ``--allow-remote``); then the host warns when it starts serving.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["LISTEN_EXPECTED", "ListenAddress", "ObserveConfig", "observe_config", "parse_listen"]

LISTEN_EXPECTED = "HOST:PORT with an IP address or localhost, e.g. 127.0.0.1:9464 or [::1]:9464"


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """An IP address and a TCP port to serve on."""

    host: str  # an IP literal, without brackets
    port: int

    @property
    def loopback(self) -> bool:
        """Whether only this machine can connect."""
        return ipaddress.ip_address(self.host).is_loopback

    def __str__(self) -> str:
        return format_address(self.host, self.port)


@dataclass(frozen=True, slots=True)
class ObserveConfig:
    """``[observe]``: the metrics, status and dashboard endpoint (off when ``listen`` is None)."""

    listen: ListenAddress | None = None
    allow_remote: bool = False  # the operator allows a non-loopback address


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_listen(text: str) -> ListenAddress:
    """Parse ``HOST:PORT``; raise ``ValueError`` saying what is wrong with it."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, as [::1]:9464")
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    if host.lower() == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{text!r}: {host!r} is not an IP address (names other than localhost are not resolved)"
        ) from None
    return ListenAddress(str(address), int(port_text))


def observe_config(listen: str | None, *, allow_remote: bool) -> ObserveConfig:
    """Check an observe setting; raise ``ValueError`` for a bad address, or for one that is not
    loopback when the operator has not allowed that."""
    if listen is None:
        return ObserveConfig(None, allow_remote)
    address = parse_listen(listen)
    if not address.loopback and not allow_remote:
        raise ValueError(
            f"{address} is not a loopback address: anyone who can reach it would read the "
            "host's components, failures and audit entries (allow it with allow-remote = true "
            "in [observe], or --allow-remote)"
        )
    return ObserveConfig(address, allow_remote)
