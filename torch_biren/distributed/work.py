"""Work objects that bccl returns: a gloo transfer in flight on host views of device memory.

`wait()` blocks until the data has landed in device memory (and any finishing step, such as the
division of ReduceOp.AVG, has run); `get_future()` gives a torch.futures.Future whose value is the
collective's output biren tensors, as DDP's communication hooks expect. A failure is raised as a
DistBackendError that names the collective and the ranks (see faults.py).
"""

import threading

import torch
import torch.distributed as dist
from torch.futures import Future


class Work(dist.Work):
    """One collective or point-to-point transfer: `inner` gloo works, then `finish()` (may be None).

    result: the tensors the future resolves to (the caller's biren tensors, never host views)."""

    def __init__(self, inner, result, finish=None, on_error=None, op=""):
        super().__init__()
        self._inner = list(inner)
        self._result = list(result)
        self._finish = finish
        self._on_error = on_error
        self._op = op
        self._lock = threading.Lock()
        self._done = False
        self._error = None
        self._future = None

    def _complete(self):
        """Waits for every gloo work, runs the finishing step once; raises the collective's error."""
        with self._lock:
            if not self._done:
                try:
                    for w in self._inner:
                        # A gloo work's future completes with the transfer (and its error); its wait()
                        # must not be called from that future's own callbacks, where resolve() runs.
                        f = _future(w)
                        if f is not None:
                            f.wait()
                        else:
                            w.wait()
                    if self._finish is not None:
                        self._finish()
                except Exception as err:  # noqa: BLE001 - turned into a DistBackendError naming the ranks
                    self._error = self._on_error(err) if self._on_error is not None else err
                self._done = True
                self._inner = []
        if self._error is not None:
            raise self._error

    def wait(self, timeout=None):
        self._complete()
        return True

    def is_completed(self):
        with self._lock:
            if self._done:
                return True
        return all(w.is_completed() for w in self._inner)

    def is_success(self):
        return self.is_completed() and self._error is None

    def exception(self):
        return self._error

    def result(self):
        self._complete()
        return self._result

    def source_rank(self):
        src = getattr(self, "_source_rank_value", None)
        if src is None:
            raise RuntimeError("source_rank() is only defined for recv from any source")
        return src

    def synchronize(self):
        self._complete()

    def get_future(self):
        if self._future is None:
            fut = Future(devices=[t.device for t in self._result if t.device.type != "cpu"] or None)
            inner = self._inner

            def resolve(_=None):
                try:
                    self._complete()
                except Exception as err:  # noqa: BLE001 - delivered through the future
                    fut.set_exception(err)
                else:
                    fut.set_result(self._result)

            pending = [w for w in inner if _future(w) is not None]
            if len(pending) == len(inner) and pending:
                # Resolve when the last gloo transfer finishes (on gloo's thread), not on wait().
                counter = [len(pending)]
                lock = threading.Lock()

                def one_done(_):
                    with lock:
                        counter[0] -= 1
                        last = counter[0] == 0
                    if last:
                        resolve()

                for w in pending:
                    _future(w).add_done_callback(one_done)
            else:
                resolve()
            self._future = fut
        return self._future

    def __repr__(self):
        return f"<bccl Work {self._op}>"


def _future(w):
    """The gloo work's future, or None for works without one (send/recv)."""
    try:
        return w.get_future()
    except RuntimeError:
        return None


class Done(Work):
    """A transfer that needed no communication (one rank, empty tensors)."""

    def __init__(self, result=(), op=""):
        super().__init__([], result, op=op)
