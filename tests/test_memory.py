import pytest
import torch

from subprocess_run import run_python

MiB = 2**20


def test_allocation_stats_and_caching():
    torch.biren.empty_cache()
    torch.biren.reset_peak_memory_stats()
    base = torch.biren.memory_allocated()
    x = torch.empty(4 * MiB, dtype=torch.uint8, device="biren")
    assert torch.biren.memory_allocated() == base + 4 * MiB
    assert torch.biren.max_memory_allocated() >= base + 4 * MiB
    reserved = torch.biren.memory_reserved()
    del x
    assert torch.biren.memory_allocated() == base
    assert torch.biren.memory_reserved() == reserved  # cached, not returned
    y = torch.empty(4 * MiB, dtype=torch.uint8, device="biren")
    assert torch.biren.memory_reserved() == reserved  # served from the cache
    del y
    torch.biren.empty_cache()
    assert torch.biren.memory_reserved() < reserved


def test_per_device_stats():
    torch.biren.empty_cache()
    before0 = torch.biren.memory_allocated(0)
    before1 = torch.biren.memory_allocated(1)
    x = torch.empty(MiB, dtype=torch.uint8, device="biren:1")
    assert torch.biren.memory_allocated(1) == before1 + MiB
    assert torch.biren.memory_allocated(0) == before0
    del x


def test_results_of_fallback_ops_are_counted():
    a = torch.randn(256, 256, device="biren")
    before = torch.biren.memory_allocated()
    b = a.exp()  # runs the CPU kernel; its output memory is adopted by the device
    assert torch.biren.memory_allocated() >= before + b.numel() * 4
    del b
    assert torch.biren.memory_allocated() == before


def test_mem_get_info_and_summary():
    free, total = torch.biren.mem_get_info()
    assert total == 65024 * MiB and 0 < free <= total
    s = torch.biren.memory_summary()
    assert "PyTorch biren memory summary, device ID 0" in s
    assert "Allocated memory" in s and "Out-of-memory errors" in s


def test_out_of_memory_then_device_still_usable():
    with pytest.raises(torch.OutOfMemoryError) as e:
        torch.empty(70 * 1024 * MiB, dtype=torch.uint8, device="biren")
    msg = str(e.value)
    assert "biren out of memory. Tried to allocate 70.00 GiB" in msg
    assert "total capacity of 63.50 GiB" in msg and "allocated by PyTorch" in msg and "reserved by PyTorch" in msg
    assert torch.biren.memory_stats()["num_ooms"] >= 1
    x = torch.ones(10, device="biren")  # still usable
    assert x.sum().item() == 10


def test_memory_fraction():
    torch.biren.set_per_process_memory_fraction(0.01, 3)
    try:
        with pytest.raises(torch.OutOfMemoryError, match="limited to 0.01 of the card"):
            torch.empty(1024 * MiB, dtype=torch.uint8, device="biren:3")
    finally:
        torch.biren.set_per_process_memory_fraction(1.0, 3)
    with pytest.raises(ValueError):
        torch.biren.set_per_process_memory_fraction(1.5)


def test_fits_card_but_not_host():
    # 60 GiB fits the 63.5 GiB card, not this host: a clear error instead of the OOM killer.
    r = run_python(
        "import torch\n"
        "try:\n"
        "    torch.empty(60 * 2**30, dtype=torch.uint8, device='biren')\n"
        "except torch.OutOfMemoryError as e:\n"
        "    print(e)\n"
    )
    import os

    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if host > 60 * 2**30:
        pytest.skip("this host has more than 60 GiB")
    assert "biren device memory is host memory" in r.stdout, r.stderr


def test_pinned_memory():
    x = torch.randn(16).pin_memory()
    assert x.is_pinned()
    assert not torch.randn(16).is_pinned()
    y = x.to("biren", non_blocking=True)
    assert torch.equal(y.cpu(), x)


def _ooms(device=0):
    return torch.biren.memory_stats(device)["num_ooms"]


