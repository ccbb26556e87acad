#!/usr/bin/python3
"""PyTorch baseline for IFD scoring on CPU, the way Cherry_LLM's data_analysis.py scores: one example at a time,
a forward pass of the conditioned sequence (prompt + answer) and one of the direct sequence (start token + answer),
mean NLL of the answer tokens in each (ALGORITHMS.md §1 conventions, the same as hone's).

Two modes:
  --make-model DIR --preset smollm-135m --vocab-size V [--seed 0]
      writes a randomly initialised model folder (config.json + model.safetensors, F32) of that shape;
  --model DIR --pairs PAIRS.jsonl --sequence-len N --start-id ID [--threads N] [--hone-scores SCORES.jsonl]
      scores the {"prompt": [ids], "answer": [ids]} lines and prints one JSON line:
      {"impl": "pytorch", "examples", "scored", "tokens", "seconds", "tokens_per_second", "examples_per_second",
       "threads", "torch", and with --hone-scores "max_ifd_diff": the largest |ifd_pytorch − ifd_hone|}.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from pytorch_train_step import PRESETS  # noqa: E402
from safetensors_io import load_safetensors, save_safetensors  # noqa: E402
from torch_models import build_model, init_hf_style  # noqa: E402


def make_model(out_dir, preset, vocab_size, seed):
    cfg = dict(PRESETS[preset])
    cfg["vocab_size"] = vocab_size
    cfg["bos_token_id"] = vocab_size - 1
    cfg["eos_token_id"] = vocab_size - 1
    torch.manual_seed(seed)
    model = build_model(cfg)
    init_hf_style(model)
    weights = {n: p.detach().float() for n, p in model.named_parameters()}
    if cfg.get("tie_word_embeddings"):
        weights.pop("lm_head.weight", None)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    save_safetensors(os.path.join(out_dir, "model.safetensors"), weights)


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    model = build_model(cfg)
    weights = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [n for n in missing if not (n == "lm_head.weight" and cfg.get("tie_word_embeddings"))]
    if missing or unexpected:
        raise SystemExit("pytorch_score.py: %s: missing %s, unexpected %s" % (model_dir, missing, unexpected))
    model.eval()
    return model


@torch.no_grad()
def answer_nll(model, ids, first_answer):
    """Mean NLL of ids[first_answer:] given what precedes each token."""
    logits = model(torch.tensor([ids]))[0]
    targets = torch.tensor(ids[first_answer:])
    return F.cross_entropy(logits[first_answer - 1 : len(ids) - 1].double(), targets).item()


def score(args):
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    pairs = [json.loads(line) for line in open(args.pairs)]
    ifds, tokens, scored = [], 0, 0
    start = time.perf_counter()
    for p in pairs:
        q, a = p["prompt"], p["answer"]
        a = a[: max(0, args.sequence_len - len(q))]
        if not a:
            ifds.append(float("nan"))
            continue
        cond = answer_nll(model, q + a, len(q))
        direct = answer_nll(model, [args.start_id] + a, 1)
        ifds.append(math.exp(cond - direct))
        tokens += len(q) + 2 * len(a) + 1
        scored += 1
    seconds = time.perf_counter() - start
    out = {
        "impl": "pytorch",
        "examples": len(pairs),
        "scored": scored,
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 1),
        "examples_per_second": round(len(pairs) / seconds, 3),
        "threads": args.threads,
        "torch": torch.__version__,
    }
    if args.hone_scores:
        hone = [json.loads(line)["ifd"] for line in open(args.hone_scores)]
        if len(hone) != len(ifds):
            raise SystemExit("pytorch_score.py: %d hone scores for %d examples" % (len(hone), len(ifds)))
        diffs = [abs(x - (h if h is not None else float("nan"))) for x, h in zip(ifds, hone) if not math.isnan(x)]
        out["max_ifd_diff"] = float("%.3g" % max(diffs)) if diffs else None
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-model")
    ap.add_argument("--preset", default="smollm-135m")
    ap.add_argument("--vocab-size", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model")
    ap.add_argument("--pairs")
    ap.add_argument("--sequence-len", type=int, default=1024)
    ap.add_argument("--start-id", type=int)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--hone-scores")
    args = ap.parse_args()
    if args.make_model:
        make_model(args.make_model, args.preset, args.vocab_size, args.seed)
    else:
        score(args)


if __name__ == "__main__":
    main()
