#!/usr/bin/python3
"""Reference values for tests/unit/test_optim.c from PyTorch (Debian's python3-torch).

Runs torch.optim.AdamW and torch.optim.SGD (single-tensor code path, foreach=False) for a few steps on two
parameter tensors — a matrix in a weight-decay group and a bias in a no-decay group, as hone's segments — and
torch.nn.utils.clip_grad_norm_ on three gradients, and writes everything to one small JSON file.
Every hyperparameter is rounded to float32 first, because hone receives them as floats.

    /usr/bin/python3 tools/make_optim_fixtures.py tests/fixtures/optim
"""
import json
import os
import struct
import sys

import torch


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def short(x):
    """The float32 value x in at most 9 significant digits, which still reads back as the same float32."""
    return float(f"{x:.9g}")


def flat(tensors):
    return [short(x) for t in tensors for x in t.detach().reshape(-1).tolist()]


def run_optimizer(make, weight_decay, w0, b0, grads, lrs):
    w = torch.nn.Parameter(w0.clone())
    b = torch.nn.Parameter(b0.clone())
    groups = [{"params": [w], "weight_decay": weight_decay}, {"params": [b], "weight_decay": 0.0}]
    opt = make(groups)
    history = []
    for g, lr in zip(grads, lrs):
        w.grad = g[: w.numel()].reshape(w.shape).clone()
        b.grad = g[w.numel():].clone()
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        history.append(flat([w, b]))
    return history


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/optim"
    torch.manual_seed(1234)
    # 48 elements go through torch's vectorised kernels (AVX2 and AVX-512), the 5 of the bias through its
    # scalar loop; hone must match both.
    w0 = torch.randn(6, 8)
    b0 = torch.randn(5) * 0.1
    n = w0.numel() + b0.numel()
    # Gradients of different scales, one of them far below eps, to exercise the denominator.
    grads = [torch.randn(n) * s for s in (1.0, 0.01, 3.0, 0.5)]
    grads[1][50] = 1e-10
    lrs = [f32(x) for x in (1e-2, 2e-2, 5e-3, 1e-2)]

    beta1, beta2, eps, adamw_wd = f32(0.9), f32(0.999), f32(1e-8), f32(0.1)
    momentum, sgd_wd = f32(0.9), f32(0.01)
    cases = [
        {
            "name": "adamw",
            "optimizer": "adamw",
            "beta1": beta1,
            "beta2": beta2,
            "eps": eps,
            "weight_decay": adamw_wd,
            "params": run_optimizer(
                lambda g: torch.optim.AdamW(g, lr=lrs[0], betas=(beta1, beta2), eps=eps, foreach=False),
                adamw_wd, w0, b0, grads, lrs),
        },
        {
            "name": "sgd_momentum",
            "optimizer": "sgd",
            "momentum": momentum,
            "weight_decay": sgd_wd,
            "params": run_optimizer(lambda g: torch.optim.SGD(g, lr=lrs[0], momentum=momentum, foreach=False),
                                    sgd_wd, w0, b0, grads, lrs),
        },
        {
            "name": "sgd",
            "optimizer": "sgd",
            "momentum": 0.0,
            "weight_decay": sgd_wd,
            "params": run_optimizer(lambda g: torch.optim.SGD(g, lr=lrs[0], foreach=False), sgd_wd, w0, b0, grads,
                                    lrs),
        },
    ]

    clip_grads = [torch.randn(6, 7), torch.randn(11), torch.randn(5) * 10]
    clip_in = flat(clip_grads)
    max_norm = f32(1.5)
    clip_params = [torch.nn.Parameter(torch.zeros_like(g)) for g in clip_grads]
    for p, g in zip(clip_params, clip_grads):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(clip_params, max_norm).item()

    fixture = {
        "generator": "tools/make_optim_fixtures.py",
        "torch": torch.__version__,
        "segments": [{"offset": 0, "size": w0.numel(), "decay": 1},
                     {"offset": w0.numel(), "size": b0.numel(), "decay": 0}],
        "params0": flat([w0, b0]),
        "grads": [flat([g]) for g in grads],
        "lrs": lrs,
        "cases": cases,
        "clip": {"grads": clip_in, "max_norm": max_norm, "norm": short(norm), "clipped": flat([p.grad for p in clip_params])},
    }
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "reference.json")
    with open(path, "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
