"""DeepSpeed ZeRO training of a tiny causal LM in one process, run by test_deepspeed.py.

    deepspeed_zero.py biren|cpu PORT [OUT_DIR]

ZeRO stage 1 in fp32 and stage 2 in bf16 (DeepSpeed's bf16 mode: bf16 weights, fp32 master copy),
five steps each. On 'biren' DeepSpeed's accelerator is torch_biren's (collectives on bccl); 'cpu' is
the reference: DeepSpeed's own CPU accelerator and gloo. Prints one RESULT line (JSON). Under torchrun
(several ranks, each fed the same batches, so the losses are those of one process) only stage 2 runs
and each rank writes OUT_DIR/rank<N>.json."""

import json
import os
import sys

device, port = sys.argv[1], sys.argv[2]
out_dir = sys.argv[3] if len(sys.argv) > 3 else None
for key, value in dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=port).items():
    os.environ.setdefault(key, value)

import torch  # noqa: E402

if device == "biren":
    from torch_biren.integrations import deepspeed as ds_adapter

    ds_adapter.install()  # before `import deepspeed`; DS_ACCELERATOR=biren does the same

import deepspeed  # noqa: E402
from deepspeed.accelerator import get_accelerator  # noqa: E402

import torch_biren  # noqa: E402
from torch_biren.adapt import data, zoo  # noqa: E402

STEPS = 5
ADAMW = dict(lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
batches = data.training_batches(STEPS, 4, 64)


def zero(stage, bf16):
    model = zoo.build("llama").train()
    cfg = {"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 1, "steps_per_print": 10**6,
           "optimizer": {"type": "AdamW", "params": {**ADAMW, "torch_adam": True}},
           "zero_optimization": {"stage": stage}, "bf16": {"enabled": bf16}}
    engine, optimizer, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=cfg)
    losses = []
    for x in batches:
        x = x.to(engine.device)
        loss = engine(input_ids=x, labels=x).loss
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    return dict(losses=losses, optimizer=type(optimizer).__name__, device=str(engine.device),
                params=sorted({p.device.type for p in model.parameters()}),
                dtypes=sorted({str(p.dtype).replace("torch.", "") for p in model.parameters()}),
                stage=engine.zero_optimization_stage())


torch_biren.reset_op_counts()
result = dict(accelerator=get_accelerator()._name)
if out_dir is None:
    result["zero1_fp32"] = zero(1, False)
result["zero2_bf16"] = zero(2, True)
result["backend"] = torch.distributed.get_backend()
result["world"] = torch.distributed.get_world_size()
result["collectives"] = sorted(n for n in torch_biren.op_counts() if n.startswith("bccl"))
print("RESULT " + json.dumps(result), flush=True)
if out_dir is not None:
    with open(os.path.join(out_dir, f"rank{torch.distributed.get_rank()}.json"), "w") as f:
        json.dump(result, f)
torch.distributed.destroy_process_group()
