"""The bccl process group: collectives on biren tensors, carried by gloo over zero-copy host views.

Device memory is host memory, so gloo reads and writes the biren tensors' own bytes through
`_C._cpu_view` (a CPU tensor aliasing the device tensor): no staging copy, results land in device
memory in place. Each call (1) checks its arguments, (2) exchanges a small fingerprint with the
other ranks (checks.py: sizes, dtypes, roots, order), (3) charges the collective's simulated time on
this rank's card (cost.py), (4) starts the gloo transfer and returns a Work (work.py). Reductions
gloo lacks (AVG, PREMUL_SUM) are a SUM followed by an in-place scale of the result.

CPU tensors are accepted too (object collectives, `init_process_group("cpu:gloo,biren:bccl")`):
they go to gloo as they are and charge nothing.
"""

import datetime
import functools
import os
import weakref

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import (
    AllgatherOptions,
    AllreduceCoalescedOptions,
    AllreduceOptions,
    AllToAllOptions,
    BarrierOptions,
    PrefixStore,
    ProcessGroupGloo,
    ReduceOptions,
    ReduceScatterOptions,
)

from .. import _C
from . import checks, cost, faults, placement
from .work import Done, Work

NAME = "bccl"
_P2P_TAG_BASE = 1 << 20  # tags of the send/recv pairs all_to_all (list form) uses internally

_GLOO_REDUCE = {"SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR"}


def _view(t):
    return _C._cpu_view(t) if t.device.type == "biren" else t


def _views(ts):
    return [_view(t) for t in ts]


def _nbytes(ts):
    return sum(t.numel() * t.element_size() for t in ts)


def _numel(ts):
    return sum(t.numel() for t in ts)


