"""The wasm layer: engine, compile cache, calling layer, instances and host functions."""

from wactor.wasm._context import ComponentInfo, DeadlineExceeded, GuestContext, in_guest_call
from wactor.wasm._engine import EngineSettings, LoadedComponent, WasmBytes, WasmEngine
from wactor.wasm._instance import (
    ComponentInstance,
    FuelMeter,
    GuestMetadata,
    InstanceLimits,
    WasiSpec,
)
from wactor.wasm._linker import build_linker

__all__ = [
    "ComponentInfo",
    "ComponentInstance",
    "DeadlineExceeded",
    "EngineSettings",
    "FuelMeter",
    "GuestContext",
    "GuestMetadata",
    "InstanceLimits",
    "LoadedComponent",
    "WasiSpec",
    "WasmBytes",
    "WasmEngine",
    "build_linker",
    "in_guest_call",
]
