"""Chips as data. A Chip is one spec file (torch_biren/sim/chips/<NAME>.json, or a user's file) and
how the card is used: its memory placement mode and its SVI partition. Every number in a spec file
is {"value": ..., "label": "C"|"R"|"I", "source": "..."} (confirmed / reported / inferred); reports
list the inferred ones.

Choosing the chip
    TORCH_BIREN_CHIP=BR106 | /path/to/mine.json   the process default (BR166 when unset)
    TORCH_BIREN_MEMORY_MODE=UMA | NUMA             how the default card is used
    TORCH_BIREN_SVI=1 | 2 | 4
    set_chip("H100"), set_chip(path), set_chip(chip.partition(2)), use_chip(...) as a context
    on_chip_change(fn): fn(chip) runs after every set_chip (the runtime pushes timeline_params())

Memory placement (a card of `dies` dies, each owning 1/dies of the HBM stacks, joined by a die link
of bidirectional bandwidth L, die_link_Bps: BR166 896 GB/s, 448 GB/s each way)
    UMA   one device per card; pages are interleaved over all dies, so a share s of every kernel's
          memory traffic crosses the die link (die_link_share; by default what interleaving implies,
          (dies-1)/dies). Every die reads and writes the others' memory alike, so the crossing
          traffic splits evenly over the two directions, each carrying L/2:
              memory_ns = max(bytes / (hbm_peak * eff(bytes)), die_link_latency + bytes * s / L)
          The die link binds when L < s * hbm_peak * eff: on BR166 (s = 1/2, eff 0.91 for large
          transfers) below 746 GB/s, i.e. it does not bind at 896 GB/s but adds its latency.
    NUMA  one device per die: each sees its own die's memory, SPCs and HBM stacks (1/dies of the
          card, at the die's own bandwidth) and never crosses the die link with its own traffic. A
          copy between the dies of one card crosses it one way (L/2, plus its latency); copies to
          other cards use the card links, of which each die has its share (card_link_Bps / dies).
SVI partition(n) splits the card into n hardware-isolated instances, each a device with 1/n of the
memory, SPCs, peaks, L2 and card links; the n/dies instances of one die share its die-link
directions. Partitions and NUMA are both die-local; where the spec reports achieved bandwidth per
instance (instance_hbm_achieved_Bps, BR166 from HAMi's tests) a local instance's bandwidth is set so
that large transfers reach it; otherwise it is HBM peak / instances. Device i is on card
i // instances and die (i % instances) // (instances / dies).

Ranges: an inferred number may carry "range": [low, high] beside value, label and source, the
plausible span it could take (for efficiency tables and per-pass dicts, factors that scale every
efficiency). chip.at(field, "low" | "high") is the chip with that one number at an end (sensitivity).
"""

import contextlib
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import dtypes, gemm_kernels
from .. import _C
from .efficiency import check_table

CHIPS_DIR = Path(__file__).with_name("chips")
DEFAULT_CHIP = "BR166"
LABELS = ("C", "R", "I")
MODES = ("UMA", "NUMA")

# Fields every usable spec gives; a null value needs its source to say why.
_REQUIRED = (
    "dies", "memory_bytes", "hbm_peak_Bps", "mem_efficiency", "matrix_flops", "vector_flops",
    "fp64_vector_flops", "compute_units", "matrix_tile", "matrix_efficiency", "attention_efficiency",
    "l2_bytes", "clock_hz", "host_link_Bps", "card_links", "card_link_Bps", "die_link_Bps",
    "launch_ns", "host_issue_ns", "graph_launch_ns", "graph_kernel_gap_ns", "svi_partitions", "warp_size", "capability",
)  # fmt: skip
_NULLABLE = {"fp64_vector_flops", "clock_hz", "card_links", "card_link_Bps", "die_link_Bps"}
# collective_efficiency: the fraction of card-link bandwidth collectives reach (sim/collectives.py);
# collective_protocols: {simple_step_ns, ll_step_ns, ll_share}, NCCL-style protocol latencies there;
# network: the inter-server NIC preset per card. Files without them get A100's fit (collectives.py).
# die_link_share: the fraction of a UMA kernel's traffic crossing the die link ((dies-1)/dies when
# absent); die_link_latency_ns: the die link's latency (0 when absent).
# gemm_kernels: the BLAS's candidate kernel configurations (sim/gemm_kernels.py), else one of matrix_tile.
# memory_latency_ns: device memory's load latency, which a GEMM/attention block waits for its first
# k-tile (sim/costs.py; 0 when absent); l2_Bps: L2 bandwidth, which split-K partial sums move at
# (through device memory when absent); comm_units_share: the compute units an overlapped collective
# occupies, slowing the compute it hides behind (projection/project.py; 0 when absent);
# materialised_attention_efficiency: {fwd, bwd}, the fraction of the modelled time at which attention
# without a flash kernel (projection/attention.py) runs, as measured (1 when absent: the model as is).
_OPTIONAL = {"fp64_emulation_slowdown", "instance_hbm_achieved_Bps", "collective_efficiency", "collective_protocols",
             "network", "die_link_share", "die_link_latency_ns", "gemm_kernels", "memory_latency_ns", "l2_Bps",
             "comm_units_share", "materialised_attention_efficiency"}
