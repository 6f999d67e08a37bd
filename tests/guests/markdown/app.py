"""Markdown guest: renders Markdown with the PyPI ``markdown`` package, bundled by ``wactor build``
from ``requirements.txt`` beside this file; built with ``--path vendor`` for ``mdextra``.

Commands (UTF-8 payload): ``render TEXT...`` -> the HTML; ``section TEXT...`` -> the HTML
wrapped by ``mdextra.titled``; ``import NAME`` -> ``yes`` or
``no <exception type>`` (what the guest can import now); ``at-build NAME`` -> the same, tried
while the component was built (what ``wactor build`` let it see); ``version`` -> markdown's
version; ``path`` -> the guest's ``sys.path`` joined by ``;``.
"""

import importlib
import sys

import markdown
import mdextra  # from vendor/, on the path through `wactor build --path vendor`
from wit_world import exports
from wit_world.exports import component_lifecycle
from wit_world.imports import types


def _can_import(name: str) -> str:
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - the answer is the exception's type
        return f"no {type(exc).__name__}"
    return "yes"


# Tried while componentize-py builds the component (module code runs then and is snapshotted):
# packages of the Python running the build must not be importable.
AT_BUILD = {name: _can_import(name) for name in ("click", "wactor", "markdown")}


class ComponentLifecycle(exports.ComponentLifecycle):
    def initialize(self, config: types.ComponentConfig) -> None:
        pass

    def handle_message(self, msg: types.ComponentMessage) -> bytes | None:
        word, _, rest = bytes(msg.payload).decode("utf-8").partition(" ")
        if word == "render":
            return markdown.markdown(rest).encode()
        if word == "section":
            return mdextra.titled(markdown.markdown(rest)).encode()
        if word == "import":
            return _can_import(rest).encode()
        if word == "at-build":
            return AT_BUILD.get(rest, "not tried").encode()
        if word == "version":
            return markdown.__version__.encode()
        if word == "path":
            return ";".join(sys.path).encode()
        return f"unknown command {word!r}".encode()

    def handle_callback(self, msg: types.ComponentMessage) -> None:
        return None

    def metadata(self) -> component_lifecycle.ComponentMetadata:
        return component_lifecycle.ComponentMetadata(
            name="markdown",
            version="0.1.0",
            description="Renders Markdown with a PyPI package.",
            author="",
            license="",
            supported_operations=["render"],
            stateful=False,
        )

    def health(self) -> types.HealthStatus:
        return types.HealthStatus.HEALTHY

    def shutdown(self) -> None:
        pass
