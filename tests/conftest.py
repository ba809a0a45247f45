import torch_biren

assert torch_biren.load_error() is None, f"torch_biren did not load: {torch_biren.load_error()!r}"
