#!/usr/bin/python3
"""PyTorch baseline for one full fp32 training step on CPU: forward, cross-entropy on the full logits,
backward, gradient clipping, AdamW step, zero_grad. Randomly initialised models (tools/torch_models.py).

Usage: /usr/bin/python3 bench/pytorch_train_step.py --preset gpt2-124m [--micro-batch-size 4]
           [--sequence-len 64] [--steps 10] [--warmup 2] [--threads N] [--max-grad-norm 1.0]

Prints one JSON line:
{"impl": "pytorch", "preset": ..., "ms_per_step": <median over timed steps>, "tokens_per_second": ...,
 "threads": ..., "micro_batch_size": ..., "sequence_len": ..., "steps": ..., "max_grad_norm": ..., "torch": ...}
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from torch_models import build_model, init_hf_style  # noqa: E402

PRESETS = {
    "gpt2-124m": {
        "model_type": "gpt2",
        "vocab_size": 50257,
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
        "n_positions": 1024,
        "n_inner": None,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "tie_word_embeddings": True,
    },
    "smollm-135m": {
        "model_type": "llama",
        "vocab_size": 49152,
        "hidden_size": 576,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "intermediate_size": 1536,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": True,
    },
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--micro-batch-size", type=int, default=4)
    ap.add_argument("--sequence-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--max-grad-norm", type=float, default=1.0, help="0 disables clipping")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.micro_batch_size < 1 or args.sequence_len < 1:
        ap.error("--steps, --micro-batch-size and --sequence-len must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = PRESETS[args.preset]
    model = build_model(cfg)
    init_hf_style(model)
    model.train()

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
    )

    b, t, v = args.micro_batch_size, args.sequence_len, cfg["vocab_size"]
    tokens = torch.randint(0, v, (b, t + 1))
    ids, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def step():
        logits = model(ids)
        loss = F.cross_entropy(logits.view(-1, v), targets.view(-1))
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1000.0
    print(json.dumps({
        "impl": "pytorch",
        "preset": args.preset,
        "ms_per_step": round(ms, 3),
        "tokens_per_second": round(b * t / (ms / 1000.0), 1),
        "threads": args.threads,
        "micro_batch_size": b,
        "sequence_len": t,
        "steps": args.steps,
        "max_grad_norm": args.max_grad_norm,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
