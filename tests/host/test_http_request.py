"""A guest's HTTP request is checked before anything leaves: an attack list for the URL parser.

Each refused request is ``invalid-request`` (``HttpRequestError``); what passes is parsed once,
and those parts alone are what the grant check, the lookup, the connection, the ``Host`` header
and TLS's server name use.
"""

from __future__ import annotations

import pytest

from wactor.errors import HttpRequestError
from wactor.host._http_request import check_request


def _check(
    url: str,
    *,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    max_body: int = 1024,
) -> object:
    return check_request(method, url, headers or [], body, max_body=max_body)


@pytest.mark.parametrize(
    ("url", "parts", "authority"),
    [
        ("http://example.com", ("http", "example.com", 80, "/"), "example.com"),
        ("https://example.com/a?q=1#frag", ("https", "example.com", 443, "/a?q=1"), "example.com"),
        ("HTTP://EXAMPLE.com./x", ("http", "example.com", 80, "/x"), "example.com"),
        ("http://example.com:8080?q", ("http", "example.com", 8080, "/?q"), "example.com:8080"),
        ("http://example.com:/p", ("http", "example.com", 80, "/p"), "example.com"),
        ("https://127.0.0.1:8443/", ("https", "127.0.0.1", 8443, "/"), "127.0.0.1:8443"),
        ("http://[::1]:8080/", ("http", "::1", 8080, "/"), "[::1]:8080"),
        ("http://[0:0::1]/", ("http", "::1", 80, "/"), "[::1]"),
        ("http://[::FFFF:127.0.0.1]/", ("http", "::ffff:7f00:1", 80, "/"), "[::ffff:7f00:1]"),
        ("http://xn--bcher-kva.example/%C3%A4", ("http", "xn--bcher-kva.example", 80, "/%C3%A4"),
         "xn--bcher-kva.example"),
    ],
)  # fmt: skip
def test_a_good_url_is_parsed_once(
    url: str, parts: tuple[str, str, int, str], authority: str
) -> None:
    request = check_request("GET", url, [], b"", max_body=0)
    assert (request.scheme, request.host, request.port, request.target) == parts
    assert request.headers[-1] == (b"Host", authority.encode())


@pytest.mark.parametrize(
    ("url", "words"),
    [
        # parsers disagree on user info and backslashes: refused outright
        ("http://example.com\\@127.0.0.1/", "backslashes"),
        ("http://user:pw@example.com/", "user info"),
        ("http://example.com@127.0.0.1/", "user info"),
        ("http://@example.com/", "user info"),
        # numeric hosts the resolver would still read as 127.0.0.1
        ("http://2130706433/", "dotted IPv4"),
        ("http://0x7f000001/", "dotted IPv4"),
        ("http://0x7f.1/", "dotted IPv4"),
        ("http://127.1/", "dotted IPv4"),
        ("http://0177.0.0.1/", "dotted IPv4"),
        ("http://017700000001/", "dotted IPv4"),
        ("http://127.0.0.01/", "dotted IPv4"),
        ("http://1.2.3.4.5/", "dotted IPv4"),
        ("http://example.123/", "dotted IPv4"),
        # IPv6 zones and malformed literals
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://[fe80::1%eth0]/", "zone"),
        ("http://[::1/", "bad host"),
        ("http://[::1]x/", "bad host"),
        ("http://[]/", "not an IPv6 address"),
        ("http://[127.0.0.1]/", "not an IPv6 address"),
        ("http://::1/", "needs brackets"),
        ("http://a:80:80/", "needs brackets"),
        # ports
        ("http://example.com:0/", "bad port"),
        ("http://example.com:65536/", "bad port"),
        ("http://example.com:99999/", "bad port"),
        ("http://example.com:-1/", "bad port"),
        ("http://example.com:+80/", "bad port"),
        ("http://example.com:0x50/", "bad port"),
        ("http://example.com:000080/", "bad port"),
        # characters
        ("http://exa mple.com/", "printable ASCII"),
        ("http://example.com/a b", "printable ASCII"),
        ("http://example.com/\r\nX-Evil: 1", "printable ASCII"),
        ("http://example.com/\t", "printable ASCII"),
        ("http://example.com/\x00", "printable ASCII"),
        ("http://example.com/\x7f", "printable ASCII"),
        ("http://bücher.example/", "printable ASCII"),
        ("http://example.com/ä", "printable ASCII"),
        ("http://example.com:８０/", "printable ASCII"),
        ("", "printable ASCII"),
        # hosts
        ("http://-example.com/", "bad host"),
        ("http://exa_mple.com/", "bad host"),
        ("http://example..com/", "bad host"),
        ("http://" + "a" * 64 + ".com/", "bad host"),
        ("http://" + "a." * 127 + "com/", "bad host"),
        ("http://*.example.com/", "bad host"),
        ("http://example.com%2f@evil/", "user info"),
        ("http://example%2ecom/", "bad host"),
        # schemes and shapes
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://example.com/", "http:// or https://"),
        ("ftp://example.com/", "http:// or https://"),
        ("http:/example.com/", "http:// or https://"),
        ("http:example.com", "http:// or https://"),
        ("//example.com/", "http:// or https://"),
        ("example.com", "http:// or https://"),
        ("http:///path", "no host"),
        ("http://?q", "no host"),
        ("http://" + "a" * 9000, "longer than"),
    ],
)
def test_a_bad_url_is_an_invalid_request(url: str, words: str) -> None:
    with pytest.raises(HttpRequestError) as info:
        _check(url)
    assert info.value.wit_case == "invalid-request"
    assert words in str(info.value)
    assert "\n" not in str(info.value)
    assert "\r" not in str(info.value)


