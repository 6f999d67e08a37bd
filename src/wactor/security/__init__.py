"""Manifests, capabilities, trust, approvals and audit: what a component may do and who said so.

Names are imported on first use, so that reading a host config (``HostLimits``) loads neither the
signature code nor the approval and audit stores.
"""

from __future__ import annotations

import typing

from wactor._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
    from wactor.security._approvals import Approval, ApprovalStatus, ApprovalStore
    from wactor.security._audit import AUDIT_EVENTS, AuditEntry, AuditEvent, AuditLog
    from wactor.security._capabilities import (
        Capabilities,
        MessagingAction,
        capabilities_from_dict,
        capabilities_to_dict,
        narrow_capabilities,
    )
    from wactor.security._gate import (
        Admission,
        AdmissionLevel,
        Gatekeeper,
        TrustSources,
    )
    from wactor.security._limits import (
        HostLimits,
        apply_host_limits,
        limits_to_dict,
        narrow_limits,
    )
    from wactor.security._manifest import (
        ComponentConfig,
        Limits,
        Manifest,
        RestartType,
        SupervisionSpec,
        load_manifest,
        manifest_digest,
        verify_digest,
    )
    from wactor.security._policy import CapabilityPolicy, MessagingPolicy, RateLimit
    from wactor.security._trust import (
        generate_keypair,
        public_key_fingerprint,
        sign_manifest,
        signature_message,
        signature_path,
        verify_signature,
    )

__all__ = [
    "AUDIT_EVENTS",
    "Admission",
    "AdmissionLevel",
    "Approval",
    "ApprovalStatus",
    "ApprovalStore",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "Capabilities",
    "CapabilityPolicy",
    "ComponentConfig",
    "Gatekeeper",
    "HostLimits",
    "Limits",
    "Manifest",
    "MessagingAction",
    "MessagingPolicy",
    "RateLimit",
    "RestartType",
    "SupervisionSpec",
    "TrustSources",
    "apply_host_limits",
    "capabilities_from_dict",
    "capabilities_to_dict",
    "generate_keypair",
    "limits_to_dict",
    "load_manifest",
    "manifest_digest",
    "narrow_capabilities",
    "narrow_limits",
    "public_key_fingerprint",
    "sign_manifest",
    "signature_message",
    "signature_path",
    "verify_digest",
    "verify_signature",
]

__getattr__ = _lazy_exports(
    __name__,
    {
        "wactor.security._approvals": ("Approval", "ApprovalStatus", "ApprovalStore"),
        "wactor.security._audit": ("AUDIT_EVENTS", "AuditEntry", "AuditEvent", "AuditLog"),
        "wactor.security._capabilities": (
            "Capabilities",
            "MessagingAction",
            "capabilities_from_dict",
            "capabilities_to_dict",
            "narrow_capabilities",
        ),
        "wactor.security._gate": ("Admission", "AdmissionLevel", "Gatekeeper", "TrustSources"),
        "wactor.security._limits": (
            "HostLimits",
            "apply_host_limits",
            "limits_to_dict",
            "narrow_limits",
        ),
        "wactor.security._manifest": (
            "ComponentConfig",
            "Limits",
            "Manifest",
            "RestartType",
            "SupervisionSpec",
            "load_manifest",
            "manifest_digest",
            "verify_digest",
        ),
        "wactor.security._policy": ("CapabilityPolicy", "MessagingPolicy", "RateLimit"),
        "wactor.security._trust": (
            "generate_keypair",
            "public_key_fingerprint",
            "sign_manifest",
            "signature_message",
            "signature_path",
            "verify_signature",
        ),
    },
)
