"""A guest's HTTP request, checked before anything leaves the host (no I/O here).

The guest hands ``wactor:http/client#fetch`` a method, a URL, headers and a body. Each is checked
strictly and the URL is parsed once; the parts found here are the only ones used afterwards: the
host and port for the grant check, the name lookup, the connection, the ``Host`` header and TLS's
server name. A request that fails any check is ``invalid-request`` and nothing is sent.

What is refused, and why:

* a method outside GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (methods are case-sensitive);
* a scheme other than ``http``/``https``; a URL with user info (``user@host``: parsers disagree
  on where the host starts, ``http://a\\@b/``); any character that is not printable ASCII,
  including spaces, controls and backslashes (an IDN must come in its ``xn--`` form);
* a port outside 1-65535; a host that is not a DNS name, a dotted IPv4 address or a bracketed
  IPv6 address without zone; a numeric host in a legacy form that the resolver would still
  turn into an address (``2130706433``, ``0x7f.1``, ``127.1``, ``0177.0.0.1``);
* headers the host sets or that change how the exchange is framed or routed (``host``,
  ``content-length``, ``transfer-encoding``, ``connection``, ``upgrade``, ``te``, ``trailer``,
  ``keep-alive``, ``expect``, ``proxy-*``), a header name that is not a token, a value with a
  control character (CR and LF included), too many or too long headers;
* a body longer than the host's ``[http] max-request``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from wactor.errors import HttpRequestError

__all__ = ["METHODS", "HttpRequest", "check_request"]

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # always send a Content-Length
_DEFAULT_PORTS = {"http": 80, "https": 443}

_MAX_URL = 8192
_MAX_HEADERS = 100
_MAX_HEADER_BYTES = 64 * 1024

_URL_CHARS = re.compile(r"[\x21-\x5b\x5d-\x7e]+\Z")  # printable ASCII but the backslash
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)\Z")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*\Z")
_FORBIDDEN = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "expect",
        "http2-settings",
    }
)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A checked request: every part as it will be used."""

    method: str
    scheme: str  # "http" or "https"
    host: str  # lower case, no trailing dot; an IPv6 literal without brackets
    port: int
    target: str  # path and query, starting with "/"
    headers: tuple[tuple[bytes, bytes], ...]  # the guest's, then Host
    body: bytes | None  # None: no body and no Content-Length

    @property
    def authority(self) -> str:
        """``host[:port]`` as the ``Host`` header carries it (an IPv6 literal in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def target_text(self) -> str:
        """``host:port``, as grants and the audit log write it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _invalid(message: str) -> HttpRequestError:
    return HttpRequestError(message)


def _show(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _check_host(host: str) -> str:
    """Return ``host`` (a name or IPv4 literal) in lower case without its trailing dot."""
    name = host.lower()
    name = name[:-1] if name.endswith(".") else name
    if not name or len(name) > 253:
        raise _invalid(f"bad host {_show(host)}")
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise _invalid(f"bad host {_show(host)}: expected a DNS name or an IP address")
    if _NUMERIC_LABEL.match(labels[-1]):
        # the resolver would read "127.1", "0x7f.1" or "2130706433" as an address: only the
        # canonical dotted form is one here
        try:
            return str(IPv4Address(name))
        except ValueError:
            raise _invalid(
                f"bad host {_show(host)}: a numeric host must be a dotted IPv4 address"
            ) from None
    return name


def _split_authority(netloc: str) -> tuple[str, str]:
    """Split ``netloc`` into its host and port text (an IPv6 literal loses its brackets)."""
    if "@" in netloc:
        raise _invalid("a URL with user info (user@host) is refused")
    if netloc.startswith("["):
        end = netloc.find("]")
        rest = netloc[end + 1 :] if end > 0 else "?"
        if rest and not rest.startswith(":"):
            raise _invalid(f"bad host {_show(netloc)}")
        literal = netloc[1:end]
        if "%" in literal:
            raise _invalid(f"bad host {_show(netloc)}: an IPv6 zone is refused")
        try:
            return str(IPv6Address(literal)), rest[1:]
        except ValueError:
            raise _invalid(f"bad host {_show(netloc)}: not an IPv6 address") from None
    host, _, port = netloc.partition(":")
    if ":" in port:
        raise _invalid(f"bad host {_show(netloc)}: an IPv6 address needs brackets")
    return _check_host(host), port


def _check_url(url: str) -> tuple[str, str, int, str]:
    """Return the scheme, host, port and target (path and query) of ``url``."""
    if len(url) > _MAX_URL:
        raise _invalid(f"URL longer than {_MAX_URL} characters")
    if not _URL_CHARS.match(url):
        raise _invalid(
            f"bad URL {_show(url)}: only printable ASCII, no spaces, controls or backslashes"
        )
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        raise _invalid(f"bad URL {_show(url)}: expected an absolute http:// or https:// URL")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    if not netloc:
        raise _invalid(f"bad URL {_show(url)}: no host")
    host, port_text = _split_authority(netloc)
    if port_text:
        if not port_text.isdigit() or len(port_text) > 5 or not 1 <= int(port_text) <= 65535:
            raise _invalid(f"bad port {_show(port_text)}: expected 1-65535")
        port = int(port_text)
    else:
        port = _DEFAULT_PORTS[scheme]
    target = tail.partition("#")[0]  # the fragment is the client's business
    if not target.startswith("/"):
        target = "/" + target
    return scheme, host, port, target


def _check_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    if len(headers) > _MAX_HEADERS:
        raise _invalid(f"more than {_MAX_HEADERS} headers")
    out: list[tuple[bytes, bytes]] = []
    total = 0
    for name, value in headers:
        if not _TOKEN.match(name):
            raise _invalid(f"bad header name {_show(name)}")
        lower = name.lower()
        if lower in _FORBIDDEN or lower.startswith("proxy-"):
            raise _invalid(f"header {name!r} is set by the host, not the guest")
        text = value.strip(" \t")  # optional whitespace around a value is not part of it
        if not _FIELD_VALUE.match(text):
            raise _invalid(f"header {name!r}: a value with a control character (CR, LF, …)")
        total += len(name) + len(text) + 4
        if total > _MAX_HEADER_BYTES:
            raise _invalid(f"headers longer than {_MAX_HEADER_BYTES} bytes in all")
        out.append((name.encode("ascii"), text.encode("latin-1")))
    return out


def check_request(
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    max_body: int,
) -> HttpRequest:
    """Check a guest's request; raise ``HttpRequestError`` saying what is wrong."""
    if method not in METHODS:
        raise _invalid(f"method {_show(method, 20)} is not one of {', '.join(METHODS)}")
    scheme, host, port, target = _check_url(url)
    checked = _check_headers(headers)
    if len(body) > max_body:
        raise _invalid(
            f"a request body of {len(body)} bytes is more than the host allows "
            f"([http] max-request is {max_body} bytes)"
        )
    request = HttpRequest(method, scheme, host, port, target, (), None)
    checked.append((b"Host", request.authority.encode("ascii")))
    send_body = bytes(body) if body or method in _BODY_METHODS else None
    return HttpRequest(method, scheme, host, port, target, tuple(checked), send_body)
