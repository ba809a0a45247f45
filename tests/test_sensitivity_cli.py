"""python -m torch_biren sensitivity and info's list of inferred numbers with their ranges."""

from torch_biren import cli


def test_sensitivity_of_an_op_names_its_three_numbers(capsys):
    assert cli.main(["sensitivity", "op", "aten::mm", "4096x4096", "4096x4096"]) == 0
    out = capsys.readouterr().out
    assert "sensitivity of time (us) on BR166 (UMA)" in out
    assert "depends most on: matrix_flops.bf16, matrix_efficiency, launch_ns" in out
    assert "| matrix_efficiency | table | ×0.8 .. ×1.05 |" in out


def test_sensitivity_of_a_projection_reports_step_tokens_and_mfu(capsys):
    args = ["sensitivity", "project", "--model", "tiny-qwen2", "--mode", "train", "--batch", "2", "--seq", "16"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "sensitivity of step time (ms)" in out and "tokens/s" in out and "MFU" in out
    assert "host_issue_ns" in out.split("depends most on: ")[1]  # a tiny model is bound by host issue


def test_sensitivity_errors_are_usage_errors(capsys):
    assert cli.main(["sensitivity", "op", "aten::mm", "4096xfoo"]) == 2
    assert "shapes must look like" in capsys.readouterr().err
    assert cli.main(["sensitivity", "op", "aten::mm", "4x4", "4x4", "--chip", "BR110"]) == 2


def test_info_lists_inferred_numbers_with_ranges(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "card_link_Bps              3.2e+10      range 1.6e+10 .. 3.2e+10" in out
    assert "mem_efficiency             table        range x0.9 .. x1.05" in out
