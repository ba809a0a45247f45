import pytest
import torch

from subprocess_run import run_python


def test_device_count_and_properties():
    assert torch.biren.is_available()
    assert torch.biren.device_count() == 8  # one 8-card server by default
    p = torch.biren.get_device_properties(0)
    assert p.name == "Biren BR166"
    assert p.total_memory == 65024 * 2**20
    assert p.multi_processor_count == 32
    assert torch.biren.get_device_name() == "Biren BR166"
    assert torch.biren.get_device_capability() == (p.major, p.minor)
    assert torch.biren.is_bf16_supported()


def test_module_to_keeps_parameter_objects():
    # As with CUDA: Module.to assigns param.data, so optimizers and tied weights made before it hold on.
    m = torch.nn.Linear(2, 2)
    w = m.weight
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    m.to("biren")
    assert m.weight is w and w.device.type == "biren"
    m(torch.ones(1, 2, device="biren")).sum().backward()
    before = w.detach().cpu().clone()
    opt.step()
    assert not torch.equal(w.detach().cpu(), before)
    p = torch.nn.Parameter(torch.zeros(3, device="biren"))
    p.data = torch.ones(3)  # and back to the CPU
    assert p.device.type == "cpu" and p.sum().item() == 3


def test_set_device_and_context():
    assert torch.biren.current_device() == 0
    with torch.biren.device(1):
        assert torch.biren.current_device() == 1
        assert torch.empty(1, device="biren").device == torch.device("biren:1")
    assert torch.biren.current_device() == 0
    torch.biren.set_device("biren:2")
    try:
        assert torch.tensor([1.0]).to("biren").device.index == 2
    finally:
        torch.biren.set_device(0)


def test_tensor_and_module_methods():
    x = torch.ones(2).biren()
    assert x.is_biren and x.device.type == "biren"
    m = torch.nn.Linear(2, 2).biren()
    assert m.weight.device.type == "biren"
    s = torch.UntypedStorage(8).biren()
    assert s.device.type == "biren"
    assert x.untyped_storage().device.type == "biren"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage is deprecated upstream
        ts = torch.TypedStorage([1.0, 2.0]).biren()
        assert ts.device.type == "biren" and ts.is_biren and ts.tolist() == [1.0, 2.0]
        assert x.storage().device.type == "biren"


def test_accelerator_api():
    assert torch.accelerator.current_accelerator().type == "biren"
    assert torch.accelerator.device_count() == 8
    torch.accelerator.set_device_index(1)
    assert torch.accelerator.current_device_index() == 1
    torch.accelerator.set_device_index(0)
    torch.accelerator.synchronize()
    assert torch.accelerator.get_device_capability()["supported_dtypes"]
    assert torch.accelerator.get_memory_info()[1] == 65024 * 2**20
    with torch.accelerator.device_index(1):
        assert torch.accelerator.current_device_index() == 1
    x = torch.empty(1024, device="biren")
    assert torch.accelerator.memory_allocated() >= 4096
    assert torch.accelerator.max_memory_allocated() >= 4096
    assert torch.accelerator.memory_reserved() >= 4096
    torch.accelerator.reset_peak_memory_stats()
    assert torch.accelerator.memory_stats()["allocated_bytes.all.current"] >= 4096
    del x
    torch.accelerator.empty_cache()


def test_visible_devices_env():
    r = run_python("import torch; print(torch.biren.device_count())", env={"BIREN_VISIBLE_DEVICES": "0,1"})
    assert r.stdout.strip() == "2", r.stderr


def test_autoload_and_opt_out():
    r = run_python("import torch; print(torch.ones(1, device='biren').device)")
    assert r.stdout.strip() == "biren:0", r.stderr
    r = run_python("import torch; print(hasattr(torch, 'biren'))", env={"TORCH_DEVICE_BACKEND_AUTOLOAD": "0"})
    assert r.stdout.strip() == "False", r.stderr
    r = run_python("import torch, torch_biren; print(torch.ones(1, device='biren').device)",
                   env={"TORCH_DEVICE_BACKEND_AUTOLOAD": "0"})
    assert r.stdout.strip() == "biren:0", r.stderr