# Optional numbers replace() may add to a spec without them (besides die_link_*).
_ADDABLE = {"memory_latency_ns", "l2_Bps", "comm_units_share", "materialised_attention_efficiency"}
# Tables and per-pass dicts whose range is a pair of factors scaling every efficiency in them.
SCALED = {"mem_efficiency", "matrix_efficiency", "attention_efficiency"}
# Efficiencies given per pass, {"fwd": x, "bwd": y}.
_PER_PASS = {"attention_efficiency", "materialised_attention_efficiency"}


class ChipSpecError(ValueError):
    """A spec file that cannot be used: missing fields, bad labels, or an unfilled template."""


@dataclass(frozen=True)
class Quantity:
    value: object
    label: str
    source: str
    range: tuple = None  # (low, high): the plausible span of an inferred number (module doc)


def _check_range(name, value, rng, where):
    if not isinstance(rng, (list, tuple)) or len(rng) != 2:
        raise ChipSpecError(f"{where}: '{name}' range must be [low, high], got {rng!r}")
    lo, hi = rng
    if name.split(".")[0] in SCALED:
        if not all(isinstance(x, (int, float)) and x > 0 for x in rng) or not lo <= 1 <= hi:
            raise ChipSpecError(f"{where}: '{name}' range scales its efficiencies: [low <= 1 <= high] factors, "
                                f"got {rng!r}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not all(isinstance(x, (int, float)) for x in rng) or not lo <= value <= hi:
            raise ChipSpecError(f"{where}: '{name}' range {rng!r} must hold its value {value!r} (low <= value <= high)")
    elif type(lo) is not type(value) or type(hi) is not type(value):
        raise ChipSpecError(f"{where}: '{name}' range ends must be of its value's kind, got {rng!r}")
    return (lo, hi)


def _quantity(name, raw, where):
    if not isinstance(raw, dict) or not {"value", "label", "source"} <= set(raw) <= {"value", "label", "source",
                                                                                      "range"}:
        raise ChipSpecError(f"{where}: '{name}' must be {{\"value\", \"label\", \"source\"}} (and optionally "
                            f"\"range\"), got {raw!r}")
    if raw["label"] not in LABELS:
        raise ChipSpecError(f"{where}: '{name}' has label {raw['label']!r}; use one of {', '.join(LABELS)}")
    if not raw["source"]:
        raise ChipSpecError(f"{where}: '{name}' needs a source")
    rng = raw.get("range")
    if rng is not None:
        rng = _check_range(name, raw["value"], rng, where)
    return Quantity(raw["value"], raw["label"], raw["source"], rng)


def _check_passes(value, where):
    """A per-pass efficiency: {"fwd": x, "bwd": y}, each in (0, 1]; raises ChipSpecError."""
    ok = isinstance(value, dict) and set(value) == {"fwd", "bwd"} and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in value.values())
    if not ok:
        raise ChipSpecError(f"{where}: must be {{\"fwd\": x, \"bwd\": y}} with each in (0, 1], got {value!r}")


