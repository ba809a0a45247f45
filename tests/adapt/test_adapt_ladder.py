"""The ladder, reduced (2 training steps, 16 tokens), for every zoo model in fp32 and bf16, and
the classification of its failures."""

import pytest
import torch

import torch_biren
from torch_biren import _C
from torch_biren.adapt import ladder, report, suite, zoo

SMALL = dict(steps=2, batch=2, seq=16, gen_tokens=4)


@pytest.fixture(scope="module", autouse=True)
def quiet_transformers():
    import transformers

    transformers.logging.set_verbosity_error()


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("name", zoo.names())
def test_reduced_ladder_passes(name, dtype):
    res = ladder.run(ladder.Options(name, dtype=dtype, **SMALL))
    failed = [f"{r['id']} {r['kind']}: {r['detail']}" for r in res["rungs"] if r["status"] != "pass"]
    assert not failed, failed
    assert res["ok"] and [r["id"] for r in res["rungs"]] == list(ladder.RUNGS)
    assert len(res["curves"]["cpu"]) == len(res["curves"]["biren"]) == 2
    perf = res["perf"]
    assert perf["step_ns"] > 0 and 0 < perf["mfu"] < 1 and perf["peak_memory_bytes"] > 0
    kinds = res["coverage"]["by_kind"]
    assert kinds["triton"] > 0 and kinds["copy"] > 0
    # GEMM, attention and norm layers run on device kernels (with the model adaptation applied).
    assert report.layer_fallbacks(res) == {"GEMM": 0, "attention": 0, "norm": 0}, res["coverage"]["fallback_by_family"]


class _Perturbed(ladder.Ladder):
    """The device model's output layer is 1% off from L1 on: a precision failure."""

    def l1(self):
        with torch.no_grad():
            self.dev.lm_head.weight.mul_(1.01)
        return super().l1()


def test_precision_failure_is_classified_and_the_ladder_goes_on():
    res = _Perturbed(ladder.Options("llama", **SMALL)).run()
    status = {r["id"]: (r["status"], r["kind"]) for r in res["rungs"]}
    assert status["L1"] == ("fail", "precision") and status["L2"] == ("fail", "precision")
    assert status["L3"] == ("pass", None)  # L3 restarts from the initial weights, L4 from CPU's
    assert not res["ok"]


class _NaN(ladder.Ladder):
    """A NaN in one device weight from L2 on: NaN compares false, so it must not slip through."""

    def l2(self):
        with torch.no_grad():
            self.dev.model.norm.weight[0] = float("nan")
        return super().l2()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN inside the interpreted kernels
def test_nan_on_the_device_fails_precision():
    res = _NaN(ladder.Options("llama", **SMALL)).run()
    l2 = res["rungs"][2]
    assert (l2["status"], l2["kind"]) == ("fail", "precision")
    assert l2["metrics"]["grad_worst_err"] == float("inf")


def test_missing_device_kernel_is_op_unsupported_and_stops_the_ladder():
    before = _C._fallback_policy()
    torch_biren.set_fallback_policy("error")
    try:
        res = ladder.run(ladder.Options("qwen2", **SMALL))
    finally:
        torch_biren.set_fallback_policy(before)
    status = [(r["id"], r["status"], r["kind"]) for r in res["rungs"]]
    assert status[:2] == [("L0", "pass", None), ("L1", "fail", "op unsupported")]
    assert all(s == "not reached" for _, s, _ in status[2:])
    assert "has no device kernel" in res["rungs"][1]["detail"]


def test_classify():
    assert ladder.classify(NotImplementedError("x"), "biren") == "op unsupported"
    err = RuntimeError("Could not run 'aten::foo' with arguments from the 'PrivateUse1' backend.")
    assert ladder.classify(err, "biren") == "op unsupported"
    assert ladder.classify(RuntimeError("Expected all tensors to be on the same device"), "biren") == "feature unsupported"
    assert ladder.classify(torch.OutOfMemoryError("biren out of memory"), "biren") == "out of memory"
    assert ladder.classify(NotImplementedError("x"), "cpu") == "reference failed"


def test_crash_in_a_subprocess_is_reported_with_what_ran_before(monkeypatch):
    monkeypatch.setenv("TORCH_BIREN_ADAPT_FAULT", "L2")
    (res,) = suite.run_suite(["qwen3"], ["fp32"], progress=False, **SMALL)
    status = [(r["id"], r["status"], r["kind"]) for r in res["rungs"]]
    assert status == [("L0", "pass", None), ("L1", "pass", None), ("L2", "fail", "crash"),
                      ("L3", "not reached", None), ("L4", "not reached", None)], status
    assert "signal 6" in res["crashed"] and not res["ok"]


class _ScaledDecodeLogits(ladder.Ladder):
    """The device's output layer 0.1% off in generation only: argmax, so every greedy token, is
    unchanged, yet the logits are wrong; only the logits at each generated position can see it."""

    def l4(self):
        self.dev.lm_head.register_forward_hook(lambda module, args, out: out * 1.001)
        return super().l4()


def test_generation_with_wrong_logits_fails_though_its_tokens_match():
    res = _ScaledDecodeLogits(ladder.Options("llama", **SMALL)).run()
    l4 = res["rungs"][4]
    assert (l4["status"], l4["kind"]) == ("fail", "precision"), l4["detail"]
    assert l4["metrics"]["identical"] and not l4["metrics"]["gen_logits_ok"]
    assert l4["metrics"]["gen_logits_positions"] == SMALL["gen_tokens"]
    assert "logits at 4 positions max abs diff" in l4["detail"]


class _ConstantOutput(ladder.Ladder):
    """An output layer of zeros: every logit 0, so greedy decoding repeats token 0."""

    def l4(self):
        with torch.no_grad():
            self.cpu.lm_head.weight.zero_()
        return super().l4()


def test_generation_of_one_repeated_token_is_reported_as_weak_evidence():
    res = _ConstantOutput(ladder.Options("llama", **SMALL)).run()
    l4 = res["rungs"][4]
    assert l4["status"] == "pass" and l4["metrics"]["distinct_tokens"] == 1
    assert "one repeated token, so their equality is weak evidence" in l4["detail"]
