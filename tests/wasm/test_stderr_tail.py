"""What a guest writes to stderr is kept bounded, and its own last error line is picked out."""

from __future__ import annotations

from wactor.wasm._faults import StderrTail, memory_headroom, reports_out_of_memory


def test_stderr_tail_keeps_only_the_last_bytes_however_much_is_written() -> None:
    tail = StderrTail(limit=4096)
    for _ in range(10_000):
        tail.write(b"x" * 1000 + b"\n")
    tail.write(b"ValueError: the end\n")
    assert len(tail) == 4096
    assert tail.last_error() == "ValueError: the end"
    tail.write(b"y" * 100_000)
    assert len(tail) == 4096


def test_last_error_skips_the_panic_after_a_python_traceback() -> None:
    tail = StderrTail()
    tail.write(
        b"Traceback (most recent call last):\n"
        b'  File "/0/app.py", line 12, in handle_message\n'
        b"KeyError: 'x'\n\n"
        b"thread '<unnamed>' (1) panicked at runtime/src/lib.rs:1293:29:\n"
        b"Python function threw an unexpected exception\n"
        b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
    )
    assert tail.last_error() == "KeyError: 'x'"
    tail.clear()
    assert tail.last_error() is None


def test_last_error_is_one_line_without_control_characters() -> None:
    tail = StderrTail()
    tail.write(("RuntimeError: \x1b[31mred\x07 \u202egnp.exe " + "z" * 500 + "\n").encode())
    line = tail.last_error()
    assert line is not None
    assert line.startswith("RuntimeError: ?[31mred? ?gnp.exe zzz")
    assert len(line) <= 200
    assert all(ch.isprintable() for ch in line)


def test_out_of_memory_reports_of_guest_runtimes_are_recognised() -> None:
    assert reports_out_of_memory("MemoryError")
    assert reports_out_of_memory("memory allocation of 1048576 bytes failed")
    assert not reports_out_of_memory("ValueError: MemoryError")
    assert not reports_out_of_memory(None)


def test_a_memory_counts_as_full_within_one_allocator_step_of_its_cap() -> None:
    mib = 1 << 20
    assert memory_headroom(64 * mib) == 4 * mib
    assert memory_headroom(4 * mib) == mib
    assert memory_headroom(mib) == mib // 4  # a 64 KiB guest under a 1 MiB cap is not "full"
