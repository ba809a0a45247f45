"""Starts a job of N rank processes the way torchrun's workers see it (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR/PORT; rank 0 hosts the store), each bounded by a timeout, and collects their output."""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "worker.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Rank:
    rank: int
    returncode: int
    out: str
    err: str
    seconds: float

    def check(self):
        assert self.returncode == 0, f"rank {self.rank} exited with {self.returncode}:\n{self.out}\n{self.err[-4000:]}"
        return self


def start(scenario, world=2, args=(), env=None):
    port = free_port()
    procs = []
    for r in range(world):
        e = dict(os.environ)
        e.update(RANK=str(r), WORLD_SIZE=str(world), LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(world),
                 MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        e.update(env or {})
        procs.append(subprocess.Popen([sys.executable, WORKER, scenario, *map(str, args)], env=e,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs, timeout=90, only=None):
    """Waits for the ranks (all, or the indices in `only`; the rest are killed); a Rank per process."""
    t0 = time.monotonic()
    results = []
    for r, p in enumerate(procs):
        if only is not None and r not in only:
            continue
        try:
            out, err = p.communicate(timeout=max(1.0, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err += f"\n[killed after {timeout} s]"
        results.append(Rank(r, p.returncode, out, err, time.monotonic() - t0))
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return results


def run(scenario, world=2, args=(), env=None, timeout=90):
    return finish(start(scenario, world, args, env), timeout)
