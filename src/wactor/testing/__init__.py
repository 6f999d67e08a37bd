"""Test kit: real ``nats-server`` processes (one server or a JetStream cluster) for tests."""

from wactor.testing._nats_server import NatsCluster, NatsServer, NatsServerError, find_nats_server

__all__ = ["NatsCluster", "NatsServer", "NatsServerError", "find_nats_server"]
