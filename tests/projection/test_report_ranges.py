"""The ranges of a projection: step time, tokens/s and MFU from the chip's inferred numbers' ranges
(projection/ranges.py), re-priced from one trace, printed with the value and in the JSON."""

import dataclasses
import json
import math
import re

import pytest

from torch_biren import cli
from torch_biren import projection as P
from torch_biren.projection import layers, ranges
from torch_biren.sim.chip import load_chip

TINY = dict(cards=1, mode="train", batch=2, seq=16)


def _clear():
    for cache in (layers._TRACES, layers._CACHE, layers._PRICES):
        cache.clear()


def _widened(chip, field, lo, hi):
    q = chip.spec[field]
    return dataclasses.replace(chip, spec={**chip.spec, field: dataclasses.replace(q, range=(lo, hi))})


def test_combine_adds_the_one_at_a_time_changes_in_quadrature():
    lo, hi = ranges._combine(10.0, [(8.0, 12.0), (9.0, 10.5), (10.0, 10.0)])
    assert lo == pytest.approx(10 - math.sqrt(2**2 + 1**2))
    assert hi == pytest.approx(10 + math.sqrt(2**2 + 0.5**2))
    assert ranges._combine(3.0, [(3.0, 3.0)]) == (3.0, 3.0)


def test_the_range_brackets_the_value_and_names_three_numbers():
    r = P.project("tiny-llama", ranges=True, **TINY)
    rg = r.ranges
    for m in ("step_s", "tokens_per_s", "mfu"):
        assert rg.low[m] <= rg.value[m] <= rg.high[m]
        assert rg.low[m] < rg.high[m]
    assert rg.value["step_s"] == r.step_ns / 1e9
    # Every number at its worse (better) end at once is at least as slow (fast) as any one number's end.
    ends = [e["step_s"] for row in rg.study.rows for e in (row.low, row.high)]
    assert rg.worst["step_s"] >= max(ends) > rg.value["step_s"] > min(ends) >= rg.best["step_s"]
    top = rg.top(3)
    assert len(top) == 3 and top[0] == "host_issue_ns"  # a tiny model is bound by host issue
    assert rg.swing(top[0]) >= rg.swing(top[1]) >= rg.swing(top[2]) > 0


def test_the_range_widens_with_a_ranged_number_s_range():
    chip = load_chip("BR166")
    narrow = P.project("tiny-llama", chip=chip, ranges=True, **TINY).ranges
    wide = P.project("tiny-llama", chip=_widened(chip, "host_issue_ns", 5000, 60000), ranges=True, **TINY).ranges
    assert wide.value == narrow.value
    assert wide.low["step_s"] < narrow.low["step_s"] and wide.high["step_s"] > narrow.high["step_s"]
    assert wide.low["tokens_per_s"] < narrow.low["tokens_per_s"]


def test_ranges_re_price_one_trace_and_match_a_fresh_projection_at_each_end(monkeypatch):
    _clear()
    calls = []
    run = layers._run
    monkeypatch.setattr(layers, "_run", lambda *a: calls.append(a) or run(*a))
    r = P.project("tiny-qwen2", ranges=True, **TINY)
    assert len(calls) == 2  # one and two decoder layers, traced once for all the range ends
    # No ranged number changes the trace (which kernels run at which shapes): every end, traced afresh
    # on its own chip, gives the re-priced result to the bit.
    chip = load_chip("BR166")
    for row in r.ranges.study.rows:
        for end in ("low", "high"):
            _clear()
            fresh = P.project("tiny-qwen2", chip=chip.at(row.field, end), **TINY)
            assert getattr(row, end)["step_s"] == fresh.step_ns / 1e9, (row.field, end)


def test_the_cli_prints_value_range_and_sensitive_numbers_and_json_carries_them(capsys):
    args = ["project", "--model", "tiny-llama", "--batch", "2", "--seq", "16"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.strip().startswith("step time"))
    assert re.fullmatch(r"  step time \S+ \S+ \(\S+ \S+ to \S+ \S+\)   tokens/s [\d,]+ \([\d,]+ to [\d,]+\)   "
                        r"MFU [\d.]+% \([\d.]+% to [\d.]+%\)   exposed communication .*", line), line
    assert "ranges (in brackets):" in out and "added in quadrature" in out
    sensitive = out.split("most sensitive to: ")[1].splitlines()[0].split("; ")
    lo, hi = load_chip("BR166").q("host_issue_ns").range
    assert len(sensitive) == 3 and sensitive[0].startswith(f"host_issue_ns {lo} .. {hi}: ")
    assert "every number at its worse end at once" in out
    assert cli.main(args + ["--no-ranges"]) == 0
    assert "ranges" not in capsys.readouterr().out
    assert cli.main(args + ["--json"]) == 0
    d = json.loads(capsys.readouterr().out)["ranges"]
    assert d["low"]["step_s"] <= d["high"]["step_s"] and len(d["most_sensitive_to"]) == 3
    assert d["numbers"]["host_issue_ns"]["range"] == [lo, hi]


def test_decode_ranges_its_achieved_memory_bandwidth(capsys):
    assert cli.main(["project", "--model", "tiny-llama", "--mode", "decode", "--batch", "2", "--seq", "16"]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if "token step time" in s)
    assert re.search(r"HBM [\d,]+ GB/s \([\d,]+ to [\d,]+\) achieved \(\d+% of peak", line), line
    assert "MFU" not in line


def test_the_user_guide_shows_the_ranges_block_as_the_cli_prints_it(capsys):
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "user-guide.md").read_text(encoding="utf-8")
    block = guide.split("**Ranges.**")[1].split("```")[1].strip().splitlines()
    assert cli.main(["project", "--model", "tiny-llama", "--batch", "2", "--seq", "16"]) == 0
    out = capsys.readouterr().out.splitlines()
    start = next(i for i, s in enumerate(out) if s.strip().startswith("step time"))

    def shape(line):  # the words before the first number or colon (numbers and names differ by model)
        return re.match(r"[^\d:]*", line.strip()).group()

    assert [shape(s) for s in block] == [shape(s) for s in out[start:start + len(block)]]


def test_a_moe_projection_re_priced_at_a_range_end_matches_a_fresh_one():
    kw = dict(cards=16, mode="train", batch=16, seq=1024, tp=2, ep=8)
    chip = load_chip("BR166")
    base = P.project("deepseek-v2-lite", chip=chip, **kw)  # traced, priced on the default chip
    for field, end in (("matrix_efficiency", "low"), ("card_link_Bps", "low"), ("compute_units", "low")):
        re_priced = P.project("deepseek-v2-lite", chip=chip.at(field, end), **kw)
        _clear()
        fresh = P.project("deepseek-v2-lite", chip=chip.at(field, end), **kw)
        assert re_priced.step_ns == fresh.step_ns != base.step_ns, field
        assert re_priced.memory == fresh.memory
