"""The address table and the grant rule of ``wactor:http``: which addresses a grant reaches.

The table is wactor's own (``ipaddress``'s ``is_private``/``is_global`` call multicast, site-local
and the IPv6 forms of loopback "global"); each case here is one of those forms.
"""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from wactor.security._netpolicy import IPAddress, address_denial, grant_denial, special_reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared address space (CGNAT)"),
        ("100.127.255.254", "shared address space (CGNAT)"),
        ("169.254.1.1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.1.1.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.0.9", "IETF protocol assignment"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("192.88.99.1", "6to4 relay anycast"),
        # cloud metadata, the public Azure one included
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("169.254.0.23", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("192.0.0.192", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        # IPv6
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private (unique local)"),
        ("fd12:3456::1", "private (unique local)"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("100::1", "discard-only"),
        ("2001::1", "Teredo"),
        ("2001:2::1", "IETF protocol assignment"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("64:ff9b:1::a9fe:a9fe", "local-use NAT64"),
        ("5f00::1", "SRv6 segment identifier"),
        # IPv6 forms that carry a special IPv4 address
        ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, loopback"),
        ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254, cloud metadata"),
        ("::ffff:10.0.0.1", "IPv4-mapped form of 10.0.0.1, private"),
        ("::127.0.0.1", "IPv4-compatible form of 127.0.0.1, loopback"),
        ("::10.0.0.1", "IPv4-compatible form of 10.0.0.1, private"),
        ("::ffff:0:7f00:1", "IPv4-translated form of 127.0.0.1, loopback"),
        ("64:ff9b::7f00:1", "NAT64 form of 127.0.0.1, loopback"),
        ("64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254, cloud metadata"),
        ("64:ff9b::a83f:8110", "NAT64 form of 168.63.129.16, cloud metadata"),
        ("2002:7f00:1::", "6to4 form of 127.0.0.1, loopback"),
        ("2002:a9fe:a9fe::1", "6to4 form of 169.254.169.254, cloud metadata"),
        ("2002:c0a8:101::", "6to4 form of 192.168.1.1, private"),
    ],
)
def test_a_special_address_is_named_with_its_reason(address: str, reason: str) -> None:
    assert special_reason(ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.216.34",
        "1.1.1.1",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above
        "172.32.0.1",  # just above 172.16/12
        "2606:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",  # DNS64 networks hand these out for public names
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_a_public_address_is_not_special(address: str) -> None:
    assert special_reason(ip_address(address)) is None


def _ips(*texts: str) -> list[IPAddress]:
    return [ip_address(t) for t in texts]


@pytest.mark.parametrize(
    ("grants", "host", "addresses"),
    [
        (["127.0.0.1:8080"], "127.0.0.1", ["127.0.0.1"]),
        (["127.0.0.1:*"], "127.0.0.1", ["127.0.0.1"]),  # a port wildcard names the address
        (["127.0.0.1:8000-8100"], "127.0.0.1", ["127.0.0.1"]),
        (["localhost:8080"], "localhost", ["127.0.0.1", "::1"]),
        (["[::1]:8080"], "::1", ["::1"]),
        (["10.0.0.5:8080"], "10.0.0.5", ["10.0.0.5"]),
        (["169.254.169.254:8080"], "169.254.169.254", ["169.254.169.254"]),
        (["*:8080"], "8.8.8.8", ["8.8.8.8"]),
        (["*.example.org:8080"], "api.example.org", ["93.184.216.34", "2606:4700::1111"]),
        (["api.example.org:8080"], "api.example.org", ["64:ff9b::5db8:d822"]),
    ],
)
def test_what_a_grant_reaches(grants: list[str], host: str, addresses: list[str]) -> None:
    assert address_denial(grants, host, 8080, _ips(*addresses)) is None


@pytest.mark.parametrize(
    ("grants", "host", "addresses", "words"),
    [
        # never through a wildcard
        (["*:*"], "127.0.0.1", ["127.0.0.1"], "127.0.0.1:8080 is loopback"),
        (["*:*"], "localhost", ["127.0.0.1"], "localhost:8080 itself, never a wildcard"),
        (["*:*"], "::1", ["::1"], "[::1]:8080 is loopback"),
        (["*:8080"], "169.254.169.254", ["169.254.169.254"], "cloud metadata"),
        (["*:*"], "::ffff:127.0.0.1", ["::ffff:127.0.0.1"], "IPv4-mapped form of 127.0.0.1"),
        (["*:*"], "64:ff9b::7f00:1", ["64:ff9b::7f00:1"], "NAT64 form of 127.0.0.1"),
        (["*:*"], "168.63.129.16", ["168.63.129.16"], "cloud metadata"),
        # never through a name: a DNS answer is not the operator's word
        (["intranet.example.org:8080"], "intranet.example.org", ["10.0.0.5"], "10.0.0.5 (private)"),
        (["*.example.org:8080"], "evil.example.org", ["93.184.216.34", "127.0.0.1"], "loopback"),
        (["rebind.example:8080", "127.0.0.1:8080"], "rebind.example", ["127.0.0.1"], "a name"),
        (["nip.example:8080"], "nip.example", ["::ffff:169.254.169.254"], "cloud metadata"),
        # localhost is loopback or nothing
        (["localhost:8080"], "localhost", ["10.0.0.1"], "not a loopback address"),
        (["localhost:8080"], "localhost", ["127.0.0.1", "192.168.1.1"], "not a loopback address"),
        # a grant of the IPv4 address is not a grant of its mapped form
        (["127.0.0.1:8080"], "::ffff:127.0.0.1", ["::ffff:127.0.0.1"], "is not granted"),
        # the port counts, for a named address too
        (["127.0.0.1:9090"], "127.0.0.1", ["127.0.0.1"], "is not granted"),
        ([], "example.org", ["93.184.216.34"], "is not granted"),
        (["example.org:8080"], "example.org", [], "resolved to no address"),
    ],
)
def test_what_a_grant_does_not_reach(
    grants: list[str], host: str, addresses: list[str], words: str
) -> None:
    reason = address_denial(grants, host, 8080, _ips(*addresses))
    assert reason is not None
    assert words in reason


def test_a_name_grant_that_resolves_to_a_private_address_says_why() -> None:
    reason = address_denial(
        ["intranet.example.org:443"], "intranet.example.org", 443, _ips("10.0.0.5")
    )
    assert reason == (
        "intranet.example.org resolved to 10.0.0.5 (private): a special address is reachable "
        "only through a grant that names the address itself (or localhost), never a wildcard "
        "or a name that resolves to it"
    )


def test_the_grant_check_before_the_lookup_needs_only_host_and_port() -> None:
    assert grant_denial(["*.example.org:443"], "api.example.org", 443) is None
    assert grant_denial(["*.example.org:443"], "example.org", 443) == (
        "example.org:443 is not granted by [capabilities.network] connect"
    )
    assert grant_denial(["[::1]:80"], "::1", 81) == (
        "[::1]:81 is not granted by [capabilities.network] connect"
    )
