"""What the verbs share: finding the host config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from wactor._nats_names import URL_EXPECTED, parse_servers
from wactor.errors import ConfigError, HostConfigError
from wactor.host import BrokerConfig, HostConfig, load_host_config

__all__ = ["config_option", "nats_option", "resolve_config", "with_nats"]

config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Host config (wactor.toml); default: ./wactor.toml",
)


nats_option = click.option(
    "--nats",
    "nats_url",
    default=None,
    metavar="URL",
    help="Join the lattice at this NATS URL (overrides the config's [broker]).",
)


def with_nats(config: HostConfig, url: str | None, lattice: str | None = None) -> HostConfig:
    """The config with a NATS broker at ``url`` (unchanged when ``url`` is None)."""
    if url is None:
        return config
    try:
        parse_servers(url)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--nats", expected=URL_EXPECTED) from None
    broker = BrokerConfig("nats", url, lattice or config.broker.lattice)
    return dataclasses.replace(config, broker=broker)


def resolve_config(path: Path | None) -> HostConfig:
    """Load the given config, or ./wactor.toml; a missing file is a config error."""
    chosen = path if path is not None else Path("wactor.toml")
    if not chosen.is_file():
        raise HostConfigError(
            "no such host config file"
            if path is not None
            else "no --config given and no wactor.toml in the current directory",
            file=str(chosen),
        )
    return load_host_config(chosen)
