"""Manifests, capabilities and digests: what a component may do, validated at the edge."""

from __future__ import annotations

from wactor.security._manifest import (
    Capabilities,
    ComponentConfig,
    Limits,
    Manifest,
    MessagingAction,
    RestartType,
    SupervisionSpec,
    load_manifest,
    verify_digest,
)

__all__ = [
    "Capabilities",
    "ComponentConfig",
    "Limits",
    "Manifest",
    "MessagingAction",
    "RestartType",
    "SupervisionSpec",
    "load_manifest",
    "verify_digest",
]
