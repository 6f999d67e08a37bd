"""The gate every component passes before it is instantiated: trusted, approved, dev, or refused.

Order (DESIGN §1.3):

1. a ``<manifest>.sig`` that does not verify → ``SignatureError``, even in dev mode;
2. signed by a key in ``[trust] keys`` → *trusted*;
3. wasm sha256 in ``[trust] digests`` → *trusted*;
4. both the manifest and its wasm file (symlinks resolved) under ``[trust] paths`` → *trusted*.
   The manifest must be inside too: it is what declares the capabilities, so a manifest written
   elsewhere that points at a trusted binary is not trusted;
5. the operator's decision for ``(id, wasm digest, manifest digest)``: approved → *approved* with
   the granted (possibly narrowed) capabilities; denied → ``ApprovalDeniedError``;
6. no decision: dev mode → *dev* with a loud warning each time; otherwise a pending request is
   filed and ``ApprovalPendingError`` tells the operator what to run.

Every outcome is audited.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from wactor.errors import (
    ApprovalDeniedError,
    ApprovalPendingError,
    ConfigError,
    ManifestError,
    SignatureError,
)
from wactor.security._approvals import ApprovalStore
from wactor.security._audit import AuditLog
from wactor.security._limits import limits_to_dict, narrow_limits
from wactor.security._manifest import Capabilities, Limits, Manifest
from wactor.security._policy import capabilities_to_dict, narrow_capabilities
from wactor.security._trust import verify_signature, wasm_sha256

__all__ = ["Admission", "AdmissionLevel", "Gatekeeper", "TrustSources", "manifest_digest"]

AdmissionLevel = Literal["trusted", "approved", "dev"]

_log = logging.getLogger("wactor.security")


class TrustSources(Protocol):
    """What the gate needs of ``wactor.host.TrustConfig`` (security must not import host)."""

    @property
    def keys(self) -> tuple[Path, ...]: ...

    @property
    def digests(self) -> tuple[str, ...]: ...

    @property
    def paths(self) -> tuple[Path, ...]: ...


@dataclass(frozen=True, slots=True)
class Admission:
    """Why a component may run, and with which capabilities."""

    level: AdmissionLevel
    capabilities: Capabilities
    reason: str
    limits: Limits  # the manifest's, or lower where an approval narrowed them


def manifest_digest(manifest: Manifest) -> str:
    """Return the sha256 hex digest of the manifest file's bytes (what approvals are keyed by)."""
    try:
        return hashlib.sha256(manifest.path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ManifestError(
            f"cannot read manifest: {exc.strerror}", file=str(manifest.path)
        ) from exc


def _under(path: Path, roots: tuple[Path, ...]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in roots)


class Gatekeeper:
    """Decide whether a component may be instantiated, at which trust level, with what."""

    def __init__(
        self,
        trust: TrustSources,
        approvals: ApprovalStore,
        audit: AuditLog,
        *,
        dev: bool,
        config_path: Path | None = None,
    ) -> None:
        self._trust = trust
        self._approvals = approvals
        self._audit = audit
        self._dev = dev
        self._config_path = config_path  # only to tell the operator the exact command

    def admit(self, manifest: Manifest, wasm_bytes: bytes | str) -> Admission:
        """Admit the component or raise a ``SecurityError``; audit the outcome either way.

        ``wasm_bytes`` is the wasm file's content, or its sha256 hex when the caller has it.
        """
        component = str(manifest.id)
        wasm_digest = wasm_sha256(wasm_bytes)

        try:
            fingerprint = verify_signature(manifest, wasm_bytes, self._trust.keys)
        except SignatureError as exc:
            self._audit.record(
                "signature-bad", component, allowed=False, action="admit", reason=exc.reason
            )
            raise
        if fingerprint is not None:
            self._audit.record(
                "signature-ok", component, allowed=True, action="admit", target=fingerprint
            )
            return self._grant(manifest, "trusted", f"signed by trusted key {fingerprint}")
        if wasm_digest in self._trust.digests:
            return self._grant(manifest, "trusted", f"pinned digest sha256:{wasm_digest}")
        if (
            self._trust.paths
            and _under(manifest.path, self._trust.paths)
            and _under(manifest.wasm, self._trust.paths)
        ):
            return self._grant(manifest, "trusted", "under a trusted path")

        digest = manifest_digest(manifest)
        decision = self._approvals.decision(component, wasm_digest, digest)
        if decision is not None and decision.status == "approved":
            granted = decision.granted if decision.granted is not None else {}
            try:
                limits = narrow_limits(manifest.limits, granted.get("limits"))
                capabilities = narrow_capabilities(manifest.capabilities, granted)
            except ConfigError as exc:
                # Same bytes, other absolute paths (the component's directory moved).
                raise ConfigError(
                    f"{component}: the approved capabilities no longer fit its manifest ({exc}); "
                    f"decide again with 'wactor approvals approve {decision.id}'",
                    file=str(manifest.path),
                    component=component,
                ) from exc
            return self._grant(
                manifest,
                "approved",
                f"approved by an operator (request {decision.id})",
                capabilities,
                limits,
            )
        if decision is not None and decision.status == "denied":
            detail = f": {decision.reason}" if decision.reason else ""
            self._audit.record(
                "denial",
                component,
                allowed=False,
                action="admit",
                target=decision.id,
                reason=f"denied by an operator{detail}",
            )
            raise ApprovalDeniedError(
                f"{component}: denied by an operator (request {decision.id}){detail}",
                request_id=decision.id,
                component=component,
                reason=decision.reason,
            )

        if self._dev:
            _log.warning(
                "DEV MODE: running %s (%s) UNTRUSTED and unapproved with every capability its "
                "manifest declares; never use dev mode in production",
                component,
                manifest.path,
            )
            return self._grant(manifest, "dev", "dev mode: no trust source, no approval")

        requested = capabilities_to_dict(manifest.capabilities)
        requested["limits"] = limits_to_dict(manifest.limits)
        pending = decision or self._approvals.request(component, wasm_digest, digest, requested)
        config = str(self._config_path) if self._config_path is not None else "<wactor.toml>"
        self._audit.record(
            "approval-requested",
            component,
            allowed=False,
            action="admit",
            target=pending.id,
            reason="unknown component waits for an operator's approval",
        )
        raise ApprovalPendingError(
            f"{component} is not trusted and waits for approval (request {pending.id}); "
            f"run: wactor approvals approve {pending.id} --config {config}",
            request_id=pending.id,
            component=component,
        )

    def _grant(
        self,
        manifest: Manifest,
        level: AdmissionLevel,
        reason: str,
        capabilities: Capabilities | None = None,
        limits: Limits | None = None,
    ) -> Admission:
        self._audit.record(
            "grant", str(manifest.id), allowed=True, action="admit", target=level, reason=reason
        )
        return Admission(
            level,
            manifest.capabilities if capabilities is None else capabilities,
            reason,
            manifest.limits if limits is None else limits,
        )
