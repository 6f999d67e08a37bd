"""Stopped components give their memory back: Store, instance and every host reference."""

from __future__ import annotations

import gc
import weakref

import psutil

from conftest import ManifestFactory, guest_binary
from wactor.host import Host
from waiting import wait_until

MiB = 1 << 20
# A Python guest that has handled one message holds a few MiB (its linear memory and Store):
# enough components make the difference stand far above the noise of one process.
COMPONENTS = 64


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


async def test_stopped_python_components_give_back_most_of_their_memory(
    host: Host, manifest: ManifestFactory
) -> None:
    wasm = guest_binary("probe")
    paths = [manifest(f"t/mem/{i}", wasm) for i in range(COMPONENTS + 1)]
    # one start, call and stop first: what the process keeps for good (imports, worker
    # threads) is not counted as what the components added
    warm = await host.start(paths[0])
    assert await host.request(warm.id, b"echo warm") == b"warm"
    await host.stop(warm.id)
    before = _rss()
    for path in paths[1:]:
        handle = await host.start(path)
        assert await host.request(handle.id, b"echo hi") == b"hi"
    added = _rss() - before
    assert added > COMPONENTS * MiB, f"{COMPONENTS} guests added only {added / MiB:.0f} MiB"

    for i in range(1, COMPONENTS + 1):
        await host.stop(f"t/mem/{i}")
    kept = _rss() - before

    assert host.components() == []
    assert kept < 0.3 * added, (
        f"{COMPONENTS} stopped guests still hold {kept / MiB:.0f} MiB "
        f"of the {added / MiB:.0f} MiB they added"
    )


async def test_a_stopped_component_leaves_no_store_instance_or_runtime_behind(
    host: Host, manifest: ManifestFactory
) -> None:
    handle = await host.start(manifest("t/gone/0", guest_binary("probe")))
    assert await host.request(handle.id, b"echo hi") == b"hi"
    runtime = host.table.runtime(handle.id)
    assert runtime is not None
    instance = runtime.instance
    assert instance is not None
    refs = {
        "runtime": weakref.ref(runtime),
        "instance": weakref.ref(instance),
        "store": weakref.ref(instance._store),
        "compiled component": weakref.ref(runtime.loaded.component),
    }
    del runtime, instance

    await host.stop(handle.id)

    def alive() -> list[str]:
        gc.collect()
        return [name for name, ref in refs.items() if ref() is not None]

    # A worker thread may hold its last call's closure a moment after the reply was delivered;
    # anything that keeps these for good fails here.
    await wait_until(lambda: not alive(), "the stopped component's objects to be collected")
    assert alive() == []


async def test_a_restarted_component_keeps_only_its_live_store(
    host: Host, manifest: ManifestFactory
) -> None:
    supervision = (
        "[supervision]\nmax-restarts = 10\nwithin-seconds = 30\n"
        "backoff = { initial-ms = 1, max-ms = 5 }\n"
    )
    handle = await host.start(manifest("t/crashy/0", guest_binary("probe"), extra=supervision))
    runtime = host.table.runtime(handle.id)
    assert runtime is not None
    stores = []
    for count in (1, 2):
        instance = runtime.instance
        assert instance is not None
        stores.append(weakref.ref(instance._store))
        del instance
        await host.send(handle.id, b"crash")
        await host.wait_event("restarted", handle.id, count=count)
    assert await host.request(handle.id, b"echo back") == b"back"

    def gone() -> list[bool]:
        gc.collect()
        return [ref() is None for ref in stores]

    await wait_until(lambda: all(gone()), "the crashed incarnations' Stores to be collected")
    assert gone() == [True, True]


async def test_a_compiled_component_stays_loaded_while_used_and_goes_with_its_last_user(
    host: Host, manifest: ManifestFactory
) -> None:
    wasm = guest_binary("probe")
    first = await host.start(manifest("t/twin/0", wasm))
    second = await host.start(manifest("t/twin/1", wasm))
    runtime = host.table.runtime(first.id)
    assert runtime is not None
    compiled = weakref.ref(runtime.loaded.component)
    del runtime

    await host.stop(first.id)
    gc.collect()
    assert compiled() is not None  # the other one still runs it
    assert await host.request(second.id, b"echo still") == b"still"

    await host.stop(second.id)
    await wait_until(
        lambda: gc.collect() >= 0 and compiled() is None, "the compiled component to be released"
    )
