"""A plain accelerate training loop (as in accelerate's examples), run by test_accelerate.py under
`accelerate launch`: the device comes from ACCELERATE_TORCH_DEVICE (or the CUDA migration), nothing
here names one. Each process writes its results to OUT_DIR/rank<N>.json (their stdout interleaves).

    accelerate launch ... accelerate_train.py STEPS OUT_DIR"""

import json
import os
import sys

import torch
from accelerate import Accelerator

from torch_biren.adapt import data, zoo

steps, out_dir = int(sys.argv[1]), sys.argv[2]
accelerator = Accelerator(mixed_precision="bf16", gradient_accumulation_steps=2)
model = zoo.build("llama").train()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
loader = torch.utils.data.DataLoader(data.Batches(data.corpus_tokens(), 64), batch_size=2, shuffle=False)
model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
losses = []
for i, x in enumerate(loader):
    if i == 2 * steps:
        break
    with accelerator.accumulate(model):
        loss = model(input_ids=x, labels=x).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
    losses.append(accelerator.gather(loss.detach()).mean().item())
weights = accelerator.unwrap_model(model).model.embed_tokens.weight
checksum = accelerator.gather(weights.detach().float().sum().reshape(1)).tolist()  # replicas stay equal
result = json.dumps(dict(rank=accelerator.process_index, world=accelerator.num_processes,
                         device=str(accelerator.device), backend=torch.distributed.get_backend(),
                         distributed=str(accelerator.distributed_type), losses=losses,
                         checksum=checksum, param_device=str(weights.device)))
with open(os.path.join(out_dir, f"rank{accelerator.process_index}.json"), "w") as f:
    f.write(result)
accelerator.end_training()  # destroys the process group
