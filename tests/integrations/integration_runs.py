"""Runs for the integration tests: every library run happens in a fresh interpreter (the adapters and
the CUDA migration patch libraries for the whole process), started at once so that two runs share the
two cores, each bounded by a timeout."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SELECTORS = ("ACCELERATE_TORCH_DEVICE", "DS_ACCELERATOR", "TORCH_BIREN_MIGRATE_CUDA", "TORCH_BIREN_MIGRATE_QUIET",
             "BIREN_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_PORT",
             "MASTER_ADDR", "TORCH_BIREN_KERNELS", "TORCH_BIREN_FALLBACK", "TRANSFORMERS_TEST_DEVICE_SPEC")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in SELECTORS and not k.startswith("ACCELERATE_")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    def __init__(self, argv, env, cwd, timeout):
        self.argv, self.timeout = argv, timeout
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self):
        try:
            out, err = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"timed out after {self.timeout}s: {' '.join(self.argv)}\n{out[-3000:]}\n{err[-3000:]}")
        self.out, self.err = out, err
        assert self.proc.returncode == 0, f"{' '.join(self.argv)} failed:\n{out[-3000:]}\n{err[-5000:]}"
        return self

    def results(self):
        return [json.loads(line[len("RESULT "):]) for line in self.out.splitlines() if line.startswith("RESULT ")]

    def result(self):
        found = self.finish().results()
        assert len(found) == 1, self.out[-3000:]
        return found[0]


def starter(tmp_path):
    """start(script or argv, *args, env={...}, timeout=s) -> Run; scripts are relative to this folder."""

    def _start(script, *args, env=None, timeout=240):
        argv = [sys.executable, str(HERE / script), *map(str, args)] if isinstance(script, str) else [*script, *args]
        return Run(argv, clean_env(**(env or {})), tmp_path, timeout)

    return _start
