"""The gate every component passes before it is instantiated: trusted, approved, dev, or refused.

Order (DESIGN §1.3):

1. a ``<manifest>.sig`` that does not verify → ``SignatureError``, even in dev mode;
2. signed by a key in ``[trust] keys`` → *trusted*;
3. wasm sha256 *and* manifest sha256 both in ``[trust] digests`` → *trusted*. A pin covers
   the bytes it names and nothing else: a pinned wasm whose manifest is not pinned (a manifest
   may ask for any capability) goes on to steps 4-6, i.e. usually to the approval queue;
4. both the manifest and its wasm file (symlinks resolved) under ``[trust] paths`` → *trusted*.
   The manifest must be inside too: it is what declares the capabilities, so a manifest written
   elsewhere that points at a trusted binary is not trusted;
5. the operator's decision for ``(id, wasm digest, manifest digest)``: approved → *approved* with
   the granted (possibly narrowed) capabilities; denied → ``ApprovalDeniedError``;
6. no decision: dev mode → *dev* with a loud warning each time; otherwise a pending request is
   filed and ``ApprovalPendingError`` tells the operator what to run.

Before any of that, a component whose filesystem preopens (read or write, symlinks resolved)
equal, contain or lie inside the host's protected paths (state directory, host config file,
compile cache and its key, trusted key files) is refused with ``CapabilityDeniedError``,
whatever its trust; so is a write preopen that reaches a ``[trust] paths`` directory (a guest
could plant or rewrite code there that would then run trusted).

Every outcome is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from wactor.errors import (
    ApprovalDeniedError,
    ApprovalPendingError,
    CapabilityDeniedError,
    ConfigError,
    SignatureError,
)
from wactor.security._approvals import ApprovalStore
from wactor.security._audit import AuditLog
from wactor.security._capabilities import (
    Capabilities,
    capabilities_to_dict,
    narrow_capabilities,
)
from wactor.security._limits import limits_to_dict, narrow_limits
from wactor.security._manifest import Limits, Manifest, manifest_digest
from wactor.security._trust import verify_signature, wasm_sha256

__all__ = ["Admission", "AdmissionLevel", "Gatekeeper", "TrustSources"]

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
        protected: Sequence[tuple[str, Path]] = (),
    ) -> None:
        self._trust = trust
        # (what it is, where): paths no guest preopen may reach; trusted keys always among them
        self._protected = tuple(
            (label, Path(path).resolve())
            for label, path in (*protected, *(("trusted key", k) for k in trust.keys))
        )
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
        self._check_reach(manifest)
        digest = manifest_digest(manifest)  # of the bytes parsed, not of the file now

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
        pins = self._trust.digests
        if wasm_digest in pins and digest in pins:
            return self._grant(
                manifest,
                "trusted",
                f"pinned digests: wasm sha256:{wasm_digest}, manifest sha256:{digest}",
            )
        # A pinned binary with an unpinned manifest is not trusted: it would run with whatever
        # capabilities a rewritten manifest asks for.
        unpinned = (
            f" (its wasm is pinned in [trust] digests, its manifest sha256:{digest} is not)"
            if wasm_digest in pins
            else ""
        )
        if (
            self._trust.paths
            and _under(manifest.path, self._trust.paths)
            and _under(manifest.wasm, self._trust.paths)
        ):
            return self._grant(manifest, "trusted", "under a trusted path")

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
            reason=f"unknown component waits for an operator's approval{unpinned}",
        )
        raise ApprovalPendingError(
            f"{component} is not trusted{unpinned} and waits for approval (request {pending.id}); "
            f"run: wactor approvals approve {pending.id} --config {config}",
            request_id=pending.id,
            component=component,
        )

    def _check_reach(self, manifest: Manifest) -> None:
        """Refuse preopens that reach the state directory, the compile cache or trust material,
        and write preopens that reach a trusted path (code there runs without approval)."""
        caps = manifest.capabilities
        never = "a guest may never see it"
        code = "components there run trusted, so no guest may write there"
        trusted = tuple(("trusted path", p.resolve(), code) for p in self._trust.paths)
        for kind, paths in (("read", caps.fs_read), ("write", caps.fs_write)):
            protected = [(label, path, never) for label, path in self._protected]
            if kind == "write":
                protected += trusted
            for index, path in enumerate(paths):
                wanted = Path(path).resolve()
                for label, where, why in protected:
                    if not (wanted.is_relative_to(where) or where.is_relative_to(wanted)):
                        continue
                    key = f"capabilities.filesystem.{kind}[{index}]"
                    reason = f"{wanted} reaches the host's {label} {where}"
                    self._audit.record(
                        "denial",
                        str(manifest.id),
                        allowed=False,
                        action="admit",
                        target=key,
                        reason=reason,
                    )
                    raise CapabilityDeniedError(
                        f"{manifest.path}: {key}: {reason}; {why}",
                        capability=f"filesystem.{kind}",
                        component=str(manifest.id),
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