def test_broken_plugin_does_not_break_import_torch():
    # A bad environment makes the plugin fail to load; torch must still import and compute on CPU.
    for env in ({"TORCH_BIREN_CHIP": "BOGUS"}, {"TORCH_BIREN_CHIP": "/nonexistent/chip.json"}):
        r = run_python("import torch; print(torch.ones(2).sum().item())", env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "2.0"
        assert "torch_biren failed to load" in r.stderr


def test_fork_after_init_is_an_error():
    code = """
import os, torch
torch.ones(1, device='biren')
pid = os.fork()
if pid == 0:
    try:
        torch.ones(1, device='biren')
        os._exit(3)
    except RuntimeError as e:
        os._exit(0 if "Cannot re-initialize biren in forked subprocess" in str(e) else 4)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    r = run_python(code)
    assert r.stdout.strip() == "0", r.stderr
    assert torch.biren._is_in_bad_fork() is False


def test_invalid_device_index():
    with pytest.raises(RuntimeError, match=r"invalid device ordinal: device biren:9 requested but 8 biren"):
        torch.empty(1, device="biren:9")
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.biren.set_device(42)
    assert torch.ones(1, device="biren").item() == 1.0


NO_DEVICES = """
import torch, warnings
print(torch.biren.device_count(), torch.biren.is_available(), torch.accelerator.is_available())
for make in (lambda: torch.ones(2, 2, device="biren"), lambda: torch.empty(0, device="biren"),
             lambda: torch.ones(2).to("biren"), lambda: torch.biren.current_stream()):
    try:
        make()
        print("created")
    except RuntimeError as e:
        print("error:", e)
print(torch.ones(2).sum().item())
"""


def test_empty_or_minus_one_visible_devices_hide_every_card():
    # CUDA_VISIBLE_DEVICES semantics: the list stops at the first entry that is not a card index.
    for value in ("", "-1", " "):
        r = run_python(NO_DEVICES, env={"BIREN_VISIBLE_DEVICES": value})
        lines = r.stdout.splitlines()
        assert r.returncode == 0 and lines[0] == "0 False False", (value, r.stdout, r.stderr)
        assert len(lines) == 6 and lines[-1] == "2.0", r.stdout
        for line in lines[1:5]:
            assert line.startswith("error: No biren GPUs are available (BIREN_VISIBLE_DEVICES="), (value, line)
    for value, count in (("1,-1,2", 1), ("3,1", 2), ("0,0", 1), ("2,9", 1)):
        r = run_python("import torch; print(torch.biren.device_count())", env={"BIREN_VISIBLE_DEVICES": value})
        assert r.stdout.strip() == str(count), (value, r.stderr)
    r = run_python("import torch; print(torch.biren.device_count())", env={"BIREN_VISIBLE_DEVICES": "zero"})
    assert r.stdout.strip() == "0" and "'zero' is not a card index" in r.stderr, r.stderr


def test_plugin_loads_fully_or_not_at_all(tmp_path):
    import json

    from torch_biren.sim.chip import CHIPS_DIR

    good = json.loads((CHIPS_DIR / "BR166.json").read_text())
    malformed = tmp_path / "mine.json"
    malformed.write_text('{"name": "Mine"\n "memory_bytes": 1}\n')
    incomplete = tmp_path / "short.json"
    incomplete.write_text(json.dumps({k: v for k, v in good.items() if k != "memory_bytes"}))
    cases = [
        ({"TORCH_BIREN_CHIP": "BOGUS"}, ["TORCH_BIREN_CHIP='BOGUS'", "unknown chip 'BOGUS'"]),
        ({"TORCH_BIREN_CHIP": str(malformed)}, [f"TORCH_BIREN_CHIP='{malformed}'", f"{malformed}:2:2: not valid JSON"]),
        ({"TORCH_BIREN_CHIP": str(incomplete)}, [f"TORCH_BIREN_CHIP='{incomplete}'", "memory_bytes"]),
        ({"TORCH_BIREN_SVI": "3"}, ["TORCH_BIREN_SVI='3'", "not 3"]),
    ]
    for env, wanted in cases:
        r = run_python(NO_DEVICES + "import torch_biren; print(type(torch_biren.load_error()).__name__)", env=env)
        lines = r.stdout.splitlines()
        assert r.returncode == 0 and lines[0] == "0 False False", (env, r.stdout, r.stderr)
        warning = next(line for line in r.stderr.splitlines() if "torch_biren failed to load" in line)
        assert "the 'biren' device is unavailable" in warning
        for w in wanted:
            assert w in warning, (w, warning)
        var = next(iter(env))
        for line in lines[1:5]:  # nothing runs: no tensor, no stream
            assert line.startswith("error: No biren GPUs are available (torch_biren failed to load (ChipSpecError: "
                                   f"{var}="), (env, line)
        assert lines[5:] == ["2.0", "ChipSpecError"], lines
