"""The zoo's models: each family's tiny test config and the published full-size configs beside it
(the data lives in torch_biren/adapt/zoo.py, where the package and the projection read it).

    python models/configs.py                    # table: parameters, active, FLOPs per token
    python models/configs.py --json DIR         # one HF-style config.json per published model
"""

import argparse
import json
import os

from torch_biren.adapt import flops, zoo


def rows(seq):
    for family in zoo.names():
        for name, cfg in [(f"{family} (tiny)", zoo.config(family))] + [
                (n, zoo.published_config(n)) for n in zoo.published_names(family)]:
            p = flops.param_counts(cfg)
            yield family, name, cfg, p, flops.flops_per_token(cfg, seq, p["model"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seq", type=int, default=4096, help="sequence length for attention FLOPs (default 4096)")
    ap.add_argument("--json", metavar="DIR", help="write <name>.json configs (HF to_dict) here")
    args = ap.parse_args(argv)
    print(f"{'model':24} {'family':12} {'layers':>6} {'hidden':>6} {'params':>10} {'active':>10} "
          f"{'train GFLOP/token @' + str(args.seq):>24}")
    for family, name, cfg, p, fl in rows(args.seq):
        print(f"{name:24} {family:12} {cfg.num_hidden_layers:6d} {cfg.hidden_size:6d} {_n(p['total']):>10}"
              f" {_n(p['active']):>10} {fl / 1e9:24.3f}")
        if args.json and not name.endswith("(tiny)"):
            os.makedirs(args.json, exist_ok=True)
            with open(os.path.join(args.json, f"{name}.json"), "w") as f:
                json.dump(cfg.to_dict(), f, indent=1, default=str)


def _n(x):
    return f"{x / 1e9:.2f}B" if x >= 1e8 else f"{x / 1e3:.1f}K"


if __name__ == "__main__":
    main()
