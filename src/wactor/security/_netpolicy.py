"""Outbound connections: which ``host:port`` and which addresses a ``connect`` grant reaches.

A request's host and port must match one of the component's ``[capabilities.network] connect``
patterns (see :func:`~wactor.security._capabilities.check_connect_pattern`). The host resolves
a name once; every address it resolved to is then checked here, and the connection goes to a
checked address only (so a name that answers differently the second time, DNS rebinding, gains
nothing).

Special addresses are loopback, private, shared (CGNAT), link-local, multicast, reserved,
unspecified, documentation and other non-routed ranges, the cloud metadata endpoints (one of
them, Azure's 168.63.129.16, is a public address), and every IPv6 form that embeds such an IPv4
address (IPv4-mapped, IPv4-compatible, SIIT, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``). The
table is written out here rather than taken from ``ipaddress``'s ``is_private``/``is_global``,
whose answers differ between Python releases and call multicast, site-local and the embedded
forms of loopback "global".

A special address is reachable only when the request names that very address as its host (or
``localhost``, for a loopback address) and a grant without a host wildcard names it too: never
through ``*`` or ``*.example.org``, and never through a grant of a *name* that happens to
resolve to it (``intranet.example.org:443`` resolving to 10.0.0.5 is refused; grant
``10.0.0.5:443`` and fetch ``http://10.0.0.5/`` instead). A DNS answer is not the operator's word.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from wactor.security._capabilities import connect_matches, split_host_port

__all__ = [
    "IPAddress",
    "address_denial",
    "grant_denial",
    "is_loopback",
    "special_reason",
]

IPAddress = IPv4Address | IPv6Address

_METADATA: frozenset[IPAddress] = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack, Hetzner
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
        "168.63.129.16",  # Azure WireServer and DNS: a public address, caught only here
        "fd00:ec2::254",  # AWS instance metadata over IPv6
    )
)

_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "unspecified"),  # 0.0.0.0 reaches the local host on Linux
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # and 255.255.255.255, the broadcast address
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("198.18.0.0/15", "benchmarking"),
        ("192.88.99.0/24", "6to4 relay anycast"),
    )
)

_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), why)
    for net, why in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo"),  # embeds an obfuscated IPv4 address: refused outright
        ("2001::/23", "IETF protocol assignment"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("64:ff9b:1::/48", "local-use NAT64"),  # its embedding depends on the operator
        ("5f00::/16", "SRv6 segment identifier"),
    )
)

_MAPPED = IPv6Network("::ffff:0:0/96")
_TRANSLATED = IPv6Network("::ffff:0:0:0/96")  # SIIT (RFC 2765)
_COMPATIBLE = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_SIXTOFOUR = IPv6Network("2002::/16")


def _embedded(address: IPv6Address) -> tuple[IPv4Address, str] | None:
    """The IPv4 address an IPv6 transition form carries, and the form's name."""
    low = IPv4Address(int(address) & 0xFFFF_FFFF)
    if address in _MAPPED:
        return low, "IPv4-mapped"
    if address in _TRANSLATED:
        return low, "IPv4-translated"
    if address in _COMPATIBLE and int(address) > 1:  # not :: or ::1, which are themselves
        return low, "IPv4-compatible"
    if address in _NAT64:
        return low, "NAT64"
    if address in _SIXTOFOUR:
        return IPv4Address((int(address) >> 80) & 0xFFFF_FFFF), "6to4"
    return None


def _v4_reason(address: IPv4Address) -> str | None:
    if address in _METADATA:
        return "cloud metadata"
    for network, why in _V4:
        if address in network:
            return why
    return None


def special_reason(address: IPAddress) -> str | None:
    """Why ``address`` is special (``"loopback"``, ``"cloud metadata"``, …), or ``None``."""
    if isinstance(address, IPv4Address):
        return _v4_reason(address)
    if address.scope_id is not None:
        return "scoped (zone index)"
    if address in _METADATA:
        return "cloud metadata"
    embedded = _embedded(address)
    if embedded is not None:
        inner, form = embedded
        why = _v4_reason(inner)
        return None if why is None else f"{form} form of {inner}, {why}"
    for network, why in _V6:
        if address in network:
            return why
    return None


def is_loopback(address: IPAddress) -> bool:
    """Whether ``address`` is loopback, in any of its IPv6 forms too."""
    if isinstance(address, IPv6Address):
        if address == IPv6Address("::1"):
            return True
        embedded = _embedded(address)
        if embedded is None:
            return False
        address = embedded[0]
    return address in IPv4Network("127.0.0.0/8")


def _literal(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def grant_denial(grants: Iterable[str], host: str, port: int) -> str | None:
    """Why ``host:port`` is not granted at all, or ``None`` when a pattern matches it.

    ``host`` is lower case without a trailing dot; an IPv6 literal comes without brackets.
    """
    if any(connect_matches(pattern, host, port) for pattern in grants):
        return None
    return f"{_target(host, port)} is not granted by [capabilities.network] connect"


def _named_by_grant(grants: Iterable[str], host: str, port: int) -> bool:
    """Whether a grant without a host wildcard names ``host`` itself and allows ``port``."""
    for pattern in grants:
        parts = split_host_port(pattern)
        if parts is None or "*" in parts[0]:
            continue
        if connect_matches(pattern, host, port):
            return True
    return False


def address_denial(
    grants: Sequence[str], host: str, port: int, addresses: Sequence[IPAddress]
) -> str | None:
    """Why connecting to ``addresses`` (what ``host`` resolved to) is refused, or ``None``.

    Every address must pass: ``host:port`` is granted (see :func:`grant_denial`), and each
    special address is the request's own host, an IP literal or ``localhost`` (for loopback),
    named by a grant without a host wildcard.
    """
    denied = grant_denial(grants, host, port)
    if denied is not None:
        return denied
    if not addresses:
        return f"{host} resolved to no address"
    literal = _literal(host)
    target = _target(host, port)
    for address in addresses:
        why = special_reason(address)
        if why is None:
            continue
        names_it = (literal is not None and literal == address) or (
            host == "localhost" and is_loopback(address)
        )
        if names_it and _named_by_grant(grants, host, port):
            continue
        if literal is not None:
            return (
                f"{target} is {why}: reachable only through a grant that names "
                "this address itself, never a wildcard"
            )
        if host == "localhost":
            return (
                f"localhost resolved to {address} ({why}), not a loopback address"
                if not is_loopback(address)
                else f"{target} is loopback: reachable only through a grant of "
                f"localhost:{port} itself, never a wildcard"
            )
        return (
            f"{host} resolved to {address} ({why}): a special address is reachable only "
            "through a grant that names the address itself (or localhost), never a wildcard "
            "or a name that resolves to it"
        )
    return None
