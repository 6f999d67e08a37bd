"""Where a host's control socket lives and who is at the other end of it.

Shared by the host that serves the socket (``wactor.host._control``) and the ``wactor`` verbs
that reach it, which load nothing of the host for it.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path
from typing import Any, Final

__all__ = [
    "CONTROL_DIR",
    "LOCK_NAME",
    "SOCKET_NAME",
    "control_socket_path",
    "peer_credentials",
    "socket_address",
]

CONTROL_DIR: Final = "control"
SOCKET_NAME: Final = "host.sock"
LOCK_NAME: Final = "host.lock"
_SUN_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 elsewhere; keep clear of both


def control_socket_path(state_dir: Path) -> Path:
    """Where the host using ``state_dir`` serves its control socket."""
    return state_dir / CONTROL_DIR / SOCKET_NAME


def socket_address(directory: Path, directory_fd: int, name: str) -> str:
    """An address for the socket ``name`` in ``directory`` that fits ``sun_path``.

    A long path goes through the open directory (``/proc/self/fd/N/name``), which also pins the
    directory that was checked.
    """
    full = str(directory / name)
    if len(os.fsencode(full)) <= _SUN_PATH_MAX:
        return full
    return f"/proc/self/fd/{directory_fd}/{name}"


def peer_credentials(sock: Any) -> tuple[int, int] | None:
    """``(pid, uid)`` of the process at the other end of a Unix socket (None: not known here)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid, uid
