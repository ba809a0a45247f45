"""One rank of a test job (started by launch.py): python worker.py SCENARIO [args].

Prints lines "RESULT <json>" for the test to read; exits non-zero on a failed check."""

import datetime
import json
import os
import sys
import time

import torch
import torch.distributed as dist

RANK = int(os.environ.get("RANK", 0))


def result(**kw):
    print("RESULT " + json.dumps(kw), flush=True)


def init(backend="bccl", timeout_s=60):
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size()


# ---- collectives against gloo on CPU ---------------------------------------------------------------


def data(n, rank, dtype=torch.float32, salt=0):
    base = torch.arange(n, dtype=torch.float64) % 7 + 1 + rank * 3 + salt
    if dtype == torch.bool:
        return (base.long() % 2).bool()
    return base.to(dtype)


def collectives():
    rank, n = init()
    ref = dist.new_group(backend="gloo")
    dev = torch.device("biren", torch.biren.current_device())
    done = []

    def same(name, got, want):
        got = [got] if isinstance(got, torch.Tensor) else list(got)
        want = [want] if isinstance(want, torch.Tensor) else list(want)
        assert len(got) == len(want), (name, len(got), len(want))
        for g, w in zip(got, want):
            assert g.device.type == "biren", (name, g.device)
            assert torch.equal(g.cpu(), w), f"{name}: rank {rank}: got {g.cpu()} want {w}"
        done.append(name)

    R = dist.ReduceOp
    # all_reduce: every op and a range of dtypes
    cases = [(op, torch.float32) for op in ("SUM", "PRODUCT", "MIN", "MAX", "AVG")]
    cases += [(op, torch.int32) for op in ("SUM", "BAND", "BOR", "BXOR", "MAX")]
    cases += [("SUM", torch.bfloat16), ("SUM", torch.float16), ("SUM", torch.int64), ("MAX", torch.uint8),
              ("AVG", torch.int64), ("MAX", torch.bool)]
    for opname, dtype in cases:
        x = data(13, rank, dtype)
        t = x.to(dev)
        w = x.clone()
        if opname == "AVG":
            dist.all_reduce(w, R.SUM, group=ref)
            w = w / n if dtype.is_floating_point else torch.div(w, n, rounding_mode="trunc")
        else:
            dist.all_reduce(w, getattr(R, opname), group=ref)
        dist.all_reduce(t, getattr(R, opname))
        same(f"all_reduce {opname} {dtype}", t, w)
    t = data(6, rank).to(dev)
    dist.all_reduce(t, R.PREMUL_SUM(0.5))
    w = data(6, rank)
    dist.all_reduce(w, group=ref)
    same("all_reduce PREMUL_SUM", t, w * 0.5)

    # broadcast, reduce
    for root in range(n):
        t = data(9, rank).to(dev)
        w = data(9, rank)
        dist.broadcast(t, root)
        dist.broadcast(w, root, group=ref)
        same(f"broadcast root {root}", t, w)
    for opname in ("SUM", "MAX", "AVG"):
        t = data(9, rank).to(dev)
        w = data(9, rank)
        dist.reduce(t, 1, getattr(R, opname))
        dist.reduce(w, 1, R.SUM if opname == "AVG" else getattr(R, opname), group=ref)
        if rank == 1:
            same(f"reduce {opname}", t, w / n if opname == "AVG" else w)

    # all_gather (list and tensor), reduce_scatter (list and tensor)
    t = data(5, rank).to(dev)
    outs = [torch.empty(5, device=dev) for _ in range(n)]
    wants = [torch.empty(5) for _ in range(n)]
    dist.all_gather(outs, t)
    dist.all_gather(wants, data(5, rank), group=ref)
    same("all_gather", outs, wants)
    out = torch.empty(n * 5, dtype=torch.bfloat16, device=dev)
    want = torch.empty(n * 5, dtype=torch.bfloat16)
    dist.all_gather_into_tensor(out, data(5, rank, torch.bfloat16).to(dev))
    dist.all_gather_into_tensor(want, data(5, rank, torch.bfloat16), group=ref)
    same("all_gather_into_tensor", out, want)
    for opname in ("SUM", "AVG", "MAX"):
        ins = [data(4, rank, salt=i).to(dev) for i in range(n)]
        out = torch.empty(4, device=dev)
        want = torch.empty(4)
        dist.reduce_scatter(out, ins, getattr(R, opname))
        dist.reduce_scatter(want, [data(4, rank, salt=i) for i in range(n)],
                            R.SUM if opname == "AVG" else getattr(R, opname), group=ref)
        same(f"reduce_scatter {opname}", out, want / n if opname == "AVG" else want)
        out = torch.empty(4, device=dev)
        dist.reduce_scatter_tensor(out, data(4 * n, rank).to(dev), getattr(R, opname))
        want = torch.empty(4)
        dist.reduce_scatter_tensor(want, data(4 * n, rank), R.SUM if opname == "AVG" else getattr(R, opname),
                                   group=ref)
        same(f"reduce_scatter_tensor {opname}", out, want / n if opname == "AVG" else want)

    # all_to_all: list form with uneven sizes, single form with and without splits
    sizes = [[(i + j) % 3 + 1 for j in range(n)] for i in range(n)]  # rank i sends sizes[i][j] to j
    ins = [data(sizes[rank][j], rank, salt=j) for j in range(n)]
    outs = [torch.empty(sizes[j][rank], device=dev) for j in range(n)]
    wants = [torch.empty(sizes[j][rank]) for j in range(n)]
    dist.all_to_all(outs, [x.to(dev) for x in ins])
    # gloo has no list all_to_all: the reference is point-to-point
    reqs = []
    for j in range(n):
        if j == rank:
            wants[j].copy_(ins[j])
        else:
            reqs.append(dist.isend(ins[j], j, group=ref))
            reqs.append(dist.irecv(wants[j], j, group=ref))
    for q in reqs:
        q.wait()
    same("all_to_all", outs, wants)
    inp = data(4 * n, rank).view(2 * n, 2)
    out = torch.empty(2 * n, 2, device=dev)
    want = torch.empty(2 * n, 2)
    dist.all_to_all_single(out, inp.to(dev))
    dist.all_to_all_single(want, inp, group=ref)
    same("all_to_all_single", out, want)
    in_splits = [sizes[rank][j] for j in range(n)]
    out_splits = [sizes[j][rank] for j in range(n)]
    inp = data(sum(in_splits) * 3, rank).view(-1, 3)
    out = torch.empty(sum(out_splits), 3, device=dev)
    want = torch.empty(sum(out_splits), 3)
    dist.all_to_all_single(out, inp.to(dev), out_splits, in_splits)
    dist.all_to_all_single(want, inp, out_splits, in_splits, group=ref)
    same("all_to_all_single splits", out, want)

    # gather, scatter
    for root in range(n):
        t = data(3, rank).to(dev)
        gl = [torch.empty(3, device=dev) for _ in range(n)] if rank == root else None
        wl = [torch.empty(3) for _ in range(n)] if rank == root else None
        dist.gather(t, gl, dst=root)
        dist.gather(data(3, rank), wl, dst=root, group=ref)
        if rank == root:
            same(f"gather root {root}", gl, wl)
        out = torch.empty(3, device=dev)
        want = torch.empty(3)
        src_list = [data(3, rank, salt=i) for i in range(n)] if rank == root else None
        dist.scatter(out, [x.to(dev) for x in src_list] if src_list else None, src=root)
        dist.scatter(want, src_list, src=root, group=ref)
        same(f"scatter root {root}", out, want)

    # point to point: send/recv, isend/irecv, batch_isend_irecv
    nxt, prv = (rank + 1) % n, (rank - 1) % n
    t = data(7, rank).to(dev)
    got = torch.empty(7, device=dev)
    if rank % 2 == 0:
        dist.send(t, nxt)
        dist.recv(got, prv)
    else:
        dist.recv(got, prv)
        dist.send(t, nxt)
    same("send/recv", got, data(7, prv))
    got = torch.empty(7, device=dev)
    reqs = [dist.isend(t, nxt), dist.irecv(got, prv)]
    for q in reqs:
        q.wait()
    same("isend/irecv", got, data(7, prv))
    got = torch.empty(7, device=dev)
    ops = [dist.P2POp(dist.isend, t, nxt), dist.P2POp(dist.irecv, got, prv)]
    for q in dist.batch_isend_irecv(ops):
        q.wait()
    same("batch_isend_irecv", got, data(7, prv))

    # coalesced forms (DDP/FSDP use these through the coalescing manager)
    from torch.distributed.distributed_c10d import _coalescing_manager

    ts = [data(3, rank, salt=i).to(dev) for i in range(3)]
    with _coalescing_manager(async_ops=True) as cm:
        for x in ts:
            dist.all_reduce(x)
    cm.wait()
    ws = [data(3, rank, salt=i) for i in range(3)]
    for w in ws:
        dist.all_reduce(w, group=ref)
    same("all_reduce coalesced", ts, ws)
    ins = [data(2 + i, rank).to(dev) for i in range(2)]
    outs = [torch.empty(n * (2 + i), device=dev) for i in range(2)]
    with _coalescing_manager():
        for o, i in zip(outs, ins):
            dist.all_gather_into_tensor(o, i)
    wants = []
    for i in range(2):
        w = torch.empty(n * (2 + i))
        dist.all_gather_into_tensor(w, data(2 + i, rank), group=ref)
        wants.append(w)
    same("all_gather_into_tensor coalesced", outs, wants)
    ins = [data(n * (2 + i), rank).to(dev) for i in range(2)]
    outs = [torch.empty(2 + i, device=dev) for i in range(2)]
    with _coalescing_manager():
        for o, i in zip(outs, ins):
            dist.reduce_scatter_tensor(o, i, R.AVG)
    wants = []
    for i in range(2):
        w = torch.empty(2 + i)
        dist.reduce_scatter_tensor(w, data(n * (2 + i), rank), group=ref)
        wants.append(w / n)
    same("reduce_scatter_tensor coalesced", outs, wants)
    pg = dist.group.WORLD
    ts = [data(4, rank, salt=i).to(dev) for i in range(2)]
    pg.allreduce_coalesced(ts, dist.AllreduceCoalescedOptions()).wait()
    ws = [data(4, rank, salt=i) for i in range(2)]
    for w in ws:
        dist.all_reduce(w, group=ref)
    same("allreduce_coalesced", ts, ws)

    # objects, barrier, async work, futures, new groups
    objs = [None] * n
    dist.all_gather_object(objs, {"rank": rank})
    assert objs == [{"rank": r} for r in range(n)], objs
    lst = [{"from": 0}] if rank == 0 else [None]
    dist.broadcast_object_list(lst, 0)
    assert lst == [{"from": 0}]
    dist.barrier()
    t = data(5, rank).to(dev)
    work = dist.all_reduce(t, async_op=True)
    fut = work.get_future()
    work.wait()
    assert work.is_completed()
    val = fut.wait()
    assert val[0].device == dev and val[0] is t or torch.equal(val[0].cpu(), t.cpu())
    w = data(5, rank)
    dist.all_reduce(w, group=ref)
    same("async all_reduce + future", t, w)
    sub = dist.new_group([0, 1], backend="bccl")
    t = data(4, rank).to(dev)
    dist.all_reduce(t, group=sub)
    w = data(4, rank)
    dist.all_reduce(w, group=ref)
    same("all_reduce on new_group", t, w)

    # zero copy: the collective itself moves no data through copies, and lands in place
    import torch_biren

    t = data(1024, rank).to(dev)
    ptr = t.data_ptr()
    torch_biren.reset_op_counts()
    dist.all_reduce(t)
    counts = torch_biren.op_counts()
    assert counts == {"bccl:all_reduce": {"collective": 1}}, counts
    assert t.data_ptr() == ptr

    # charging: one link-bound kernel on this card's current stream, the cost model's time
    from torch_biren.sim import collectives as cm_
    from torch_biren.sim.profiler import profile

    big = torch.ones(1 << 20, device=dev)  # 4 MiB
    torch.biren.synchronize()
    dist.barrier()
    with profile() as prof:
        dist.all_reduce(big)
    recs = [r for r in prof.records if r.kind == "collective"]
    assert [r.name for r in recs] == ["bccl:all_reduce"], prof.records
    topo = cm_.topology(cards=n, cards_per_server=8)
    want_ns = cm_.collective("all_reduce", 4 << 20, n, topo=topo).ns
    rec = recs[0]
    assert rec.bound == "link" and rec.device == dev.index, rec
    assert want_ns <= rec.dur_ns + 1e-3, (rec.dur_ns, want_ns)  # the record keeps picoseconds
    s = torch.biren.Stream()
    with torch.biren.stream(s), profile() as prof2:
        dist.all_reduce(big)
    assert [r.stream for r in prof2.records if r.kind == "collective"] == [s.stream_id], prof2.records
    result(all_reduce_4MiB_ns=rec.dur_ns, model_ns=want_ns)
    # torch.profiler shows the collective on the device, at its simulated duration
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.biren.synchronize()
    dist.barrier()  # both ranks' clocks level, as for the check above
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.PrivateUse1]) as tprof:
        dist.all_reduce(big)
        torch.biren.synchronize()
    device = [(e.key, e.self_device_time_total) for e in tprof.key_averages()
              if e.device_type == torch.autograd.DeviceType.PrivateUse1]
    result(profiled_device_events=device)

    # bad arguments: clear errors on every rank, the group stays usable
    errors = {}

    def expect(name, fn, exc, text):
        try:
            fn()
        except exc as e:
            assert text in str(e), f"{name}: {e}"
            errors[name] = str(e).splitlines()[0]
        else:
            raise AssertionError(f"{name}: no error")

    expect("size mismatch", lambda: dist.all_reduce(torch.ones(4 + rank, device=dev)), RuntimeError,
           "tensor sizes (elements) differ across ranks: rank 0: 4, rank 1: 5")
    expect("dtype mismatch", lambda: dist.all_reduce(torch.ones(4, device=dev,
                                                                 dtype=torch.float32 if rank else torch.bfloat16)),
           RuntimeError, "dtypes differ across ranks")
    expect("root mismatch", lambda: dist.broadcast(torch.ones(4, device=dev), src=rank), RuntimeError,
           "roots differ across ranks")
    # rank 1 sends 1 element to rank 0, which expects 2 from it
    expect("split mismatch", lambda: dist.all_to_all_single(torch.empty(3 + rank, device=dev),
                                                            torch.ones(3 + rank, device=dev), [1 + rank, 2],
                                                            [1, 2 + rank]), RuntimeError, "split sizes do not match")
    expect("mixed devices", lambda: dist.all_gather([torch.empty(2), torch.empty(2, device=dev)],
                                                     torch.ones(2, device=dev)), ValueError,
           "must be on the same device")
    expect("wrong output size", lambda: dist.all_gather_into_tensor(torch.empty(3, device=dev),
                                                                     torch.ones(2, device=dev)),
           ValueError, "must be equal to world size")
    if rank == 1:  # one rank's bad argument: the others hear of it instead of waiting
        expect("one rank bad", lambda: dist.all_reduce(torch.ones(4, device=dev).t()[None].expand(2, 4)),
               ValueError, "contiguous")
    else:
        expect("one rank bad", lambda: dist.all_reduce(torch.ones(8, device=dev)), RuntimeError,
               "rank 1 rejected its arguments to all_reduce")
    t = data(4, rank).to(dev)
    dist.all_reduce(t)
    w = data(4, rank)
    dist.all_reduce(w, group=ref)
    same("usable after argument errors", t, w)
    result(checks=done, errors=errors)
    dist.destroy_process_group()