def _size_str(nbytes):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def _collective(fn):
    """Argument errors found before the fingerprint exchange still take part in it (as an error
    marker), so the other ranks raise at once instead of waiting out the timeout."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        self._entered = False
        try:
            return fn(self, *args, **kwargs)
        except (ValueError, TypeError) as err:
            if not self._entered and self._size_ > 1 and self._broken is None:
                self._announce_error(err)
            raise

    return wrapper


class ProcessGroupBCCL(dist.ProcessGroup):
    """A process group whose collectives run on biren (and CPU) tensors. Made by init_process_group
    and new_group for backend "bccl"; see the module doc."""

    def __init__(self, store, rank, size, timeout, global_ranks=None, group_name=""):
        super().__init__(rank, size)
        self._rank_ = rank
        self._size_ = size
        self._timeout = timeout
        self._global_ranks = list(global_ranks) if global_ranks else list(range(size))
        self._gloo = ProcessGroupGloo(PrefixStore("gloo/", store), rank, size, timeout)
        self._diag = faults.Diagnosis(PrefixStore("bccl/", store), rank, self._global_ranks, timeout.total_seconds())
        self._seq = 0
        self._broken = None
        self._entered = False
        self._device = placement.assign_device()
        world = dist.get_world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", size))
        self._pricer = cost.Pricer(size, self._global_ranks, max(world, size))
        self._register_backend(torch.device("cpu"), dist.ProcessGroup.BackendType.GLOO, self._gloo)

    # ---- identity -------------------------------------------------------------------------------

    def getBackendName(self):
        return NAME

    def rank(self):
        return self._rank_

    def size(self):
        return self._size_

    def __repr__(self):
        return f"<ProcessGroupBCCL rank {self._rank_} of {self._size_}, biren:{self._device}>"

    def abort(self):
        self._broken = self._broken or "the process group was aborted"
        self._gloo.abort()

    def shutdown(self):
        self._gloo.shutdown()

    def set_timeout(self, timeout):
        self._timeout = timeout
        self._diag.timeout_s = timeout.total_seconds()
        self._gloo.set_timeout(timeout)

    # ---- the common path ------------------------------------------------------------------------

    def _fail(self, what, err, peers=None):
        if isinstance(err, dist.DistBackendError) and str(err).startswith("bccl error"):
            return err
        e = self._diag.error(what, err, peers)
        self._broken = f"{what} failed on rank {self._global_ranks[self._rank_]}"
        return e

    def _on_error(self, what, peers=None):
        # A weak reference: a Work finishing on a gloo thread must not hold the last reference to
        # the group, or the group (and gloo, joining its own threads) would be destroyed there.
        ref = weakref.ref(self)

        def on_error(err):
            pg = ref()
            return pg._fail(what, err, peers) if pg is not None else err

        return on_error

    def _check_alive(self, op):
        if self._broken is not None:
            raise dist.DistBackendError(
                f"bccl error: {op} on a process group that an earlier error left unusable ({self._broken}); "
                "destroy_process_group() and restart the job"
            )

    def _run(self, op, tensors, launch, result, *, n_in=0, n_out=0, bytes_in=0, bytes_out=0, dtype=None, root=-1,
             redop=None, count=1, sends=None, recvs=None, finish=None):
        """Checks, fingerprint exchange, charge, launch; a Work. launch() -> list of gloo works."""
        self._check_alive(op)
        device = checks.check_tensors(op, tensors)
        self._entered = True
        if device is None:
            device = torch.device("biren", self._device)
        self._seq += 1
        seq = self._seq
        nb = max(bytes_in, bytes_out)
        what = f"{op} #{seq}" + (f" ({_size_str(nb)} {str(dtype).replace('torch.', '')})" if dtype is not None else "")
        on_biren = device.type == "biren"
        clock = cost.stream_clock(device.index) if on_biren else 0.0
        wait_ns = 0.0
        if self._size_ > 1:
            fp = checks.fingerprint(self._size_, op, dtype, n_in, n_out, root,
                                    checks.redop_code(redop) if redop is not None else -1, device.type, clock, count,
                                    seq, sends, recvs)
            rows = torch.empty(self._size_, fp.numel(), dtype=torch.int64)
            try:
                self._gloo._allgather_base(rows.view(-1), fp, AllgatherOptions()).wait()
            except Exception as err:  # noqa: BLE001
                raise self._fail(what, err) from None
            msg = checks.mismatch(rows, self._global_ranks)
            if msg:
                raise RuntimeError(f"bccl error: {op} #{seq}: {msg}")
            if on_biren:
                wait_ns = float(rows[:, checks.CLOCK].max()) - int(clock)
        if on_biren:
            self._pricer.charge(device.index, op, bytes_in, bytes_out, wait_ns)
        if self._size_ == 1 and finish is None:
            inner = launch()
            return Work(inner, result, on_error=self._on_error(what), op=what)
        try:
            inner = launch()
        except Exception as err:  # noqa: BLE001
            raise self._fail(what, err) from None
        return Work(inner, result, finish, on_error=self._on_error(what), op=what)

    def _announce_error(self, err):
        self._seq += 1
        fp = checks.fingerprint(self._size_, None, None, 0, 0, seq=self._seq)
        rows = torch.empty(self._size_, fp.numel(), dtype=torch.int64)
        try:
            self._gloo._allgather_base(rows.view(-1), fp, AllgatherOptions()).wait()
        except Exception:  # noqa: BLE001 - the argument error is what the caller sees
            pass

    @staticmethod
    def _reduce(op, redop, size, outputs):
        """(gloo's reduce op, a finishing step or None) for `redop`; AVG/PREMUL_SUM as SUM then scale."""
        name = checks.redop_name(redop)
        if name in _GLOO_REDUCE:
            return redop, None
        if name == "AVG":
            if any(t.dtype == torch.bool for t in outputs):
                raise ValueError(f"bccl {op}: ReduceOp.AVG is not defined for bool tensors")

            def finish():
                for v in outputs:
                    if v.is_floating_point() or v.is_complex():
                        v.div_(size)
                    else:
                        v.div_(size, rounding_mode="trunc")

            return dist.ReduceOp.SUM, finish
        if name == "PREMUL_SUM":
            factor = redop.factor
            factor = factor.item() if isinstance(factor, torch.Tensor) else float(factor)

            def finish():
                for v in outputs:
                    v.mul_(factor)

            return dist.ReduceOp.SUM, finish
        raise ValueError(f"bccl {op}: unsupported reduce op {name}")

    @staticmethod
    def _one(op, tensors):
        if len(tensors) != 1:
            raise ValueError(f"bccl {op}: expects one tensor per process, got {len(tensors)}")
        return tensors[0]

    # ---- collectives ----------------------------------------------------------------------------

    @_collective
    def allreduce(self, tensors, opts=None):
        opts = opts if opts is not None else AllreduceOptions()
        t = self._one("all_reduce", tensors)
        v = _view(t)
        red, finish = self._reduce("all_reduce", opts.reduceOp, self._size_, [v])
        o = AllreduceOptions()
        o.reduceOp = red
        o.timeout = opts.timeout
        return self._run("all_reduce", [t], lambda: [self._gloo.allreduce([v], o)], [t], n_in=t.numel(),
                         bytes_in=_nbytes([t]), dtype=t.dtype, redop=opts.reduceOp, finish=finish)

    @_collective
    def allreduce_coalesced(self, tensors, opts=None):
        opts = opts if opts is not None else AllreduceCoalescedOptions()
        if not tensors:
            return Done([], "all_reduce_coalesced")
        checks.same_dtype("all_reduce_coalesced", tensors)
        vs = _views(tensors)
        red, finish = self._reduce("all_reduce_coalesced", opts.reduceOp, self._size_, vs)
        o = AllreduceCoalescedOptions()
        o.reduceOp = red
        o.timeout = opts.timeout
        return self._run("all_reduce_coalesced", tensors, lambda: [self._gloo.allreduce_coalesced(vs, o)], tensors,
                         n_in=_numel(tensors), bytes_in=_nbytes(tensors), dtype=tensors[0].dtype,
                         redop=opts.reduceOp, count=len(tensors), finish=finish)

    @_collective
    def broadcast(self, tensors, opts=None):
        opts = opts if opts is not None else dist.BroadcastOptions()
        t = self._one("broadcast", tensors)
        self._check_root("broadcast", opts.rootRank)
        v = _view(t)
        return self._run("broadcast", [t], lambda: [self._gloo.broadcast([v], opts)], [t], n_in=t.numel(),
                         bytes_in=_nbytes([t]), dtype=t.dtype, root=opts.rootRank)

    @_collective
    def reduce(self, tensors, opts=None):
        opts = opts if opts is not None else ReduceOptions()
        t = self._one("reduce", tensors)
        self._check_root("reduce", opts.rootRank)
        v = _view(t)
        red, finish = self._reduce("reduce", opts.reduceOp, self._size_, [v])
        o = ReduceOptions()
        o.reduceOp = red
        o.rootRank = opts.rootRank
        o.rootTensor = opts.rootTensor
        o.timeout = opts.timeout
        if self._rank_ != opts.rootRank:
            finish = None
        return self._run("reduce", [t], lambda: [self._gloo.reduce([v], o)], [t], n_in=t.numel(),
                         bytes_in=_nbytes([t]), dtype=t.dtype, root=opts.rootRank, redop=opts.reduceOp, finish=finish)

    @_collective
    def allgather(self, output_tensors, input_tensors, opts=None):
        opts = opts if opts is not None else AllgatherOptions()
        t = self._one("all_gather", input_tensors)
        if len(output_tensors) != 1:
            raise ValueError(f"bccl all_gather: expects one output list per process, got {len(output_tensors)}")
        outs = output_tensors[0]
        self._check_list("all_gather", outs, t, "output")
        ov, iv = _views(outs), _view(t)
        return self._run("all_gather", [t, *outs], lambda: [self._gloo.allgather([ov], [iv], opts)], outs,
                         n_in=t.numel(), bytes_in=_nbytes([t]), dtype=t.dtype)

    @_collective
    def all_gather_single(self, output, input, opts=None):
        opts = opts if opts is not None else AllgatherOptions()
        if output.numel() != input.numel() * self._size_:
            raise ValueError(
                f"bccl all_gather_into_tensor: output tensor size ({output.numel()} elements) must be equal to world "
                f"size ({self._size_}) times input tensor size ({input.numel()} elements)"
            )
        if output.dtype != input.dtype:
            raise TypeError(f"bccl all_gather_into_tensor: output dtype {output.dtype} differs from input {input.dtype}")
        ov, iv = _view(output), _view(input)
        return self._run("all_gather_into_tensor", [output, input], lambda: [self._gloo._allgather_base(ov, iv, opts)],
                         [output], n_in=input.numel(), bytes_in=_nbytes([input]), dtype=input.dtype)

    _allgather_base = all_gather_single

    @_collective
    def allgather_coalesced(self, output_lists, input_list, opts=None):
        opts = opts if opts is not None else AllgatherOptions()
        if len(output_lists) != len(input_list):
            raise ValueError(f"bccl all_gather_coalesced: {len(output_lists)} output lists for {len(input_list)} inputs")
        for outs, t in zip(output_lists, input_list):
            self._check_list("all_gather_coalesced", outs, t, "output")
        checks.same_dtype("all_gather_coalesced", input_list)
        ovs = [_views(outs) for outs in output_lists]
        ivs = _views(input_list)
        flat = [o for outs in output_lists for o in outs]
        return self._run("all_gather_coalesced", [*input_list, *flat],
                         lambda: [self._gloo.allgather_coalesced(ovs, ivs, opts)], flat, n_in=_numel(input_list),
                         bytes_in=_nbytes(input_list), dtype=input_list[0].dtype if input_list else None,
                         count=len(input_list))

    @_collective
    def all_gather_single_coalesced(self, outputs, inputs, opts=None):
        opts = opts if opts is not None else AllgatherOptions()
        for o, i in zip(outputs, inputs, strict=True):
            if o.numel() != i.numel() * self._size_:
                raise ValueError(f"bccl all_gather_into_tensor_coalesced: output size {o.numel()} must be world size "
                                 f"({self._size_}) times input size {i.numel()}")
        checks.same_dtype("all_gather_into_tensor_coalesced", [*outputs, *inputs])
        pairs = [(_view(o), _view(i)) for o, i in zip(outputs, inputs)]
        return self._run("all_gather_into_tensor_coalesced", [*outputs, *inputs],
                         lambda: [self._gloo._allgather_base(o, i, opts) for o, i in pairs], outputs,
                         n_in=_numel(inputs), bytes_in=_nbytes(inputs), dtype=inputs[0].dtype if inputs else None,
                         count=len(inputs))

    allgather_into_tensor_coalesced = all_gather_single_coalesced

    @_collective
    def gather(self, output_tensors, input_tensors, opts=None):
        opts = opts if opts is not None else dist.GatherOptions()
        t = self._one("gather", input_tensors)
        self._check_root("gather", opts.rootRank)
        outs = []
        if self._rank_ == opts.rootRank:
            if len(output_tensors) != 1:
                raise ValueError("bccl gather: the root expects one list of output tensors")
            outs = output_tensors[0]
            self._check_list("gather", outs, t, "gather_list")
        elif output_tensors and any(output_tensors):
            raise ValueError(f"bccl gather: gather_list must be empty on non-root rank {self._rank_}")
        ov, iv = [_views(outs)] if outs else [], [_view(t)]
        return self._run("gather", [t, *outs], lambda: [self._gloo.gather(ov, iv, opts)], outs, n_in=t.numel(),
                         bytes_in=_nbytes([t]), dtype=t.dtype, root=opts.rootRank)

    @_collective
    def scatter(self, output_tensors, input_tensors, opts=None):
        opts = opts if opts is not None else dist.ScatterOptions()
        t = self._one("scatter", output_tensors)
        self._check_root("scatter", opts.rootRank)
        ins = []
        if self._rank_ == opts.rootRank:
            if len(input_tensors) != 1:
                raise ValueError("bccl scatter: the root expects one list of input tensors")
            ins = input_tensors[0]
            self._check_list("scatter", ins, t, "scatter_list")
        elif input_tensors and any(input_tensors):
            raise ValueError(f"bccl scatter: scatter_list must be empty on non-root rank {self._rank_}")
        ov, iv = [_view(t)], [_views(ins)] if ins else []
        return self._run("scatter", [t, *ins], lambda: [self._gloo.scatter(ov, iv, opts)], [t], n_out=t.numel(),
                         bytes_out=_nbytes([t]), dtype=t.dtype, root=opts.rootRank)

    @_collective
    def reduce_scatter(self, output_tensors, input_tensors, opts=None):
        opts = opts if opts is not None else ReduceScatterOptions()
        t = self._one("reduce_scatter", output_tensors)
        if len(input_tensors) != 1:
            raise ValueError("bccl reduce_scatter: expects one input list per process")
        ins = input_tensors[0]
        self._check_list("reduce_scatter", ins, t, "input")
        ov, ivs = _view(t), _views(ins)
        red, finish = self._reduce("reduce_scatter", opts.reduceOp, self._size_, [ov])
        o = ReduceScatterOptions()
        o.reduceOp = red
        o.timeout = opts.timeout
        return self._run("reduce_scatter", [t, *ins], lambda: [self._gloo.reduce_scatter([ov], [ivs], o)], [t],
                         n_out=t.numel(), bytes_out=_nbytes([t]), dtype=t.dtype, redop=opts.reduceOp, finish=finish)

    @_collective
    def reduce_scatter_single(self, output, input, opts=None):
        opts = opts if opts is not None else ReduceScatterOptions()
        if input.numel() != output.numel() * self._size_:
            raise ValueError(
                f"bccl reduce_scatter_tensor: input tensor size ({input.numel()} elements) must be equal to world "
                f"size ({self._size_}) times output tensor size ({output.numel()} elements)"
            )
        if output.dtype != input.dtype:
            raise TypeError(f"bccl reduce_scatter_tensor: output dtype {output.dtype} differs from input {input.dtype}")
        ov, iv = _view(output), _view(input)
        red, finish = self._reduce("reduce_scatter_tensor", opts.reduceOp, self._size_, [ov])
        o = ReduceScatterOptions()
        o.reduceOp = red
        o.timeout = opts.timeout
        return self._run("reduce_scatter_tensor", [output, input], lambda: [self._gloo._reduce_scatter_base(ov, iv, o)],
                         [output], n_out=output.numel(), bytes_out=_nbytes([output]), dtype=output.dtype,
                         redop=opts.reduceOp, finish=finish)

    _reduce_scatter_base = reduce_scatter_single

    @_collective
    def reduce_scatter_single_coalesced(self, outputs, inputs, opts=None):
        opts = opts if opts is not None else ReduceScatterOptions()
        for o_, i_ in zip(outputs, inputs, strict=True):
            if i_.numel() != o_.numel() * self._size_:
                raise ValueError(f"bccl reduce_scatter_tensor_coalesced: input size {i_.numel()} must be world size "
                                 f"({self._size_}) times output size {o_.numel()}")
        checks.same_dtype("reduce_scatter_tensor_coalesced", [*outputs, *inputs])
        pairs = [(_view(o_), _view(i_)) for o_, i_ in zip(outputs, inputs)]
        red, finish = self._reduce("reduce_scatter_tensor_coalesced", opts.reduceOp, self._size_, [p[0] for p in pairs])
        o = ReduceScatterOptions()
        o.reduceOp = red
        o.timeout = opts.timeout
        return self._run("reduce_scatter_tensor_coalesced", [*outputs, *inputs],
                         lambda: [self._gloo._reduce_scatter_base(ov, iv, o) for ov, iv in pairs], outputs,
                         n_out=_numel(outputs), bytes_out=_nbytes(outputs), dtype=outputs[0].dtype if outputs else None,
                         redop=opts.reduceOp, count=len(outputs), finish=finish)

    reduce_scatter_tensor_coalesced = reduce_scatter_single_coalesced

    @_collective
    def all_to_all_single(self, output, input, output_split_sizes, input_split_sizes, opts=None):
        opts = opts if opts is not None else AllToAllOptions()
        n = self._size_
        if output.dtype != input.dtype:
            raise TypeError(f"bccl all_to_all_single: output dtype {output.dtype} differs from input {input.dtype}")
        sends = self._splits("input", input, input_split_sizes)
        recvs = self._splits("output", output, output_split_sizes)
        ov, iv = _view(output), _view(input)
        osz, isz = list(output_split_sizes), list(input_split_sizes)
        return self._run("all_to_all_single", [output, input],
                         lambda: [self._gloo.alltoall_base(ov, iv, osz, isz, opts)], [output], n_in=input.numel(),
                         n_out=output.numel(), bytes_in=_nbytes([input]), bytes_out=_nbytes([output]),
                         dtype=input.dtype, count=n, sends=sends, recvs=recvs)

    alltoall_base = all_to_all_single

    @_collective
    def alltoall(self, output_tensors, input_tensors, opts=None):
        opts = opts if opts is not None else AllToAllOptions()
        n = self._size_
        if len(output_tensors) != n or len(input_tensors) != n:
            raise ValueError(f"bccl all_to_all: expects {n} input and {n} output tensors (one per rank), got "
                             f"{len(input_tensors)} and {len(output_tensors)}")
        checks.same_dtype("all_to_all", [*output_tensors, *input_tensors])
        ovs, ivs = _views(output_tensors), _views(input_tensors)
        me = self._rank_
        seq = self._seq + 1
        tag = _P2P_TAG_BASE + (seq % (1 << 20))

        def launch():
            works = []
            for k in range(1, n):  # pair up in rounds so no rank waits on a busy peer
                dst, src = (me + k) % n, (me - k) % n
                works.append(self._gloo.send([ivs[dst]], dst, tag))
                works.append(self._gloo.recv([ovs[src]], src, tag))
            ovs[me].copy_(ivs[me])
            return works

        return self._run("all_to_all", [*output_tensors, *input_tensors], launch, output_tensors,
                         n_in=_numel(input_tensors), n_out=_numel(output_tensors), bytes_in=_nbytes(input_tensors),
                         bytes_out=_nbytes(output_tensors), dtype=input_tensors[0].dtype, count=n,
                         sends=[t.numel() for t in input_tensors], recvs=[t.numel() for t in output_tensors])

    @_collective
    def barrier(self, opts=None):
        opts = opts if opts is not None else BarrierOptions()
        # Charged on this rank's card whatever device torch picked for it, as NCCL's barrier is a
        # one-element all_reduce on the card.
        device = getattr(opts, "device", None)
        idx = device.index if device is not None and device.type == "biren" and device.index is not None else self._device
        marker = torch.empty(0, device=torch.device("biren", idx))
        return self._run("barrier", [marker], lambda: [self._gloo.barrier(BarrierOptions())], [])

    def monitored_barrier(self, timeout=None, wait_all_ranks=False):
        return self._gloo.monitored_barrier(timeout or self._timeout, wait_all_ranks)

    # ---- point to point -------------------------------------------------------------------------

    def _p2p(self, op, tensors, peer, launch):
        self._check_alive(op)
        t = self._one(op, tensors)
        device = checks.check_tensors(op, [t])
        if not 0 <= peer < self._size_ or peer == self._rank_:
            raise ValueError(f"bccl {op}: invalid peer rank {peer} for rank {self._rank_} of a group of {self._size_}")
        what = f"{op} {'to' if op == 'send' else 'from'} rank {self._global_ranks[peer]} " \
               f"({_size_str(_nbytes([t]))} {str(t.dtype).replace('torch.', '')})"
        if device.type == "biren":
            nb = _nbytes([t])
            self._pricer.charge(device.index, op, nb, nb, ranks=2)
        try:
            inner = launch(_view(t))
        except Exception as err:  # noqa: BLE001
            raise self._fail(what, err, peers=[self._rank_, peer]) from None
        return Work([inner], [t], on_error=self._on_error(what, [self._rank_, peer]), op=what)

    def send(self, tensors, dstRank, tag):
        return self._p2p("send", tensors, dstRank, lambda v: self._gloo.send([v], dstRank, tag))

    def recv(self, tensors, srcRank, tag):
        return self._p2p("recv", tensors, srcRank, lambda v: self._gloo.recv([v], srcRank, tag))

    def recv_anysource(self, tensors, tag):
        self._check_alive("recv")
        t = self._one("recv", tensors)
        checks.check_tensors("recv", [t])
        inner = self._gloo.recv_anysource([_view(t)], tag)
        work = Work([inner], [t], on_error=self._on_error("recv from any source"), op="recv")
        work._source_rank_value = None
        pricer = self._pricer

        def source():
            work.wait()
            src = inner._source_rank()
            if t.device.type == "biren":
                nb = _nbytes([t])
                pricer.charge(t.device.index, "recv", nb, nb, ranks=2)
            return src

        work.source_rank = work._source_rank = source
        return work

    # ---- helpers --------------------------------------------------------------------------------

    def _check_root(self, op, root):
        if not 0 <= root < self._size_:
            raise ValueError(f"bccl {op}: root rank {root} is not in the group (ranks 0-{self._size_ - 1})")

    def _check_list(self, op, ts, like, what):
        if len(ts) != self._size_:
            raise ValueError(f"bccl {op}: expects {self._size_} {what} tensors (one per rank), got {len(ts)}")
        for t in ts:
            if t.numel() != like.numel():
                raise ValueError(f"bccl {op}: every {what} tensor must have the input's size ({like.numel()} elements), "
                                 f"got one of {t.numel()}")
            if t.dtype != like.dtype:
                raise TypeError(f"bccl {op}: {what} tensors must have the input's dtype {like.dtype}, got {t.dtype}")

    def _splits(self, name, t, splits):
        n = self._size_
        rows = t.shape[0] if t.dim() > 0 else 1
        per_row = t.numel() // rows if rows else 0
        if not splits:
            if rows % n:
                raise ValueError(f"bccl all_to_all_single: the {name} tensor's first dimension ({rows}) must divide by "
                                 f"the world size ({n}) when no split sizes are given")
            return [rows // n * per_row] * n
        if len(splits) != n:
            raise ValueError(f"bccl all_to_all_single: {name} split sizes must have one entry per rank ({n}), got "
                             f"{len(splits)}")
        if sum(splits) != rows:
            raise ValueError(f"bccl all_to_all_single: {name} split sizes sum to {sum(splits)}, but the {name} tensor's "
                             f"first dimension is {rows}")
        return [s * per_row for s in splits]


def create(dist_opts, backend_options=None):
    """The creator that torch.distributed calls for backend "bccl" (extended API)."""
    timeout = dist_opts.timeout
    if not isinstance(timeout, datetime.timedelta):
        timeout = datetime.timedelta(seconds=float(timeout))
    return ProcessGroupBCCL(dist_opts.store, dist_opts.group_rank, dist_opts.group_size, timeout,
                            dist_opts.global_ranks_in_group, getattr(dist_opts, "group_id", ""))
