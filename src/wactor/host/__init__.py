"""The host: its config file and the Host that runs components.

Names are imported on first use, so that reading a config (as the ``wactor`` verbs that reach a
running host do) loads neither the host nor wasmtime.
"""

from __future__ import annotations

import typing

from wactor._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
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
    from wactor.host._host import (
        HOST_SENDER,
        ComponentHandle,
        ComponentStatus,
        Host,
        LoadFailure,
    )

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

__getattr__ = _lazy_exports(
    __name__,
    {
        "wactor.host._config": (
            "BrokerConfig",
            "HostConfig",
            "HostLimits",
            "HostSupervision",
            "HttpConfig",
            "ObserveConfig",
            "TrustConfig",
            "load_host_config",
        ),
        "wactor.host._host": (
            "HOST_SENDER",
            "ComponentHandle",
            "ComponentStatus",
            "Host",
            "LoadFailure",
        ),
    },
)
