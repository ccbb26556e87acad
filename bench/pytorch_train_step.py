#!/usr/bin/python3
"""PyTorch baseline for one fp32 training step on CPU: forward, cross-entropy on the full logits,
backward, gradient clipping, AdamW step, zero_grad. Randomly initialised models (tools/torch_models.py).

Usage: /usr/bin/python3 bench/pytorch_train_step.py --preset gpt2-124m [--micro-batch-size 4]
           [--sequence-len 64] [--steps 10] [--warmup 2] [--threads N] [--max-grad-norm 1.0]
           [--lora-r R [--lora-alpha 8] [--lora-target-modules all-linear|q_proj,v_proj]]

With --lora-r the step is a LoRA step the way PEFT does it, in plain torch: every base parameter has
requires_grad False, each targeted nn.Linear / Conv1D gets A [r, in] (Kaiming-uniform, a = sqrt(5)) and
B [out, r] (zeros) and computes base(x) + B(A(x)) * lora_alpha / r; clipping and AdamW see A and B only.

Prints one JSON line:
{"impl": "pytorch", "preset": ..., "ms_per_step": <median over timed steps>, "tokens_per_second": ...,
 "threads": ..., "micro_batch_size": ..., "sequence_len": ..., "steps": ..., "max_grad_norm": ..., "torch": ...,
 "method": "full" | "lora", "params": ..., "trainable_params": ..., "peak_memory_mb": <peak RSS after the steps>}
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from torch_models import Conv1D, build_model, init_hf_style  # noqa: E402

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


class LoraLayer(torch.nn.Module):
    """PEFT's lora.Linear with dropout 0: base(x) + lora_B(lora_A(x)) * scaling. For GPT-2's Conv1D (weight
    [in, out], fan_in_fan_out in PEFT) A and B have the same shapes as for nn.Linear of that in/out."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        n_in, n_out = (base.weight.shape[0], base.weight.shape[1]) if isinstance(base, Conv1D) else \
            (base.in_features, base.out_features)
        self.lora_A = torch.nn.Linear(n_in, r, bias=False)
        self.lora_B = torch.nn.Linear(r, n_out, bias=False)
        torch.nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))  # PEFT's reset_lora_parameters
        torch.nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


def attach_lora(model, r, alpha, targets):
    """Freezes model and wraps the targeted linear modules (last name component in targets, or every linear
    layer but the output head for all-linear, as PEFT resolves it). Returns how many were wrapped."""
    for p in model.parameters():
        p.requires_grad_(False)
    wanted = None if targets == "all-linear" else set(t.strip() for t in targets.split(","))
    chosen = [(name, mod) for name, mod in model.named_modules()
              if isinstance(mod, (torch.nn.Linear, Conv1D)) and name.rsplit(".", 1)[-1] != "lm_head"
              and (wanted is None or name.rsplit(".", 1)[-1] in wanted)]
    for name, mod in chosen:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, LoraLayer(mod, r, alpha))
    return len(chosen)


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
    ap.add_argument("--lora-r", type=int, default=0, help="LoRA rank (0: full fine-tuning)")
    ap.add_argument("--lora-alpha", type=float, default=8.0, help="LoRA scale = lora_alpha / lora_r")
    ap.add_argument("--lora-target-modules", default="all-linear", help="all-linear or names, e.g. q_proj,v_proj")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.micro_batch_size < 1 or args.sequence_len < 1:
        ap.error("--steps, --micro-batch-size and --sequence-len must be >= 1, --warmup >= 0")
    if args.lora_r < 0:
        ap.error("--lora-r must be positive (0: full fine-tuning)")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = PRESETS[args.preset]
    model = build_model(cfg)
    init_hf_style(model)
    n_params = sum(p.numel() for p in model.parameters())  # the base model's, as hone reports them
    if args.lora_r and not attach_lora(model, args.lora_r, args.lora_alpha, args.lora_target_modules):
        sys.exit("pytorch_train_step.py: no module of %s matches --lora-target-modules %s"
                 % (args.preset, args.lora_target_modules))
    model.train()

    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
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
            torch.nn.utils.clip_grad_norm_(trainable, args.max_grad_norm)
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
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB
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
        "method": "lora" if args.lora_r else "full",
        "params": n_params,
        "trainable_params": sum(p.numel() for p in trainable),
        "peak_memory_mb": round(peak_mb, 1),
    }))


if __name__ == "__main__":
    main()