# ---- training ----------------------------------------------------------------------------------------


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 32), torch.nn.GELU(),
                               torch.nn.Linear(32, 4))


def _batches(steps, global_batch=8):
    g = torch.Generator().manual_seed(1234)
    return [(torch.randn(global_batch, 16, generator=g), torch.randint(0, 4, (global_batch,), generator=g))
            for _ in range(steps)]


def _reference(batches, dev, lr):
    """Single-process training on the whole global batch: the losses to match."""
    model = _model().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for x, y in batches:
        loss = torch.nn.functional.cross_entropy(model(x.to(dev)), y.to(dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model


def _shard(x, rank, n):
    b = x.shape[0] // n
    return x[rank * b:(rank + 1) * b]


def _step(model, opt, x, y, dev, rank, n):
    loss = torch.nn.functional.cross_entropy(model(_shard(x, rank, n).to(dev)), _shard(y, rank, n).to(dev))
    opt.zero_grad()
    loss.backward()
    opt.step()
    g = loss.detach().clone()
    dist.all_reduce(g, dist.ReduceOp.AVG)  # the global batch's mean loss
    return g.item()


def ddp(steps="6"):
    from torch.nn.parallel import DistributedDataParallel as DDP

    rank, n = init()
    steps = int(steps)
    dev = torch.device("biren", torch.biren.current_device())
    batches = _batches(steps)
    lr = 1e-2
    model = DDP(_model(seed=rank).to(dev))  # DDP broadcasts rank 0's weights
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    t0 = time.perf_counter()
    sim0 = torch_biren_elapsed(dev)
    losses = [_step(model, opt, x, y, dev, rank, n) for x, y in batches]
    sim = torch_biren_elapsed(dev) - sim0
    wall = time.perf_counter() - t0
    params = [p.detach().cpu() for p in model.module.parameters()]
    out = dict(losses=losses, wall_s=wall, sim_ms=sim / 1e6)
    if rank == 0:
        ref, ref_model = _reference(batches, dev, lr)
        out.update(ref=ref, max_param_diff=max((a - b.detach().cpu()).abs().max().item()
                                               for a, b in zip(params, ref_model.parameters())))
    result(**out)
    print("destroying", flush=True)
    dist.destroy_process_group()
    print("destroyed", flush=True)


def torch_biren_elapsed(dev):
    from torch_biren import _C

    torch.biren.synchronize(dev)
    return _C._sim_elapsed_ns(dev.index)


def fsdp(ckpt_dir, steps="4"):
    """FSDP2 on a biren DeviceMesh; DCP save after `steps`, two more steps, then load into a fresh
    model and redo those two: the losses must repeat exactly."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    rank, n = init("cpu:gloo,biren:bccl")
    assert type(dist.group.WORLD).__name__ == "ProcessGroupBCCL", type(dist.group.WORLD)
    steps = int(steps)
    dev = torch.device("biren", torch.biren.current_device())
    mesh = init_device_mesh("biren", (n,))
    assert mesh.device_type == "biren"
    batches = _batches(steps + 2)
    lr = 1e-2

    def build():
        model = _model()
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        model.to_empty(device=dev) if False else None
        return model, torch.optim.AdamW(model.parameters(), lr=lr)

    torch.manual_seed(0)
    model, opt = build()
    losses = [_step(model, opt, x, y, dev, rank, n) for x, y in batches[:steps]]
    local = model[0].weight.to_local()
    assert local.device == dev and local.shape[0] == 32 // n, (local.device, local.shape)
    # DTensor collectives (functional collectives through the C++ dispatcher) on the biren mesh
    full = model[0].weight.full_tensor()
    assert full.device == dev and full.shape == (32, 16), (full.device, full.shape)
    assert torch.equal(full[rank * (32 // n):(rank + 1) * (32 // n)].cpu(), local.cpu())
    import torch.distributed._functional_collectives as funcol

    summed = funcol.all_reduce(torch.full((3,), float(rank + 1), device=dev), "sum", mesh)
    assert summed.cpu().tolist() == [n * (n + 1) / 2] * 3, summed
    msd, osd = get_state_dict(model, opt)
    dcp.save({"model": msd, "optim": osd}, checkpoint_id=ckpt_dir)
    after = [_step(model, opt, x, y, dev, rank, n) for x, y in batches[steps:]]

    model2, opt2 = build()
    with torch.no_grad():
        for p in model2.parameters():
            p.to_local().zero_()
    msd2, osd2 = get_state_dict(model2, opt2)
    state = {"model": msd2, "optim": osd2}
    dcp.load(state, checkpoint_id=ckpt_dir)
    set_state_dict(model2, opt2, model_state_dict=state["model"], optim_state_dict=state["optim"])
    resumed = [_step(model2, opt2, x, y, dev, rank, n) for x, y in batches[steps:]]
    import torch_biren

    bccl_ops = sorted(k for k in torch_biren.op_counts() if k.startswith("bccl:"))
    out = dict(losses=losses + after, resumed=resumed, after=after, bccl_ops=bccl_ops)
    if rank == 0:
        ref, _ = _reference(batches, dev, lr)
        out["ref"] = ref
    result(**out)
    dist.destroy_process_group()


# ---- faults ----------------------------------------------------------------------------------------


def fault(kind, timeout_s="3"):
    rank, n = init(timeout_s=float(timeout_s))
    dev = torch.device("biren", torch.biren.current_device())
    t = torch.ones(8, device=dev)
    dist.all_reduce(t)  # everyone is up
    if rank == n - 1:
        if kind == "die":
            os._exit(3)
        time.sleep(120)  # hang outside any collective
        return
    t0 = time.monotonic()
    try:
        dist.all_reduce(t)
    except Exception as e:  # noqa: BLE001
        result(error=str(e), type=type(e).__name__, seconds=time.monotonic() - t0)
        try:
            dist.all_reduce(t)
        except Exception as e2:  # noqa: BLE001
            result(again=str(e2).splitlines()[0])
        os._exit(0)
    result(error=None)
    os._exit(1)


if __name__ == "__main__":
    scenario, *args = sys.argv[1:]
    {"collectives": collectives, "ddp": ddp, "fsdp": fsdp, "fault": fault}[scenario](*args)