def _parse(raw, where):
    """Spec JSON -> {field: Quantity}, with matrix_flops as {dtype: Quantity}; raises ChipSpecError."""
    if raw.get("template"):
        name, about = raw.get("name", "?"), raw.get("description", "")
        raise ChipSpecError(f"{where}: {name} is a template without numbers. {about}")
    for key in ("name", "description"):
        if not isinstance(raw.get(key), str):
            raise ChipSpecError(f"{where}: needs a '{key}' string")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ChipSpecError(f"{where}: missing {', '.join(missing)}")
    unknown = set(raw) - set(_REQUIRED) - _OPTIONAL - {"name", "description", "template"}
    if unknown:
        raise ChipSpecError(f"{where}: unknown fields {', '.join(sorted(unknown))}")
    spec = {"name": raw["name"], "description": raw["description"]}
    for key in [*_REQUIRED, *sorted(_OPTIONAL & set(raw))]:
        if key == "matrix_flops":
            spec[key] = {d: _quantity(f"matrix_flops.{d}", q, where) for d, q in raw[key].items()}
            if not any(q.value for q in spec[key].values()):
                raise ChipSpecError(f"{where}: matrix_flops has no values")
            continue
        q = _quantity(key, raw[key], where)
        if q.value is None and key not in _NULLABLE:
            raise ChipSpecError(f"{where}: '{key}' has no value ({q.source})")
        if key in ("mem_efficiency", "matrix_efficiency"):
            q = Quantity(check_table(q.value, f"{where}: {key}"), q.label, q.source, q.range)
        if key in _PER_PASS and q.value is not None:
            _check_passes(q.value, f"{where}: {key}")
        if key == "gemm_kernels":
            try:
                gemm_kernels.parse(q.value)
            except ValueError as err:
                raise ChipSpecError(f"{where}: {err}") from None
        spec[key] = q
    if spec["fp64_vector_flops"].value is None and "fp64_emulation_slowdown" not in spec:
        raise ChipSpecError(f"{where}: without fp64_vector_flops the spec needs fp64_emulation_slowdown")
    if 1 not in spec["svi_partitions"].value:
        raise ChipSpecError(f"{where}: svi_partitions must include 1 (the whole card)")
    return spec


def _find(name_or_path):
    p = Path(name_or_path).expanduser()
    if p.suffix == ".json" or os.sep in str(name_or_path):
        if not p.is_file():
            raise FileNotFoundError(f"chip spec file {str(p)!r} not found")
        return p
    for f in CHIPS_DIR.glob("*.json"):
        if f.stem.lower() == str(name_or_path).lower():
            return f
    known = ", ".join(available_chips())
    raise ValueError(f"unknown chip {name_or_path!r}; known: {known} (or a path to a .json spec)")


def available_chips():
    """Names of the bundled spec files (BR110 is a template to fill in, not a usable chip)."""
    return sorted(f.stem for f in CHIPS_DIR.glob("*.json"))


def load_chip(name_or_path=DEFAULT_CHIP):
    """A bundled chip by name (case-insensitive) or a spec file by path; whole card, UMA."""
    path = _find(name_or_path)
    with open(path) as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as err:
            raise ChipSpecError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
    return Chip(_parse(raw, str(path)), path=str(path))


