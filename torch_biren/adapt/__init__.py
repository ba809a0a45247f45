"""Model adaptation: bring HF models up on biren and report how they fare.

    zoo       tiny seeded configs per family (llama, qwen2, qwen3, qwen2-moe, qwen3-moe, mixtral,
              deepseek-v2/-v3) and the published full-size configs beside them
    flops     parameter counts (total, active) and model FLOPs from the HF module tree
    data      byte-level tokenizer and the corpus shipped in torch_biren/data
    ladder    L0 .to() · L1 forward · L2 backward + AdamW · L3 training run · L4 generate, vs CPU
    coverage  which path each op took (op_counts), by op family and by layer
    suite     each ladder in its own subprocess (worker), with a progress bar
    report    Markdown, JSON and loss-curve PNGs

The command line is `python -m torch_biren adapt` (torch_biren/commands/adapt.py).
"""
