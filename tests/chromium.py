"""A real headless browser for tests: Debian's ``chromium``, driven over the DevTools protocol on
a pipe (``--remote-debugging-pipe``: JSON messages ended by a NUL byte on file descriptors 3 and
4), so no driver package is needed. Installed with apt when missing and allowed (root)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
)

_install_lock = threading.Lock()


def ensure_chromium() -> str:
    """The chromium binary; installed with apt-get when missing (as root), else the test fails
    saying what to install."""
    with _install_lock:
        found = shutil.which("chromium")
        if found:
            return found
        if os.geteuid() == 0 and shutil.which("apt-get"):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False)
            found = shutil.which("chromium")
            if found:
                return found
        pytest.fail("the dashboard tests need Debian's chromium: apt-get install -y chromium")


class BrowserError(RuntimeError):
    """The browser answered a command with an error, or stopped."""


class Browser:
    """One headless chromium process with its own profile directory."""

    def __init__(self, profile: Path) -> None:
        binary = ensure_chromium()
        profile.mkdir(parents=True, exist_ok=True)
        commands_in, self._commands = os.pipe()
        self._answers, answers_out = os.pipe()
        self._log = open(profile / "chromium.log", "wb")  # noqa: SIM115 - closed in close()
        # bash (dash takes no fd past 9) puts the pipe ends where chromium expects them, then
        # becomes chromium
        script = f'exec "$0" "$@" 3<&{commands_in} 4>&{answers_out}'
        self._proc = subprocess.Popen(
            ["bash", "-c", script, binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(commands_in, answers_out),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        os.close(commands_in)
        os.close(answers_out)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="chromium-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._answers, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._replies[message["id"]] = message
                        self._cond.notify_all()
                else:
                    self._events.put(message)

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Send one DevTools command and wait for its result."""
        self._next_id += 1
        ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._replies:
                if self._closed:
                    raise BrowserError(f"chromium stopped before answering {method}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"no answer to {method} within {timeout} s")
                self._cond.wait(left)
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def open(self, url: str) -> str:
        """Open ``url`` in a new page; return the session that drives it."""
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        session: str = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send("Runtime.enable", session=session)
        return session

    def evaluate(self, session: str, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=session,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, session: str, expression: str, what: str, *, timeout: float = 60.0) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(session, expression)
            if value:
                return value
            if time.monotonic() > deadline:
                page = self.evaluate(session, "document.body ? document.body.innerText : ''")
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; page:\n{page}"
                )
            time.sleep(0.05)

    def events(self) -> list[dict[str, Any]]:
        """The events received so far (console messages, exceptions …), taken once."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Close the browser and everything it holds."""
        if self._proc.poll() is None:
            with contextlib.suppress(BrowserError):
                self.send("Browser.close", timeout=10)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        os.close(self._commands)
        self._reader.join(timeout=10)
        os.close(self._answers)
        self._log.close()
