"""What `project` prints for a planner (issue 13, item 8): what would make a step fit, decode's
bandwidth, and no library warnings in the output."""

import math
import warnings

from torch_biren import cli
from torch_biren import projection as P
from torch_biren.projection import layers, models


def test_too_few_cards_names_the_least_that_could_hold_the_model_states():
    r = P.project("qwen2.5-72b", cards=8, tp=8)
    assert not r.fits
    states = models.param_counts("Qwen2.5-72B")["total"] * (2 + 4 + 12)  # bf16 weights, fp32 grads, Adam
    least = math.ceil(states / r.capacity)
    assert least > 8
    assert f"at least {least} cards of {r.capacity / 2**30:,.1f} GiB even fully sharded" in r.suggestions[-1]
    # Enough cards for the states: the suggestion is about the plan, not a count.
    fits_count = P.project("qwen2.5-72b", cards=32, tp=8, batch=32, seq=4096, suggest=True)
    assert all("at least" not in s for s in fits_count.suggestions)


def test_inference_that_cannot_hold_its_weights_does_not_suggest_a_smaller_batch():
    r = P.project("deepseek-v3", cards=8, tp=8, mode="prefill", batch=1, seq=1024)
    assert not r.fits and r.memory["weights"] > r.capacity
    assert "smaller batch" not in r.suggestions[0] and "--ep" in r.suggestions[0]
    kv_bound = P.project("qwen2.5-7b", mode="prefill", batch=64, seq=8192)
    assert not kv_bound.fits and kv_bound.suggestions[0].startswith("a smaller batch")


def test_decode_bandwidth_is_weights_and_kv_cache_per_token_step():
    r = P.project("qwen2.5-7b", mode="decode", batch=8, seq=2048)
    d = r.as_dict()
    read = r.memory["weights"] + r.memory["KV cache"]
    assert d["decode_GBps"] == read / r.step_ns
    assert d["hbm_peak_GBps"] == r.chip.hbm_peak_Bps / 1e9
    assert f"({100 * d['decode_GBps'] / d['hbm_peak_GBps']:.0f}% of peak" in r.report()


def test_no_library_warning_reaches_the_output(capsys):
    for cache in (layers._TRACES, layers._CACHE, layers._PRICES):
        cache.clear()  # trace afresh: HF's model code runs again
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for mode in ("train", "prefill", "decode"):
            args = ["project", "--model", "tiny-qwen3-moe", "--mode", mode, "--batch", "2", "--seq", "16"]
            assert cli.main(args) == 0
    assert [str(w.message) for w in caught] == []
    assert capsys.readouterr().err == ""


def test_the_shell_command_exits_with_its_status_and_whole_output(tmp_path):
    """`python -m torch_biren project` skips the interpreter's teardown (cli.exit): its output to a
    file is complete and its exit status is the command's."""
    import subprocess
    import sys

    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        r = subprocess.run([sys.executable, "-m", "torch_biren", "project", "--model", "tiny-llama", "--batch", "2",
                            "--seq", "16", "--json"], stdout=f, stderr=subprocess.PIPE, text=True, timeout=300)
    assert r.returncode == 0 and r.stderr == ""
    import json

    assert json.loads(out.read_text())["model"] == "tiny-llama"
    r = subprocess.run([sys.executable, "-m", "torch_biren", "project", "--model", "gpt-5"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith("error: unknown model 'gpt-5'")


def test_a_fit_says_what_is_spare_and_what_the_count_leaves_out():
    r = P.project("qwen2.5-7b", cards=8, mode="decode", batch=8, seq=2048, tp=4, dp=2)
    spare = (r.capacity - sum(r.memory.values())) / 2**30
    assert r.fits and f"of {r.capacity / 2**30:,.1f}: fits, {spare:,.1f} spare" in r.report()
    (line,) = [a for a in r.assumptions if a.startswith("memory per card against")]
    assert "(the device's reported total)" in line  # BR166: HAMi's reported 65,024 MiB (label R)
    assert "not counted: the driver's context" in line and "communicator buffers, allocator fragmentation" in line
    h100 = P.project("qwen2.5-7b", cards=8, mode="decode", batch=8, seq=2048, tp=4, dp=2, chip="H100")
    assert any("(the datasheet's capacity)" in a for a in h100.assumptions)  # H100: 80 GB from the datasheet (C)
