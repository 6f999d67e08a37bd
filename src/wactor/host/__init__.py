"""The host: its config file and the Host that runs components."""

from __future__ import annotations

from wactor.host._config import (
    BrokerConfig,
    HostConfig,
    HostLimits,
    HostSupervision,
    HttpConfig,
    ObserveConfig,
    TrustConfig,
    load_host_config,
)
from wactor.host._host import HOST_SENDER, ComponentHandle, ComponentStatus, Host, LoadFailure

__all__ = [
    "HOST_SENDER",
    "BrokerConfig",
    "ComponentHandle",
    "ComponentStatus",
    "Host",
    "HostConfig",
    "HostLimits",
    "HostSupervision",
    "HttpConfig",
    "LoadFailure",
    "ObserveConfig",
    "TrustConfig",
    "load_host_config",
]
