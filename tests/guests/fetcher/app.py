"""Fetcher guest: performs the HTTP exchange its payload describes through ``wactor:http``.

The payload is a JSON object ``{"method", "url", "headers": [[name, value]…], "body",
"timeout_ms", "repeat"}`` (all but ``url`` optional; ``body`` is text whose characters are
bytes, as latin-1). The reply is a JSON object: ``{"status", "headers", "size", "body"}`` for a
response (``body``: its first 64 KiB as latin-1 text), or ``{"error": CASE, "detail": VALUE}``
for an ``http-error`` (``denied``, ``invalid-request``, ``timeout``, ``too-large``, ``failed``).
With ``"repeat": N`` the guest performs the exchange N times in the one call and replies with
the list of those objects.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import component_lifecycle
from wit_world.imports import client, types

_CASES = {
    client.HttpError_Denied: "denied",
    client.HttpError_InvalidRequest: "invalid-request",
    client.HttpError_Timeout: "timeout",
    client.HttpError_TooLarge: "too-large",
    client.HttpError_Failed: "failed",
}


def _fetch(command: dict) -> dict:
    request = client.Request(
        method=command.get("method", "GET"),
        url=command["url"],
        headers=[(name, value) for name, value in command.get("headers", [])],
        body=command.get("body", "").encode("latin-1"),
        timeout_ms=command.get("timeout_ms"),
    )
    try:
        response = client.fetch(request)
    except Err as err:
        error = err.value
        return {"error": _CASES[type(error)], "detail": getattr(error, "value", None)}
    return {
        "status": response.status,
        "headers": [[name, value] for name, value in response.headers],
        "size": len(response.body),
        "body": bytes(response.body[:65536]).decode("latin-1"),
    }


class ComponentLifecycle(exports.ComponentLifecycle):
    def initialize(self, config: types.ComponentConfig) -> None:
        return None

    def handle_message(self, msg: types.ComponentMessage) -> bytes | None:
        command = json.loads(msg.payload)
        if "repeat" in command:
            answer = [_fetch(command) for _ in range(command["repeat"])]
            return json.dumps(answer).encode("utf-8")
        return json.dumps(_fetch(command)).encode("utf-8")

    def handle_callback(self, msg: types.ComponentMessage) -> None:
        return None

    def metadata(self) -> component_lifecycle.ComponentMetadata:
        return component_lifecycle.ComponentMetadata(
            name="fetcher",
            version="0.1.0",
            description="Test guest that performs HTTP exchanges through wactor:http.",
            author="wactor tests",
            license="Apache-2.0",
            supported_operations=["fetch"],
            stateful=False,
        )

    def health(self) -> types.HealthStatus:
        return types.HealthStatus.HEALTHY

    def shutdown(self) -> None:
        return None
