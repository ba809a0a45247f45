"""A Hugging Face Trainer fine-tune of a tiny causal LM, run by test_trainer.py in a fresh process.

Nothing here names a device: the test selects it the way users do (ACCELERATE_TORCH_DEVICE=biren,
`--migrate` for `import torch_biren.transfer_to_biren`, or `--cpu` for the reference run).
Prints one RESULT line (JSON), also written to OUT/result<RANK>.json (launched processes share stdout)."""

import argparse
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--precision", choices=("no", "bf16", "fp16"), default="bf16")
parser.add_argument("--steps", type=int, default=6)
parser.add_argument("--accum", type=int, default=2)
parser.add_argument("--cpu", action="store_true")
parser.add_argument("--migrate", action="store_true")
parser.add_argument("--profile", help="profile with torch.profiler from a TrainerCallback, traces written here")
opts = parser.parse_args()

if opts.migrate:
    import torch_biren.transfer_to_biren  # noqa: F401

import torch  # noqa: E402
from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402

from torch_biren.adapt import data, zoo  # noqa: E402


class Windows(torch.utils.data.Dataset):
    def __init__(self, n, seq):
        self.windows, self.n = data.Batches(data.corpus_tokens(), seq), n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = self.windows[i]
        return {"input_ids": x, "labels": x}


model = zoo.build("llama").train()
args = TrainingArguments(
    output_dir=opts.out, per_device_train_batch_size=4, gradient_accumulation_steps=opts.accum,
    max_steps=opts.steps, learning_rate=3e-3, lr_scheduler_type="constant", logging_steps=1, seed=0,
    bf16=opts.precision == "bf16", fp16=opts.precision == "fp16", use_cpu=opts.cpu, report_to=[],
    save_strategy="no", dataloader_num_workers=0, disable_tqdm=True,
)


class Profiling(TrainerCallback):
    """The Trainer docs' way to profile: a torch.profiler schedule stepped at each optimizer step."""

    def __init__(self, out):
        self.prof = torch.profiler.profile(schedule=torch.profiler.schedule(wait=1, warmup=1, active=2, repeat=1),
                                           on_trace_ready=torch.profiler.tensorboard_trace_handler(out))
        self.active = 0

    def on_train_begin(self, *args, **kwargs):
        self.prof.start()

    def on_step_end(self, *args, **kwargs):
        recording = (torch.profiler.ProfilerAction.RECORD, torch.profiler.ProfilerAction.RECORD_AND_SAVE)
        self.active += self.prof.current_action in recording
        self.prof.step()

    def on_train_end(self, *args, **kwargs):
        self.prof.stop()


callbacks = [Profiling(opts.profile)] if opts.profile else []
trainer = Trainer(model=model, args=args, train_dataset=Windows(4 * opts.accum * opts.steps, 64), callbacks=callbacks)
scaler = trainer.accelerator.scaler
clock = None if opts.cpu else __import__("torch_biren.sim", fromlist=["elapsed_ms"]).elapsed_ms
t0 = clock() if clock else None
trainer.train()
result = dict(
    device=str(args.device), n_gpu=args.n_gpu,
    losses=[h["loss"] for h in trainer.state.log_history if "loss" in h],
    param_devices=sorted({p.device.type for p in model.parameters()}),
    autocast=trainer.accelerator.native_amp, scaler=None if scaler is None else str(scaler._device),
    migrated=opts.migrate, argv=sys.argv[1:],
)
if callbacks:
    result["profiled_steps"] = callbacks[0].active
if clock:
    result["simulated_ms"] = clock() - t0  # BR166 time the fine-tune would take on card 0
print("RESULT " + json.dumps(result), flush=True)
with open(os.path.join(opts.out, f"result{os.environ.get('RANK', '0')}.json"), "w") as f:
    json.dump(result, f)
