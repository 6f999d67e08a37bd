"""One grammar for grants (TOML and dict form alike) and one policy that audits every decision."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from conftest import ManifestFactory, guest_binary
from wactor.errors import CapabilityDeniedError, ConfigError
from wactor.host import Host
from wactor.security import AuditLog, Capabilities, CapabilityPolicy, capabilities_from_dict


def test_the_dict_form_refuses_a_bad_variable_name_as_the_manifest_does() -> None:
    with pytest.raises(ConfigError) as info:
        capabilities_from_dict({"environment": {"allow": ["LANG", "1BAD"]}})

    assert str(info.value) == (
        "environment.allow[1]: bad variable name '1BAD' "
        "(expected letters, digits and '_', not starting with a digit)"
    )


def test_the_dict_form_names_the_bad_topic_pattern_and_what_is_expected() -> None:
    with pytest.raises(ConfigError) as info:
        capabilities_from_dict({"messaging": {"publish": ["orders.#", "a..b"]}})

    assert info.value.key == "messaging.publish[1]"
    assert info.value.expected == (
        "dot-separated tokens with '*' for one and a final '#' for the rest"
    )


async def test_storage_without_a_grant_is_a_denial_in_the_audit_log(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/nostore/0", guest_binary("probe")))

    reply = await host.request("t/nostore/0", b"get k", timeout=30)

    assert reply == b"err io-error t/nostore/0: no storage capability granted"
    denials = host.audit.query(component="t/nostore/0", denied_only=True)
    assert [(e.event, e.action, e.reason) for e in denials] == [
        ("denial", "storage", "no storage capability granted")
    ]


def test_a_connect_grant_is_audited_once_and_each_denial_every_time(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    grants = ("api.example.com:443", "*:443")
    policy = CapabilityPolicy(Capabilities(net_connect=grants), "t/net/0", log)
    public = [ip_address("93.184.216.34")]

    for _ in range(2):
        policy.check_connect("api.example.com", 443)  # before the lookup: not a grant yet
        policy.check_connect("api.example.com", 443, public)
    with pytest.raises(CapabilityDeniedError):
        policy.check_connect("api.example.com", 80)
    with pytest.raises(CapabilityDeniedError):
        policy.check_connect("127.0.0.1", 443, [ip_address("127.0.0.1")])

    entries = log.query(component="t/net/0")
    assert [(e.event, e.action, e.target, e.allowed) for e in entries] == [
        ("grant", "network.connect", "api.example.com:443", True),
        ("denial", "network.connect", "api.example.com:80", False),
        ("denial", "network.connect", "127.0.0.1:443", False),
    ]
    assert entries[0].reason == "resolved to 93.184.216.34"
    assert entries[1].reason == (
        "api.example.com:80 is not granted by [capabilities.network] connect"
    )
    assert "loopback" in entries[2].reason
    log.close()


def test_a_publish_grant_is_audited_once_and_each_denial_every_time(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    policy = CapabilityPolicy(Capabilities(publish=("orders.*",)), "t/pub/0", log)

    policy.check_publish("orders.created")
    policy.check_publish("orders.created")
    for _ in range(2):
        with pytest.raises(CapabilityDeniedError):
            policy.check_publish("audit.read")

    entries = log.query(component="t/pub/0")
    assert [(e.event, e.action, e.target) for e in entries] == [
        ("grant", "messaging.publish", "orders.created"),
        ("denial", "messaging.publish", "audit.read"),
        ("denial", "messaging.publish", "audit.read"),
    ]
    log.close()
