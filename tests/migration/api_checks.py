"""Checks of the CUDA migration, run in a fresh interpreter by test_transfer_to_biren.py (the migration
patches torch globally, so it never runs inside the pytest process).

Each check_* function runs in order with the migration on (except those that say otherwise); the
results go to stdout as one JSON object {name: "ok" | error text}."""

import contextlib
import io
import json
import os
import pickle
import sys
import traceback
import types
import warnings

os.environ.setdefault("TORCH_BIREN_MIGRATE_QUIET", "1")
warnings.simplefilter("ignore")

import torch  # noqa: E402

_before = {}


def _snapshot():
    """Every attribute the migration may patch, by identity."""
    import torch_biren.migration.patches as p

    T, M = torch.Tensor, torch.nn.Module
    objs = {f"torch.{n}": getattr(torch, n, None) for n in (*p.FACTORIES, "device", "Generator", "load",
                                                            "set_default_device", "is_autocast_enabled", "compile")}
    objs.update({f"Tensor.{n}": T.__dict__.get(n) for n in ("to", "cuda", "is_cuda", "pin_memory", "new_zeros")})
    objs.update({f"Module.{n}": M.__dict__.get(n) for n in ("to", "cuda", "to_empty")})
    objs.update({f"torch.cuda.{n}": v for n, v in vars(torch.cuda).items()
                 if not n.startswith("__") and not isinstance(v, types.ModuleType)})  # submodules load lazily
    objs["autocast.__init__"] = torch.amp.autocast_mode.autocast.__init__
    objs["GradScaler.__init__"] = torch.amp.GradScaler.__init__
    objs["DataLoader.__init__"] = torch.utils.data.DataLoader.__init__
    objs["init_process_group"] = torch.distributed.init_process_group
    objs["serialization.load"] = torch.serialization.load
    objs["compat_kernel"] = torch._C._dispatch_has_kernel_for_dispatch_key(
        "aten::_has_compatible_shallow_copy_type", "PrivateUse1")
    import copyreg

    objs["copyreg.device"] = copyreg.dispatch_table.get(type(torch.device("cpu")))
    return objs


def check_enable_banner_and_idempotent():
    import torch_biren.migration as m

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert m.enable(quiet=False) is True
        assert m.enable(quiet=False) is False  # idempotent: no second patch, no second banner
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("torch_biren: CUDA migration on"), lines
    assert "TORCH_BIREN_MIGRATE_QUIET=1" in lines[0]
    import torch_biren.transfer_to_biren as t  # the import enables; already on: nothing happens

    assert t.is_enabled() and m.target() == "biren"


def check_torch_cuda_namespace():
    assert torch.cuda.is_available() and torch.cuda.device_count() == torch.biren.device_count()
    torch.cuda.set_device("cuda:1")
    assert torch.cuda.current_device() == 1 == torch.biren.current_device()
    torch.cuda.set_device(0)
    with torch.cuda.device(2):
        assert torch.empty(1, device="cuda").device == torch.device("biren", 2)
    assert torch.cuda.get_device_name() == torch.biren.get_device_name()
    assert torch.cuda.get_device_properties(0).total_memory == torch.biren.get_device_properties(0).total_memory
    assert torch.cuda.is_bf16_supported()
    x = torch.ones(1024, device="cuda")
    assert torch.cuda.memory_allocated() >= 4096 and torch.cuda.max_memory_allocated() >= 4096
    assert torch.cuda.memory_stats()["allocated_bytes.all.current"] >= 4096
    del x
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.manual_seed_all(3)
    a = torch.randn(4, device="cuda")
    torch.cuda.manual_seed(3)
    assert torch.equal(a, torch.randn(4, device="cuda"))
    state = torch.cuda.get_rng_state()
    b = torch.rand(3, device="cuda")
    torch.cuda.set_rng_state(state)
    assert torch.equal(b, torch.rand(3, device="cuda"))
    s = torch.cuda.Stream()
    assert isinstance(s, torch.biren.Stream)
    with torch.cuda.stream(s):
        assert torch.cuda.current_stream() == s
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    torch.ones(256, 256, device="cuda") @ torch.ones(256, 256, device="cuda")
    e1.record()
    torch.cuda.synchronize()
    assert e0.elapsed_time(e1) > 0
    assert torch.cuda.is_current_stream_capturing() is False
    torch.cuda.nvtx.range_push("x")
    torch.cuda.nvtx.range_pop()
    with torch.cuda.nvtx.range("y"):
        pass


