"""The NATS KV bucket's records alone: pure encode/decode functions, no server."""

from __future__ import annotations

import json
import re

import pytest

from wactor.storage._nats_kv_layout import (
    Usage,
    component_token,
    key_token,
    parse_stored_headers,
    token_key,
)

TOKEN = re.compile(r"^[A-Z2-7]+$|^_$")  # one NATS subject token, no wildcard, no dot


@pytest.mark.parametrize(
    "key", [b"", b"a", b"a.b", b"*", b">", b"%_", bytes(range(256)), "ключ".encode()]
)
def test_any_key_is_one_subject_token_and_comes_back(key: bytes) -> None:
    token = key_token(key)
    assert TOKEN.match(token)
    assert token_key(token) == key


def test_component_tokens_never_collide_with_each_other() -> None:
    ids = ["shop/cart/0", "shop/cart/1", "shop.cart/x/0", "shop/cart.x/0"]
    assert len({component_token(c) for c in ids}) == len(ids)
    assert all(TOKEN.match(component_token(c)) for c in ids)


def test_a_usage_record_settles_a_growth_and_a_shrink() -> None:
    usage = Usage(7, used=100, keys=2, pending={"K": {"d": 50, "n": 1, "e": 0, "id": "w"}})
    usage.settle("K", landed=False)  # the growth never landed: given back
    assert (usage.used, usage.keys, usage.pending) == (50, 1, {})
    usage.pending["K"] = {"d": -30, "n": -1, "e": 3, "id": "w2"}
    usage.settle("K", landed=True)  # a shrink counts once it landed
    assert (usage.used, usage.keys) == (20, 0)
    assert json.loads(usage.encode()) == {"used": 20, "keys": 0, "pending": {}}


def test_stored_headers_are_parsed_from_their_block() -> None:
    raw = b"NATS/1.0\r\nKV-Operation: DEL\r\nWactor-Write: heal:abc\r\n\r\n"
    assert parse_stored_headers(raw) == {"KV-Operation": "DEL", "Wactor-Write": "heal:abc"}
    assert parse_stored_headers(b"") == {}
