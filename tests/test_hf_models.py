"""HF transformers models run forward, backward, an AdamW step and greedy generate() on biren,
matching the same model on the CPU."""

import copy

import pytest
import torch

from torch_biren.adapt import zoo

MODELS = ["llama", "qwen2", "qwen3", "qwen2-moe", "qwen3-moe", "mixtral", "deepseek-v3"]


@pytest.mark.parametrize("name", MODELS)
def test_model_matches_cpu(name):
    cpu = zoo.build(name)
    dev = copy.deepcopy(cpu).to("biren")
    torch.manual_seed(1)
    ids = torch.randint(0, zoo.VOCAB, (2, 12))

    out_c = cpu(ids, labels=ids)
    out_d = dev(ids.to("biren"), labels=ids.to("biren"))
    assert (out_d.logits.cpu() - out_c.logits).abs().max().item() <= 1e-5
    assert abs(out_d.loss.item() - out_c.loss.item()) <= 1e-5

    out_c.loss.backward()
    out_d.loss.backward()
    for (n, pc), pd in zip(cpu.named_parameters(), dev.parameters()):
        if pc.grad is None:
            assert pd.grad is None, n
            continue
        assert torch.allclose(pd.grad.cpu(), pc.grad, rtol=1e-3, atol=1e-5), n

    # The optimizer step is checked on identical gradients: Adam moves each weight by about lr
    # whatever the gradient's size, so last-bit differences of near-zero gradients would dominate.
    for pc, pd in zip(cpu.parameters(), dev.parameters()):
        if pd.grad is not None:
            pc.grad = pd.grad.cpu()
    for m in (cpu, dev):
        torch.optim.AdamW(m.parameters(), lr=1e-3).step()
    for pc, pd in zip(cpu.parameters(), dev.parameters()):
        assert torch.allclose(pd.detach().cpu(), pc.detach(), atol=1e-6)

    prompt = ids[:1, :6]
    gen_c = cpu.generate(prompt, max_new_tokens=5, do_sample=False)
    gen_d = dev.generate(prompt.to("biren"), max_new_tokens=5, do_sample=False)
    assert gen_d.cpu().tolist() == gen_c.tolist()