@dataclass(frozen=True)
class Chip:
    spec: dict = field(repr=False, hash=False)
    mode: str = "UMA"
    svi: int = 1
    path: str = field(default="", compare=False)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"memory mode must be UMA or NUMA, got {self.mode!r}")
        if self.mode == "NUMA" and self.dies < 2:
            raise ValueError(f"{self.name} has one die; NUMA placement needs at least two")
        if self.svi not in self.q("svi_partitions").value:
            raise ValueError(f"{self.name} supports SVI partitions {self.q('svi_partitions').value}, not {self.svi}")
        if self.mode == "NUMA" and self.svi > 1:
            raise ValueError("SVI instances are already die-local; use NUMA or partition(n), not both")

    # Provenance -----------------------------------------------------------------------------------

    def q(self, field_name):
        """The Quantity (value, label, source) of a spec field; 'matrix_flops.bf16' for one peak."""
        if field_name.startswith("matrix_flops."):
            return self.spec["matrix_flops"][field_name.split(".", 1)[1]]
        return self.spec[field_name]

    def quantities(self):
        """Every spec number as (field, Quantity), matrix peaks as matrix_flops.<dtype>."""
        out = []
        for k, v in self.spec.items():
            if k == "matrix_flops":
                out += [(f"matrix_flops.{d}", q) for d, q in v.items()]
            elif isinstance(v, Quantity):
                out.append((k, v))
        return out

    def inferred(self):
        """Fields whose numbers are inferred (label I) rather than confirmed or reported."""
        return [k for k, q in self.quantities() if q.label == "I" and q.value is not None]

    def ranged(self):
        """(field, Quantity) of every number with a low-high range."""
        return [(k, q) for k, q in self.quantities() if q.range is not None]

    def at(self, field_name, end):
        """This chip with one ranged number at the low or high end of its range (others unchanged):
        what a sensitivity study varies one at a time."""
        q = self.q(field_name)
        if q.range is None:
            raise KeyError(f"{field_name!r} of {self.name} has no range")
        if end not in ("low", "high"):
            raise ValueError(f"end must be 'low' or 'high', got {end!r}")
        x = q.range[0 if end == "low" else 1]
        base = field_name.split(".")[0]
        if base in ("mem_efficiency", "matrix_efficiency"):
            x = [[size, min(1.0, eff * x)] for size, eff in q.value]
        elif base == "attention_efficiency":
            x = {k: min(1.0, v * x) for k, v in q.value.items()}
        if field_name.startswith("matrix_flops."):
            return self.replace(matrix_flops={field_name.split(".", 1)[1]: x})
        return self.replace(**{field_name: x})

    # How the card is used ---------------------------------------------------------------------------

    def with_mode(self, mode):
        """UMA (one device, memory interleaved over the dies) or NUMA (one device per die)."""
        return Chip(self.spec, mode=mode.upper(), svi=self.svi, path=self.path)

    def partition(self, n):
        """The card split into n SVI instances (1 undoes it)."""
        return Chip(self.spec, mode=self.mode, svi=int(n), path=self.path)

    def replace(self, **values):
        """A copy with some numbers overridden (label I, source 'user override'): replace(
        hbm_peak_Bps=2e12, matrix_flops={"bf16": 8e14}). Spec files are the durable way."""
        spec = dict(self.spec)
        for k, v in values.items():
            if k == "matrix_flops":
                spec[k] = {**spec[k], **{d: Quantity(x, "I", "user override") for d, x in v.items()}}
                continue
            if k in _PER_PASS:
                _check_passes(v, k)
            if k in _OPTIONAL and k not in spec and (k.startswith("die_link_") or k in _ADDABLE):
                spec[k] = Quantity(v, "I", "user override")
                continue
            if k not in spec or not isinstance(spec[k], Quantity):
                raise KeyError(f"{k!r} is not a spec number of {self.name}")
            if k in ("mem_efficiency", "matrix_efficiency"):
                v = check_table(v, k)
            spec[k] = Quantity(v, "I", "user override")
        return Chip(spec, mode=self.mode, svi=self.svi, path=self.path)

    @property
    def instances(self):
        """Devices this card shows: SVI instances, one per die under NUMA, else 1."""
        if self.svi > 1:
            return self.svi
        return self.dies if self.mode == "NUMA" else 1

    # Numbers per device (after mode and partition) --------------------------------------------------

    def _v(self, k):
        return self.spec[k].value

    @property
    def name(self):
        return self.spec["name"]

    @property
    def description(self):
        return self.spec["description"]

    @property
    def dies(self):
        return int(self._v("dies"))

    @property
    def memory_bytes(self):
        return int(self._v("memory_bytes")) // self.instances

    @property
    def hbm_peak_Bps(self):
        return self._v("hbm_peak_Bps") / self.instances

    @property
    def mem_bw_Bps(self):
        """HBM bandwidth a kernel on one device sees before the efficiency table (see module doc; in
        UMA the die link is a separate limit, die_link_Bps and die_share)."""
        n = self.instances
        if n == 1:
            return self._v("hbm_peak_Bps")
        achieved = self.spec.get("instance_hbm_achieved_Bps")
        if achieved and str(n) in achieved.value:
            return achieved.value[str(n)] / self.mem_eff_table[0][1]
        return self._v("hbm_peak_Bps") / n

    @property
    def die_devices(self):
        """Devices per die: 0 when one device spans the dies (UMA on a multi-die card)."""
        n = self.instances
        if n == 1 and self.dies > 1:
            return 0
        return max(1, n // self.dies)

    @property
    def die_link_Bps(self):
        """Bidirectional die-link bandwidth this device has: the whole link in UMA and NUMA, a 1/k
        share when k SVI instances share a die; 0 on one-die chips."""
        link = self._v("die_link_Bps")
        if self.dies < 2 or not link:
            return 0.0
        return float(link) / max(1, self.die_devices)

    @property
    def die_share(self):
        """Fraction of a kernel's memory traffic that crosses the die link: UMA's interleaving
        ((dies-1)/dies unless the spec's die_link_share says otherwise); 0 for die-local devices."""
        if self.dies < 2 or self.die_devices:
            return 0.0
        q = self.spec.get("die_link_share")
        return float(q.value) if q is not None else (self.dies - 1) / self.dies

    @property
    def die_latency_ns(self):
        q = self.spec.get("die_link_latency_ns")
        return float(q.value) if q is not None else 0.0

    def _optional(self, k):
        """An optional number's value, 0 when the spec has none (or leaves it null)."""
        q = self.spec.get(k)
        return float(q.value) if q is not None and q.value is not None else 0.0

    @property
    def memory_latency_ns(self):
        """Load latency of device memory: what a pipelined GEMM block waits for its first k-tile."""
        return self._optional("memory_latency_ns")

    @property
    def mem_eff_table(self):
        return self._v("mem_efficiency")

    def mem_efficiency(self, nbytes):
        return self.roofline.interpolate_memory(nbytes)

    def matrix_flops(self, dtype):
        """Dense matrix-engine peak for a dtype (FLOP/s); FP64 without hardware runs emulated on the
        vector units."""
        k = dtypes.key(dtype)
        q = self.spec["matrix_flops"].get(k)
        if q is not None and q.value:
            return q.value / self.instances
        if k == "fp64":
            return self.vector_flops / self.fp64_slowdown
        have = [d for d, q in self.spec["matrix_flops"].items() if q.value]
        raise ValueError(f"{self.name} has no {k} matrix peak (has {', '.join(have)})")

    @property
    def matrix_dtypes(self):
        return [d for d, q in self.spec["matrix_flops"].items() if q.value]

    @property
    def vector_flops(self):
        return self._v("vector_flops") / self.instances

    @property
    def fp64_slowdown(self):
        """Time of an FP64 vector FLOP over an FP32 one: hardware ratio, or the emulation parameter."""
        fp64 = self._v("fp64_vector_flops")
        if fp64:
            return self._v("vector_flops") / fp64
        return float(self._v("fp64_emulation_slowdown"))

    @property
    def compute_units(self):
        return max(1, int(self._v("compute_units")) // self.instances)

    @property
    def matrix_tile(self):
        return tuple(int(x) for x in self._v("matrix_tile"))

    @functools.cached_property
    def gemm_kernels(self):
        """The GEMM kernel candidates the model chooses from (sim/gemm_kernels.py)."""
        q = self.spec.get("gemm_kernels")
        return gemm_kernels.parse(q.value) if q else gemm_kernels.default(self.matrix_tile)

    @property
    def matrix_eff_table(self):
        return self._v("matrix_efficiency")

    def matrix_efficiency(self, flops):
        return self.roofline.interpolate_matrix(flops)

    def attention_efficiency(self, backward=False):
        """Fused attention's efficiency relative to a GEMM of the same work."""
        return float(self._v("attention_efficiency")["bwd" if backward else "fwd"])

    def materialised_attention_efficiency(self, backward=False):
        """The measured fraction of the modelled time for attention without a flash kernel (its
        batched GEMMs, softmax and dropout: projection/attention.py); 1 when the spec has none."""
        q = self.spec.get("materialised_attention_efficiency")
        return float(q.value["bwd" if backward else "fwd"]) if q is not None and q.value is not None else 1.0

    @property
    def l2_bytes(self):
        return int(self._v("l2_bytes")) // self.instances

    @property
    def comm_units_share(self):
        """The share of compute units an overlapped collective's kernels occupy; 0 when the spec has none."""
        return self._optional("comm_units_share")

    @property
    def l2_Bps(self):
        """L2 bandwidth of this device (an instance's share); 0 when the spec has none."""
        return self._optional("l2_Bps") / self.instances

    @property
    def clock_hz(self):
        return self._v("clock_hz")

    @property
    def host_link_Bps(self):
        """Host link, each way; SVI instances share it, so a lone transfer gets all of it."""
        return float(self._v("host_link_Bps"))

    @property
    def card_links(self):
        return self._v("card_links") or 0

    @property
    def card_link_Bps(self):
        """Card-to-card bandwidth each way over this device's links (a die or SVI instance has its
        1/instances share); over the host link where none exist."""
        per_link = self._v("card_link_Bps")
        if not self.card_links or not per_link:
            return self.host_link_Bps
        return self.card_links * per_link / self.instances

    @property
    def launch_ns(self):
        return float(self._v("launch_ns"))

    @property
    def host_issue_ns(self):
        return float(self._v("host_issue_ns"))

    @property
    def graph_launch_ns(self):
        """Host time to launch one captured graph (torch.biren.graph replay)."""
        return float(self._v("graph_launch_ns"))

    @property
    def graph_kernel_gap_ns(self):
        """Device-side gap between the kernels of a replayed graph, in place of each one's launch_ns."""
        return float(self._v("graph_kernel_gap_ns"))

    @property
    def warp_size(self):
        return int(self._v("warp_size"))

    @property
    def capability(self):
        return tuple(int(x) for x in self._v("capability"))

    @functools.cached_property
    def roofline(self):
        """This chip's parameters in the C++ roofline (csrc/sim/roofline.h), the one implementation of
        the efficiency tables, the generic roofline and link costs (sim/costs.py calls it)."""
        return _C._SimParams(self.timeline_params())

    def timeline_params(self):
        """What the C++ roofline and timeline need (csrc/sim/roofline.h Params)."""
        return {
            "launch_ns": self.launch_ns,
            "host_issue_ns": self.host_issue_ns,
            "mem_bw_Bps": self.mem_bw_Bps,
            "vector_flops": self.vector_flops,
            "mem_eff_table": [list(row) for row in self.mem_eff_table],
            "matrix_eff_table": [list(row) for row in self.matrix_eff_table],
            "host_link_Bps": self.host_link_Bps,
            "card_link_Bps": self.card_link_Bps,
            "die_link_Bps": self.die_link_Bps,
            "die_share": self.die_share,
            "die_latency_ns": self.die_latency_ns,
            "card_devices": self.instances,
            "die_devices": self.die_devices,
            "fp64_slowdown": self.fp64_slowdown,
            "graph_launch_ns": self.graph_launch_ns,
            "graph_kernel_gap_ns": self.graph_kernel_gap_ns,
        }

    def label(self):
        """Short name with mode and partition, for reports: 'BR166 (UMA)', 'BR166 (SVI 1/4)'."""
        if self.svi > 1:
            return f"{self.name} (SVI 1/{self.svi})"
        return f"{self.name} ({self.mode})" if self.dies > 1 else self.name


# The process's chip ---------------------------------------------------------------------------------

_current = None
_listeners = []


@contextlib.contextmanager
def _named(var):
    """An error in what environment variable `var` selects names the variable and its value."""
    try:
        yield
    except (OSError, ValueError) as err:
        raise ChipSpecError(f"{var}={os.environ[var]!r}: {err}") from None


def _from_env():
    name = os.environ.get("TORCH_BIREN_CHIP")
    with _named("TORCH_BIREN_CHIP") if name else contextlib.nullcontext():
        chip = load_chip(name or DEFAULT_CHIP)
    mode = os.environ.get("TORCH_BIREN_MEMORY_MODE")
    if mode:
        with _named("TORCH_BIREN_MEMORY_MODE"):
            chip = chip.with_mode(mode)
    svi = os.environ.get("TORCH_BIREN_SVI")
    if svi:
        with _named("TORCH_BIREN_SVI"):
            chip = chip.partition(int(svi))
    return chip


def current_chip():
    """The chip every cost is charged on: the last set_chip, else the environment's default."""
    global _current
    if _current is None:
        _current = _from_env()
    return _current


def set_chip(chip=None):
    """Select the chip by name, spec path or Chip (None: the environment's default again) and tell
    the listeners. If a listener refuses it, the previous chip is restored and the error raised."""
    global _current
    new = _from_env() if chip is None else chip if isinstance(chip, Chip) else load_chip(chip)
    old = _current
    _current = new
    try:
        for fn in list(_listeners):
            fn(new)
    except Exception:
        _current = old
        if old is not None:
            for fn in list(_listeners):
                fn(old)
        raise
    return new


def on_chip_change(fn):
    """Call fn(chip) after every set_chip; returns fn, so it can decorate."""
    _listeners.append(fn)
    return fn


def remove_chip_listener(fn):
    _listeners.remove(fn)


@contextlib.contextmanager
def use_chip(chip):
    """Charge on `chip` inside the block, then restore the previous chip."""
    old = current_chip()
    try:
        yield set_chip(chip)
    finally:
        set_chip(old)