def check_device_strings_and_objects():
    d = torch.device("cuda")
    assert d.type == "biren" and d.index is None and isinstance(d, torch.device)
    assert torch.device("cuda", 1) == torch.device("biren", 1) == torch.device("cuda:1")
    assert torch.device(type="cuda", index=2) == torch.device("biren:2")
    assert torch.device("cpu").type == "cpu" and torch.device("meta").type == "meta"
    assert pickle.loads(pickle.dumps(torch.device("cuda:3"))) == torch.device("biren:3")
    for fn, args in [(torch.empty, (2,)), (torch.zeros, (2,)), (torch.ones, (2,)), (torch.randn, (2,)),
                     (torch.rand, (2,)), (torch.full, ((2,), 1.0)), (torch.arange, (4,)), (torch.eye, (2,)),
                     (torch.tensor, ([1.0, 2.0],)), (torch.linspace, (0, 1, 3)), (torch.randint, (0, 5, (2,))),
                     (torch.randperm, (4,)), (torch.empty_strided, ((2,), (1,))), (torch.as_tensor, ([1],))]:
        for dev in ("cuda", "cuda:1", torch.device("cuda"), torch.device("cuda", 1)):
            t = fn(*args, device=dev)
            assert t.device.type == "biren", (fn.__name__, dev, t.device)
    base = torch.ones(2)
    for fn in (torch.zeros_like, torch.ones_like, torch.empty_like, torch.rand_like, torch.randn_like):
        assert fn(base, device="cuda").device.type == "biren"
    for m in ("new_zeros", "new_ones", "new_empty"):
        assert getattr(base, m)((2,), device="cuda").device.type == "biren"
    assert base.new_tensor([1], device="cuda:1").device == torch.device("biren", 1)
    g = torch.Generator(device="cuda")
    assert g.device.type == "biren" and isinstance(g, torch.Generator)
    assert torch.randn(2, generator=torch.Generator("cuda").manual_seed(1), device="cuda").device.type == "biren"
    assert torch.Generator().device.type == "cpu"
    with torch.device("cuda"):
        assert torch.empty(1).device.type == "biren"
    torch.set_default_device("cuda:1")
    try:
        assert torch.empty(1).device == torch.device("biren", 1)
    finally:
        torch.set_default_device(None)


def check_to_and_cuda_methods():
    x = torch.randn(3)
    assert x.to("cuda").device.type == "biren" and x.to("cuda:2").device.index == 2
    assert x.to(torch.device("cuda", 1), torch.float16).dtype == torch.float16
    assert x.to(device="cuda", non_blocking=True).is_cuda
    assert x.cuda().device == torch.device("biren", torch.cuda.current_device())
    assert x.cuda(1).device.index == 1 and x.cuda("cuda:3").device.index == 3
    assert x.cuda(torch.device("cuda:2")).device.index == 2
    assert x.is_cuda is False and x.cuda().is_cuda is True
    assert x.pin_memory().is_pinned()
    y = x.cuda()
    assert y.cuda() is y  # same device: no copy, as on CUDA
    assert y.cpu().device.type == "cpu"


def check_module_cuda_keeps_tied_weights():
    lin = torch.nn.Linear(4, 8, bias=False)
    emb = torch.nn.Embedding(8, 4)
    emb.weight = lin.weight
    model = torch.nn.ModuleDict({"lin": lin, "emb": emb})
    w = lin.weight
    model.cuda()
    assert model["lin"].weight is model["emb"].weight is w  # the same Parameter object, as on CUDA
    assert w.device.type == "biren" and w.is_cuda
    model.to("cuda:1")
    assert model["emb"].weight.device.index == 1 and model["lin"].weight is model["emb"].weight
    model.cuda(2)
    assert w.device.index == 2
    model.to(torch.device("cuda"), dtype=torch.float16)
    assert w.dtype == torch.float16 and w.device.type == "biren"
    model.cpu()
    assert w.device.type == "cpu"


def check_load_map_location():
    import tempfile

    sd = {"w": torch.randn(3, device="cuda:1"), "d": torch.device("cuda:1")}
    f = io.BytesIO()
    torch.save(sd, f)
    for ml, want in [("cuda", "biren:0"), ("cuda:2", "biren:2"), (torch.device("cuda", 3), "biren:3"),
                     ({"cuda:1": "cuda:0"}, "biren:0"), ({"biren:1": "cuda:2"}, "biren:2"), ("cpu", "cpu"),
                     (None, "biren:1"), (lambda s, loc: None, "biren:1")]:
        f.seek(0)
        out = torch.load(f, map_location=ml, weights_only=False)
        assert str(out["w"].device) == want, (ml, out["w"].device)
        assert torch.equal(out["w"].cpu(), sd["w"].cpu())
    assert out["d"] == torch.device("biren", 1)
    f.seek(0)
    assert str(torch.serialization.load(f, map_location="cuda:1")["w"].device) == "biren:1"
    # a checkpoint written on a CUDA machine: storages tagged 'cuda:N' restore on biren without map_location
    torch.serialization.register_package(0, lambda obj: "cuda:1" if obj.device.type == "cpu" else None,
                                         lambda obj, loc: None)
    with tempfile.TemporaryDirectory() as d:
        torch.save({"w": torch.arange(4.0)}, os.path.join(d, "c.pt"))
        with torch.serialization._open_zipfile_reader(open(os.path.join(d, "c.pt"), "rb")) as z:
            assert b"cuda:1" in z.get_record("data.pkl")
        assert str(torch.load(os.path.join(d, "c.pt"))["w"].device) == "biren:1"


