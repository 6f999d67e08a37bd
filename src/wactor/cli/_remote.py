"""Reaching the host that runs with a config, through its control socket (``wactor.host._control``).

``RunningHost.find(config)`` is None when no host runs there: no socket, or a stale one left by
a killed host (nothing listens). A socket served by another user (not root) is refused, as the
host refuses such peers: nothing (a payload, an approval) goes to a host someone else planted,
even for root. A host that dies under a request, or does not answer, is one
``DeliveryFailedError`` line (exit code 4), never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import click

from wactor.errors import DeliveryFailedError, HostConfigError, InvalidMessageError
from wactor.host import HostConfig
from wactor.host._control_address import CONTROL_DIR, SOCKET_NAME, peer_credentials, socket_address
from wactor.host._control_wire import (
    HEADER_SIZE,
    decode_error,
    decode_message,
    encode_frame,
    frame_length,
)

__all__ = ["HELLO_TIMEOUT", "RunningHost", "absolute", "remote_snapshot", "require_running_host"]

HELLO_TIMEOUT: Final = 10.0  # a live host greets at once; longer than this, it hangs
_MAX_ANSWER: Final = 1 << 30


def _label(config: HostConfig) -> str:
    return str(config.path) if config.path is not None else str(config.state_dir)


class RunningHost:
    """A connection to a running host's control socket; a context manager that closes it."""

    def __init__(self, sock: socket.socket, pid: int, label: str) -> None:
        self._sock = sock
        self.pid = pid
        self._label = label
        self.lost = False  # the connection failed: the host went away or hangs

    @classmethod
    def find(cls, config: HostConfig) -> RunningHost | None:
        """Connect to the host running with ``config``; None when none runs."""
        directory = config.state_dir / CONTROL_DIR
        try:
            if not stat.S_ISSOCK(os.lstat(directory / SOCKET_NAME).st_mode):
                return None
            dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None  # no socket (no host ever ran here, or it stopped cleanly)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(HELLO_TIMEOUT)
            try:
                sock.connect(socket_address(directory, dir_fd, SOCKET_NAME))
            except (ConnectionRefusedError, FileNotFoundError):
                sock.close()
                return None  # stale: the host that made it is gone
            except OSError as exc:
                sock.close()
                raise HostConfigError(
                    f"cannot reach the host's control socket {directory / SOCKET_NAME}: "
                    f"{exc.strerror or exc}",
                    file=str(config.path) if config.path else None,
                ) from exc
        finally:
            os.close(dir_fd)
        try:
            return cls._greeted(sock, config)
        except BaseException:
            sock.close()
            raise

    @classmethod
    def _greeted(cls, sock: socket.socket, config: HostConfig) -> RunningHost:
        label = _label(config)
        credentials = peer_credentials(sock)
        if credentials is not None and credentials[1] not in (0, os.geteuid()):
            raise HostConfigError(
                f"the control socket of state directory {config.state_dir} is served by "
                f"uid {credentials[1]}, not by this user; not talking to it",
                file=str(config.path) if config.path else None,
            )
        host = cls(sock, 0, label)
        hello = host._receive("its greeting")
        pid = hello.get("pid")
        if hello.get("wactor") != "control" or not isinstance(pid, int):
            raise DeliveryFailedError(f"{label}: its control socket does not speak wactor")
        host.pid = pid
        if hello.get("state") == "starting":
            click.echo(f"waiting for the host (pid {pid}) to start its components…", err=True)
            sock.settimeout(None)
            host._receive("the end of its start")
        return host

    def request(
        self, op: str, args: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Send one request and return its result, or raise the host's error.

        ``timeout``: seconds to wait for the answer (None: as long as the host lives).
        """
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(encode_frame({"op": op, "args": args or {}}))
        except OSError:
            raise self._gone(op) from None
        answer = self._receive(op, timeout)
        if answer.get("ok") is True:
            return answer.get("result")
        raise decode_error(answer.get("error"))

    def _receive(self, what: str, timeout: float | None = HELLO_TIMEOUT) -> dict[str, Any]:
        try:
            header = self._exactly(HEADER_SIZE, what)
            return decode_message(self._exactly(frame_length(header, _MAX_ANSWER), what))
        except TimeoutError:
            self.lost = True
            raise DeliveryFailedError(
                f"{self._label}: the host (pid {self.pid or '?'}) did not answer "
                f"{what} within {timeout or 0:g}s"
            ) from None
        except InvalidMessageError as exc:
            self.lost = True  # out of step with the host: nothing after this can be read
            raise DeliveryFailedError(f"{self._label}: bad answer from the host: {exc}") from None

    def _exactly(self, size: int, what: str) -> bytes:
        chunks: list[bytes] = []
        missing = size
        while missing:
            try:
                chunk = self._sock.recv(min(missing, 1 << 20))
            except TimeoutError:  # an OSError too: not a host that went away
                raise
            except OSError:
                chunk = b""
            if not chunk:
                raise self._gone(what)
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def _gone(self, what: str) -> DeliveryFailedError:
        self.lost = True
        pid = f" (pid {self.pid})" if self.pid else ""
        return DeliveryFailedError(
            f"{self._label}: the host{pid} went away before it answered {what}"
        )

    def close(self) -> None:
        """Close the connection; idempotent."""
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> RunningHost:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def require_running_host(config: HostConfig) -> RunningHost:
    """The host running with ``config``; a ``HostConfigError`` (exit code 2) when none runs."""
    host = RunningHost.find(config)
    if host is None:
        where = f"--config {config.path}" if config.path else f"state directory {config.state_dir}"
        raise HostConfigError(
            f"no wactor host is running with {where} (start one with `wactor run`)"
        )
    return host


def absolute(path: Path) -> str:
    """``path`` as the host must read it: absolute, from this process's working directory."""
    return os.path.abspath(path)


def remote_snapshot(config: HostConfig) -> dict[str, Any] | None:
    """The supervision tree of the host running with ``config`` (None: none runs)."""
    running = RunningHost.find(config)
    if running is None:
        return None
    with running:
        snapshot = running.request("ps")
    return snapshot if isinstance(snapshot, dict) else None
