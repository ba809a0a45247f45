import torch


def test_manual_seed_reproduces_device_streams():
    torch.manual_seed(123)
    a = torch.randn(5, device="biren").cpu()
    b = torch.rand(5, device="biren").cpu()
    torch.manual_seed(123)
    assert torch.equal(a, torch.randn(5, device="biren").cpu())
    assert torch.equal(b, torch.rand(5, device="biren").cpu())


def test_device_generator_is_not_the_cpu_one():
    torch.manual_seed(0)
    x = torch.randn(4, device="biren").cpu()
    torch.manual_seed(0)
    torch.randn(100)  # consuming the CPU generator must not shift the device's
    torch.biren.manual_seed(0)
    assert torch.equal(x, torch.randn(4, device="biren").cpu())


def test_rng_state_roundtrip_and_seed_api():
    torch.biren.manual_seed_all(7)
    assert torch.biren.initial_seed() == 7
    state = torch.biren.get_rng_state()
    x = torch.randn(3, device="biren").cpu()
    torch.biren.set_rng_state(state)
    assert torch.equal(x, torch.randn(3, device="biren").cpu())
    states = torch.biren.get_rng_state_all()
    assert len(states) == torch.biren.device_count()
    torch.biren.set_rng_state_all(states)
    torch.biren.seed()
    torch.biren.seed_all()
    assert len(torch.biren.default_generators) == 8


def test_explicit_generator_and_rng_ops():
    g = torch.Generator(device="biren")
    g.manual_seed(3)
    a = torch.randn(4, device="biren", generator=g).cpu()
    g.manual_seed(3)
    assert torch.equal(a, torch.randn(4, device="biren", generator=g).cpu())
    torch.manual_seed(1)
    p = torch.randperm(10, device="biren")
    assert sorted(p.cpu().tolist()) == list(range(10))
    d = torch.nn.functional.dropout(torch.ones(1000, device="biren"), 0.5)
    kept = (d.cpu() != 0).float().mean().item()
    assert 0.4 < kept < 0.6
    m = torch.multinomial(torch.tensor([0.0, 1.0], device="biren"), 3, replacement=True)
    assert m.cpu().tolist() == [1, 1, 1]
    b = torch.bernoulli(torch.full((8,), 0.5, device="biren"))
    assert set(b.cpu().tolist()) <= {0.0, 1.0}


def _random_ops():
    x = torch.ones(64, 64, device="biren")
    q = torch.randn(1, 2, 16, 8, device="biren")
    drop = torch.nn.Dropout(0.5).train()
    return {
        "F.dropout": lambda: torch.nn.functional.dropout(x, 0.5),
        "nn.Dropout": lambda: drop(x),
        "sdpa dropout_p": lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=0.5),
        "native_dropout": lambda: torch.ops.aten.native_dropout(x, 0.5, True)[0],
    }


def test_dropout_draws_from_the_device_generator():
    # Every random op draws from the biren generator, whether or not its schema has a Generator argument.
    for name, op in _random_ops().items():
        torch.biren.manual_seed(0)
        a = op().cpu()
        torch.manual_seed(1)
        torch.rand(1000)  # the CPU generator's state must not matter
        cpu_state = torch.get_rng_state()
        torch.biren.manual_seed(0)
        b = op().cpu()
        assert torch.equal(a, b), name
        assert torch.equal(torch.get_rng_state(), cpu_state), f"{name} consumed the CPU generator"
        assert not torch.equal(op().cpu(), b), f"{name}: the device stream did not advance"


def test_dropout_mask_is_the_cpu_one_for_the_same_seed():
    # The device generator is a CPU Philox/MT stream of the same seed, so masks match CPU's.
    x = torch.ones(1000)
    torch.manual_seed(5)
    want, want_mask = torch.ops.aten.native_dropout(x, 0.3, True)
    torch.biren.manual_seed(5)
    got, got_mask = torch.ops.aten.native_dropout(x.to("biren"), 0.3, True)
    assert torch.equal(got.cpu(), want) and torch.equal(got_mask.cpu(), want_mask)
