"""The GEMM kernel configurations a chip's BLAS chooses from, as its spec file lists them.

A spec's optional `gemm_kernels` field is a list of families, each

    {"block": [bm, bn, bk], "split_k": [1, 2, 4, ...], "stream_k": true|false}

one thread-block (CUDA) or SPC (BR) output block of bm x bn, its main loop stepping k by bk; each
split-K factor is one data-parallel candidate (split_k 1: none), and stream_k adds one stream-K
candidate (Osama et al., PPoPP 2023) of that block. One convention for every chip; a spec without
the field gets one data-parallel candidate of its matrix_tile (bk = the tile's first side).

Kernel(...).name is what the profiler shows: '128x256x64', '64x64x64 split-K 4', '128x128x64 stream-K'.
"""

from typing import NamedTuple


class Kernel(NamedTuple):
    bm: int
    bn: int
    bk: int
    split_k: int = 1
    stream_k: bool = False

    @property
    def name(self):
        base = f"{self.bm}x{self.bn}x{self.bk}"
        if self.stream_k:
            return f"{base} stream-K"
        return f"{base} split-K {self.split_k}" if self.split_k > 1 else base


def parse(value, where="gemm_kernels"):
    """Spec value -> tuple of Kernel candidates; raises ValueError naming the bad entry."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: must be a non-empty list of {{block, split_k, stream_k}}, got {value!r}")
    out = []
    for i, fam in enumerate(value):
        if not isinstance(fam, dict) or not set(fam) <= {"block", "split_k", "stream_k"} or "block" not in fam:
            raise ValueError(f"{where}[{i}]: needs 'block' [bm, bn, bk] and optional 'split_k', 'stream_k', got {fam!r}")
        block = fam["block"]
        if not (isinstance(block, list) and len(block) == 3 and all(isinstance(x, int) and x > 0 for x in block)):
            raise ValueError(f"{where}[{i}]: block must be three positive integers [bm, bn, bk], got {block!r}")
        splits = fam.get("split_k", [1])
        if not (isinstance(splits, list) and splits and all(isinstance(s, int) and s >= 1 for s in splits)):
            raise ValueError(f"{where}[{i}]: split_k must be a list of integers >= 1, got {splits!r}")
        out += [Kernel(*block, split_k=s) for s in splits]
        if fam.get("stream_k", False):
            out.append(Kernel(*block, stream_k=True))
    return tuple(dict.fromkeys(out))


def default(matrix_tile):
    """One data-parallel candidate of the chip's matrix tile, for spec files without gemm_kernels."""
    tm, tn = (int(x) for x in matrix_tile)
    return (Kernel(tm, tn, tm),)
