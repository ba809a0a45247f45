"""Hidden dropout as Megatron-LM trains GPT models (--hidden-dropout, 0.1 by default, as in
Megatron-Core's TransformerConfig; Llama and Qwen recipes set 0): after the attention block and
after the MLP, one fused bias-dropout-add kernel (JIT-scripted bias_dropout_add) adds the residual
to the dropped-out output. The traced model's residual adds are that kernel without the dropout, so
the dropout adds, per layer and micro-batch:

    forward:  each of the two adds also writes its 1-byte mask (no launch of its own)
    backward: one kernel per dropout reads the gradient and the mask and writes the input gradient
    kept:     the two masks, 1 B per element each (Korthikanti et al. 2022's 2 s b h of 34 s b h)

Without sequence parallelism every tensor-parallel rank drops out the whole hidden states; with it,
its 1/tp of the tokens."""

from ..sim import costs, dtypes


def elements(hidden_states, tp, sequence_parallel):
    """Elements of one dropout tensor on one card: the micro-batch's hidden states (tokens x
    hidden), 1/tp of them under sequence parallelism."""
    return hidden_states // (tp if sequence_parallel and tp > 1 else 1)


def layer_ns(n, dtype, chip):
    """(forward ns, backward ns) of one layer's two dropouts over n elements each."""
    elt = dtypes.itemsize(dtype)
    return 2 * costs.memory_ns(n, chip), 2 * costs.generic(n, n * (2 * elt + 1), chip).ns


def saved_bytes(n):
    """The two 1-byte masks one layer keeps for backward."""
    return 2 * n
