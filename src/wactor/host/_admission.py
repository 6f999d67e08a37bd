"""Admission: whether a manifest's code may run on this host, and that code compiled.

The same checks for a start and for a reload (a code swap): the host's limits, the pinned
digest, trust (signature, pinned key, approval), then compilation of the very bytes that were
hashed.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Executor
from pathlib import Path

from wactor._bridge import run_on_thread
from wactor.errors import ConfigError, ManifestError
from wactor.security import (
    AuditLog,
    Gatekeeper,
    HostLimits,
    Manifest,
    apply_host_limits,
    load_manifest,
    verify_digest,
)
from wactor.wasm import LoadedComponent, WasmEngine

__all__ = ["Admission", "reload_source"]


class Admission:
    """Checks a manifest against the host and compiles what it names."""

    def __init__(
        self,
        engine: WasmEngine,
        gate: Gatekeeper,
        *,
        audit: AuditLog,
        limits: HostLimits,
        config_path: Path | None,
        executor: Executor,
    ) -> None:
        self._engine = engine
        self._gate = gate
        self._audit = audit
        self._limits = limits
        self._config_path = config_path
        self._executor = executor

    def within_limits(self, manifest: Manifest) -> Manifest:
        """The manifest with the host's limits applied; a manifest past them is refused
        (audited)."""
        try:
            return apply_host_limits(manifest, self._limits, self._config_path)
        except ManifestError as exc:
            self._audit.record(
                "denial", str(manifest.id), allowed=False, action="admit", reason=exc.message
            )
            raise

    async def load(self, manifest: Manifest) -> tuple[LoadedComponent, Manifest]:
        """Check digest and trust, then compile (on a worker); return the code and the
        manifest with what was granted."""
        return await run_on_thread(self._executor, lambda: self._load(manifest))

    def _load(self, manifest: Manifest) -> tuple[LoadedComponent, Manifest]:
        """Trust is decided on the wasm file's sha256 (read and hashed, or remembered for the
        file's unchanged stat), and what runs is code compiled from bytes with that digest."""
        try:
            source = self._engine.read_wasm(manifest.wasm)
        except OSError as exc:
            raise ManifestError(
                f"cannot read wasm file {manifest.wasm}: {exc.strerror}",
                file=str(manifest.path),
                key="component.wasm",
            ) from exc
        verify_digest(manifest, source.digest)
        admission = self._gate.admit(manifest, source.digest)
        granted = dataclasses.replace(
            manifest, capabilities=admission.capabilities, limits=admission.limits
        )
        return self._engine.load_bytes(source), granted


def reload_source(started: Manifest, wasm: str | os.PathLike[str] | None) -> Manifest:
    """The manifest a reload checks: ``started`` read again from its file (one built in code
    is kept as it is), with ``wasm`` as its binary if given. Its id must not have changed."""
    source = started
    if started.file_sha256 is not None and started.path.is_file():
        source = load_manifest(started.path)
        if source.id != started.id:
            raise ConfigError(
                f"{source.path} now declares {source.id}, not {started.id}: start it as a "
                "new component instead",
                file=str(source.path),
                key="component.id",
            )
    if wasm is not None:
        source = dataclasses.replace(source, wasm=Path(wasm).resolve())
    return source