def test_out_of_memory_through_an_op_output_is_the_devices():
    # Each output is checked against the card before the CPU kernel touches host memory.
    big = (70 << 30) // 4
    one = torch.ones(1, device="biren")
    n = 1 << 17  # n * n floats = 64 GiB, more than the 63.5 GiB card
    cases = {
        "add": lambda: one.expand(big) + 1,
        "sin": lambda: one.expand(big).sin(),
        "arange": lambda: torch.arange(big, dtype=torch.float32, device="biren"),
        "outer": lambda: torch.outer(one.expand(n), one.expand(n)),
        "eye": lambda: torch.eye(n, device="biren"),
        "cat": lambda: torch.cat([one.expand(big // 2), one.expand(big // 2 + 1)]),
        "tril_indices": lambda: torch.tril_indices(100_000, 100_000, device="biren"),
    }
    for name, make in cases.items():
        before = _ooms()
        with pytest.raises(torch.OutOfMemoryError) as e:
            make()
        msg = str(e.value)
        assert msg.startswith("biren out of memory. Tried to allocate "), (name, msg)
        assert "Device biren:0 has a total capacity of 63.50 GiB" in msg and "reserved by PyTorch" in msg, name
        assert _ooms() == before + 1, name
    assert (one.expand(3) + 1).tolist() == [2.0, 2.0, 2.0]  # still usable


def test_fits_card_but_not_host_counts_as_an_oom():
    import os

    from torch_biren import _C
    from torch_biren.sim.chip import current_chip

    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    _C._set_capacity(64 * host)  # a card far larger than this host
    try:
        for make in (lambda: torch.empty(2 * host, dtype=torch.uint8, device="biren"),
                     lambda: torch.ones(1, dtype=torch.uint8, device="biren").expand(2 * host) + 1):
            before = _ooms()
            with pytest.raises(torch.OutOfMemoryError, match="fits the simulated card .* host memory"):
                make()
            assert _ooms() == before + 1
    finally:
        _C._set_capacity(int(current_chip().memory_bytes))
    assert torch.ones(4, device="biren").sum().item() == 4


def test_invalid_device_index_in_every_memory_api():
    calls = {
        "memory_allocated(8)": lambda: torch.biren.memory_allocated(8),
        "memory_allocated(-5)": lambda: torch.biren.memory_allocated(-5),
        "max_memory_allocated(8)": lambda: torch.biren.max_memory_allocated(8),
        "memory_reserved(8)": lambda: torch.biren.memory_reserved(8),
        "memory_stats('biren:9')": lambda: torch.biren.memory_stats("biren:9"),
        "memory_summary(8)": lambda: torch.biren.memory_summary(8),
        "mem_get_info(9)": lambda: torch.biren.mem_get_info(9),
        "set_per_process_memory_fraction(0.5, 9)": lambda: torch.biren.set_per_process_memory_fraction(0.5, 9),
        "reset_peak_memory_stats(11)": lambda: torch.biren.reset_peak_memory_stats(11),
        "reset_accumulated_memory_stats(8)": lambda: torch.biren.reset_accumulated_memory_stats(8),
        "accelerator.memory_stats(8)": lambda: torch.accelerator.memory_stats(8),
        "accelerator.get_memory_info(8)": lambda: torch.accelerator.get_memory_info(8),
    }
    for name, call in calls.items():
        with pytest.raises(RuntimeError, match=r"invalid device ordinal: device biren:-?\d+ requested but 8 biren"):
            call()
    assert torch.biren.memory_allocated(7) >= 0


def test_tensor_on_a_slice_of_pinned_storage_is_pinned():
    p = torch.randn(10).pin_memory()
    t = torch.tensor(()).set_(p.untyped_storage()[8:], 0, (8,), (1,))
    assert t.is_pinned() and torch.equal(t, p[2:])
    assert p[3:].is_pinned()
    assert not torch.randn(10).is_pinned()
