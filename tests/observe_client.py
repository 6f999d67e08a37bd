"""Reading a host's observe endpoint from tests: plain HTTP requests and Prometheus text."""

from __future__ import annotations

import asyncio
import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch_sync(
    url: str, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> Reply:
    """One request on a connection of its own (stdlib ``http.client``)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


async def fetch(
    url: str, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> Reply:
    """:func:`fetch_sync` from a test on the loop (the server runs on that loop)."""
    return await asyncio.to_thread(fetch_sync, url, path, method=method, headers=headers)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition, by (name, labels); the text must parse."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample (``None`` when absent)."""
    return samples(text).get((name, frozenset(labels.items())))
