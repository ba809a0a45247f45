import io

import pytest
import torch


def _roundtrip(obj, **load_kwargs):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, **load_kwargs)


def test_tensor_roundtrip_bit_exact():
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.int64, torch.bool):
        x = (torch.randn(5, 7) * 100).to(dtype).to("biren")
        y = _roundtrip(x)
        assert y.device == torch.device("biren:0") and y.dtype == dtype
        assert torch.equal(y.cpu(), x.cpu())


@pytest.mark.parametrize("where,expect", [("cpu", "cpu"), ("biren", "biren:0"), ("biren:1", "biren:1")])
def test_map_location(where, expect):
    x = torch.randn(3).to("biren:2")
    y = _roundtrip(x, map_location=where)
    assert str(y.device) == expect
    assert torch.equal(y.cpu(), x.cpu())


def test_views_keep_sharing_and_device_index():
    base = torch.arange(10.0).to("biren:1")
    a, b = _roundtrip((base[2:5], base))
    assert a.device == torch.device("biren:1")
    b[3] = -1
    assert a.cpu()[1].item() == -1  # still views of one storage


def test_module_and_optimizer_state():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).to("biren")
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 4, device="biren")).sum().backward()
    opt.step()
    state = _roundtrip({"model": model.state_dict(), "opt": opt.state_dict()})
    for k, v in model.state_dict().items():
        assert state["model"][k].device.type == "biren" and torch.equal(state["model"][k].cpu(), v.cpu())
    exp_avg = state["opt"]["state"][0]["exp_avg"]
    assert exp_avg.device.type == "biren"
    assert torch.equal(exp_avg.cpu(), opt.state_dict()["state"][0]["exp_avg"].cpu())
    cpu_state = _roundtrip(model.state_dict(), map_location="cpu")
    assert all(v.device.type == "cpu" for v in cpu_state.values())