def check_autocast_and_gradscaler():
    w = torch.randn(8, 8, device="cuda")
    x = torch.randn(4, 8, device="cuda")
    with torch.autocast("cuda"):
        assert (x @ w).dtype == torch.float16  # CUDA's default autocast dtype
        assert torch.is_autocast_enabled("cuda") and torch.is_autocast_enabled("biren")
    with torch.amp.autocast(device_type="cuda", dtype=torch.bfloat16):
        assert (x @ w).dtype == torch.bfloat16 and torch.get_autocast_dtype("cuda") == torch.bfloat16
    with torch.cuda.amp.autocast(dtype=torch.bfloat16):
        assert (x @ w).dtype == torch.bfloat16
    assert isinstance(torch.autocast("cuda"), torch.autocast)  # still the same class
    for scaler in (torch.amp.GradScaler(), torch.amp.GradScaler("cuda"), torch.amp.GradScaler(device="cuda"),
                   torch.cuda.amp.GradScaler()):
        assert scaler._device == "biren" and scaler.is_enabled()
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**4)
    p = torch.nn.Parameter(torch.ones(4, device="cuda"))
    opt = torch.optim.SGD([p], lr=0.1)
    with torch.autocast("cuda"):
        loss = (p * 2).sum()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.allclose(p.detach().cpu(), torch.full((4,), 0.8)) and scaler.get_scale() == 2.0**4


def check_dataloader_pin_memory_device():
    ds = torch.utils.data.TensorDataset(torch.arange(8.0))
    dl = torch.utils.data.DataLoader(ds, batch_size=4, pin_memory=True, pin_memory_device="cuda")
    assert dl.pin_memory_device == "biren"
    batch = next(iter(dl))[0]
    assert batch.is_pinned()
    assert batch.cuda(non_blocking=True).device.type == "biren"


def check_distributed_names():
    import torch.distributed as dist
    from torch.distributed.device_mesh import DeviceMesh

    import torch_biren.migration.patches as p

    assert p._backend_name("gloo") == "gloo"
    assert p._backend_name("cpu:gloo") == "cpu:gloo"
    if "bccl" in dist.Backend.backend_list:
        assert p._backend_name("cpu:gloo,cuda:nccl") == "cpu:gloo,biren:bccl"
        dist.init_process_group("nccl", store=dist.HashStore(), rank=0, world_size=1)
        try:
            assert dist.get_backend() == "bccl"
            x = torch.ones(4, device="cuda")
            dist.all_reduce(x)
            assert x.device.type == "biren" and x.sum().item() == 4
        finally:
            dist.destroy_process_group()
    else:  # a build without the collective backend says so
        try:
            dist.init_process_group("nccl", store=dist.HashStore(), rank=0, world_size=1)
        except RuntimeError as e:
            assert "'bccl'" in str(e) and "no 'bccl' backend is registered" in str(e), e
        else:
            raise AssertionError("nccl should need the bccl backend")
    mesh = DeviceMesh("cuda", torch.arange(1), _init_backend=False, _rank=0)
    assert mesh.device_type == "biren"


def check_fused_optimizer_and_clip():
    model = torch.nn.Linear(8, 8).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    loss = model(torch.randn(4, 8, device="cuda")).square().mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    assert all(p.is_cuda for p in model.parameters())


def check_compile_runs_biren_inductor():
    # torch.compile on 'cuda' is Inductor for biren: generated kernels, charged, no eager fallback
    import torch_biren

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU()).cuda()
    x = torch.randn(3, 4, device="cuda")
    torch_biren.reset_op_counts()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = torch.compile(model)(x)
    assert not [w for w in caught if "biren" in str(w.message)], [str(w.message) for w in caught]
    assert y.device.type == "biren" and torch.allclose(y, model(x), atol=1e-6)
    assert "triton_poi_fused_gelu_0" in torch_biren.op_counts()
    fn = torch.compile(lambda x: x * 2, backend="eager")  # an explicit backend is honoured
    assert fn(torch.ones(2, device="cuda")).device.type == "biren"


def check_disable_restores_everything():
    import torch_biren.migration as m

    assert m.disable() is True and m.disable() is False
    after = _snapshot()
    changed = [k for k in _before if _before[k] is not after.get(k) and _before[k] != after.get(k)]
    assert not changed, changed
    assert not torch.cuda.is_available() or torch.version.cuda  # CPU torch: CUDA is gone again
    assert torch.device("cuda").type == "cuda"
    assert torch.randn(2, device="biren").is_cuda is False
    assert torch.amp.GradScaler("biren")._device == "biren"
    # enable again after disable: everything comes back
    m.enable(quiet=True)
    assert torch.device("cuda").type == "biren" and torch.zeros(1, device="cuda").is_cuda
    m.disable()
    assert sorted(set(_snapshot()) ^ set(_before)) == [], sorted(set(_snapshot()) ^ set(_before))


def main():
    global _before
    _before = _snapshot()
    results = {}
    for name, fn in [(k, v) for k, v in globals().items() if k.startswith("check_")]:
        try:
            fn()
            results[name] = "ok"
        except Exception:  # noqa: BLE001 - each check reports its own failure
            results[name] = traceback.format_exc()
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
