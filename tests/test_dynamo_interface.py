"""torch._dynamo's device interface for biren: what Dynamo and Inductor ask a device's runtime."""

import pytest
import torch
from torch._dynamo.device_interface import DeviceGuard, get_interface_for_device, get_registered_device_interfaces

import torch_biren  # noqa: F401
from subprocess_run import run_python


@pytest.fixture
def biren():
    interface = get_interface_for_device("biren")
    yield interface
    torch.biren.set_device(0)
    torch.biren.set_stream(torch.biren.default_stream(0))


def test_interface_is_registered_for_the_device_and_each_index(biren):
    assert get_interface_for_device(torch.device("biren", 3)) is biren
    names = {name for name, interface in get_registered_device_interfaces() if interface is biren}
    assert names == {"biren", *(f"biren:{i}" for i in range(torch.biren.device_count()))}


def test_registered_when_dynamo_is_first_imported_not_at_load():
    run = run_python("import sys, torch\n"
                     "assert 'torch._dynamo' not in sys.modules\n"
                     "from torch._dynamo.device_interface import get_interface_for_device\n"
                     "print(get_interface_for_device('biren').device_count())")
    assert run.stdout.strip() == str(torch.biren.device_count()), run.stderr[-3000:]


def test_devices(biren):
    assert biren.is_available() and biren.device_count() == torch.biren.device_count() > 1
    assert biren.current_device() == 0
    biren.set_device(1)
    assert biren.current_device() == torch.biren.current_device() == 1
    assert biren.exchange_device(0) == 1 and biren.current_device() == 0
    assert biren.maybe_exchange_device(-1) == 0 and biren.current_device() == 0
    with biren.device(1):
        assert torch.biren.current_device() == 1
    with DeviceGuard(biren, 1):
        assert torch.biren.current_device() == 1
    assert torch.biren.current_device() == 0


def test_streams_and_events_run_on_the_simulated_timeline(biren):
    s = biren.Stream()
    assert isinstance(s, torch.Stream) and s.device == torch.device("biren", 0)
    with biren.stream(s):
        assert biren.current_stream() == s and biren.get_raw_stream(0) == s.stream_id
    assert biren.current_stream() != s
    biren._set_stream_by_id(s.stream_id, s.device_index, s.device_type)
    assert torch.biren.current_stream() == s
    start, end = biren.Event(enable_timing=True), biren.Event(enable_timing=True)
    x = torch.randn(512, 512, device="biren")
    start.record()
    x @ x
    end.record()
    biren.synchronize()
    assert start.elapsed_time(end) > 0 and end.query()


def test_properties_and_capabilities(biren):
    props = torch.biren.get_device_properties(0)
    assert biren.get_device_properties() == props == biren.Worker.get_device_properties("biren:1")
    assert biren.get_compute_capability() == props.major * 10 + props.minor
    assert biren.is_bf16_supported() and biren.is_dtype_supported(torch.float16)
    assert not biren.is_dtype_supported(torch.float64)
    before = biren.memory_allocated()
    x = torch.empty(1 << 20, device="biren")
    assert biren.memory_allocated() - before == x.nbytes
    assert biren.is_triton_capable()  # Inductor's generated kernels run on biren (torch_biren/inductor)
    biren.raise_if_triton_unavailable()  # Triton is installed: nothing to raise