@pytest.mark.parametrize("method", ["get", "CONNECT", "TRACE", "GET ", "", "G\r\nET", "PROPFIND"])
def test_a_method_outside_the_contract_is_refused(method: str) -> None:
    with pytest.raises(HttpRequestError, match="is not one of GET, HEAD, POST"):
        _check("http://example.com/", method=method)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("Host", "evil.example", "set by the host"),
        ("host", "evil.example", "set by the host"),
        ("Content-Length", "5", "set by the host"),
        ("Transfer-Encoding", "chunked", "set by the host"),
        ("Connection", "keep-alive", "set by the host"),
        ("Upgrade", "h2c", "set by the host"),
        ("TE", "trailers", "set by the host"),
        ("Trailer", "X", "set by the host"),
        ("Keep-Alive", "5", "set by the host"),
        ("Expect", "100-continue", "set by the host"),
        ("Proxy-Authorization", "Basic eA==", "set by the host"),
        ("Proxy-Connection", "close", "set by the host"),
        ("X-A", "a\r\nEvil: 1", "control character"),
        ("X-A", "a\nb", "control character"),
        ("X-A", "a\rb", "control character"),
        ("X-A", "a\x00b", "control character"),
        ("X-A", "a\x7fb", "control character"),
        ("X-A", "\u0101", "control character"),  # not one byte: no latin-1 character
        ("X A", "v", "bad header name"),
        ("X-A:", "v", "bad header name"),
        ("", "v", "bad header name"),
        ("X-\u00c4", "v", "bad header name"),
        ("X-A\r\nEvil", "1", "bad header name"),
    ],
)
def test_a_header_the_guest_may_not_send_is_refused(name: str, value: str, words: str) -> None:
    with pytest.raises(HttpRequestError) as info:
        _check("http://example.com/", headers=[(name, value)])
    assert words in str(info.value)


def test_headers_are_bounded_in_number_and_size() -> None:
    with pytest.raises(HttpRequestError, match="more than 100 headers"):
        _check("http://example.com/", headers=[("X-A", "1")] * 101)
    with pytest.raises(HttpRequestError, match="bytes in all"):
        _check("http://example.com/", headers=[("X-A", "v" * 40_000)] * 2)


def test_header_values_lose_their_surrounding_whitespace_and_keep_order() -> None:
    request = check_request(
        "GET", "http://example.com/", [("X-M", " a\t"), ("x-m", "b")], b"", max_body=0
    )
    assert request.headers == ((b"X-M", b"a"), (b"x-m", b"b"), (b"Host", b"example.com"))


def test_a_body_past_the_hosts_limit_is_refused() -> None:
    with pytest.raises(HttpRequestError, match=r"\[http\] max-request is 1024 bytes"):
        _check("http://example.com/", method="POST", body=b"x" * 1025)
    assert check_request("POST", "http://e.com/", [], b"x" * 1024, max_body=1024).body == (
        b"x" * 1024
    )


def test_an_empty_body_is_sent_only_by_the_methods_that_carry_one() -> None:
    assert check_request("GET", "http://e.com/", [], b"", max_body=0).body is None
    assert check_request("POST", "http://e.com/", [], b"", max_body=0).body == b""
