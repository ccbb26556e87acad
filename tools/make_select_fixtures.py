#!/usr/bin/python3
"""PyTorch oracle for instruction-data scores: IFD of (prompt ids, answer ids) pairs on the tiny fixture models.

Usage:  /usr/bin/python3 tools/make_select_fixtures.py tests/fixtures      (or `make fixtures`)

Reads the checkpoints that tools/make_fixtures.py wrote (tests/fixtures/{gpt2,llama}) and writes
tests/fixtures/select/ifd_<model>.json: a sequence_len, a start id, and for each pair its prompt and answer ids
and the expected loss_cond, loss_direct, ifd, ifd_loss and n_answer_tokens, or the reason it is not scored.

Each pair is scored on its own, unpacked, in float64, exactly as ../shared/reference/ALGORITHMS.md §1 states:
conditioned sequence prompt + answer cut to sequence_len; the answer tokens that fit are the scored ones; the
direct sequence is [start] + those answer tokens; a loss is the mean NLL of the scored tokens. hone packs many
sequences per row, so agreement also checks that packing keeps sequences apart. Deterministic.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import load_safetensors  # noqa: E402
from torch_models import build_model  # noqa: E402

SEED = 4321
SEQUENCE_LEN = 24


def load_model(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    model = build_model(cfg)
    tensors = load_safetensors(os.path.join(folder, "model.safetensors"))
    state = {n: tensors[n] for n, _ in model.named_parameters() if n in tensors}
    missing = [n for n, _ in model.named_parameters() if n not in tensors]
    if missing and not (cfg.get("tie_word_embeddings") and missing == ["lm_head.weight"]):
        raise SystemExit("%s: missing tensors %s" % (folder, missing))
    model.load_state_dict(state, strict=False)
    return cfg, model.double().eval()


def mean_nll(model, ids, n_scored):
    """Mean NLL of the last n_scored tokens of ids, each predicted from the tokens before it."""
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(x)[0]
    start = len(ids) - n_scored
    nll = F.cross_entropy(logits[start - 1 : len(ids) - 1], x[0, start:], reduction="sum")
    return nll.item() / n_scored


def pairs(vocab, gen):
    """Prompts and answers of assorted lengths: ordinary, long answers cut by sequence_len, a prompt that fills
    sequence_len, an empty answer, one-token answers."""
    lengths = [(5, 7), (3, 1), (10, 12), (18, 10), (1, 4), (8, 0), (SEQUENCE_LEN, 3), (23, 5), (6, 6), (12, 3)]
    out = []
    for n_prompt, n_answer in lengths:
        prompt = torch.randint(0, vocab, (n_prompt,), generator=gen).tolist()
        answer = torch.randint(0, vocab, (n_answer,), generator=gen).tolist()
        out.append((prompt, answer))
    return out


def score(model, prompt, answer, start_id):
    room = max(SEQUENCE_LEN - len(prompt), 0)
    if not answer:
        return {"status": "empty_answer"}
    if room == 0:
        return {"status": "prompt_too_long"}
    k = min(len(answer), room)
    cond = mean_nll(model, prompt + answer[:k], k)
    direct = mean_nll(model, [start_id] + answer[:k], k)
    return {"status": "scored", "n_answer_tokens": k, "loss_cond": cond, "loss_direct": direct,
            "ifd": math.exp(cond - direct), "ifd_loss": cond / direct}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    torch.set_num_threads(1)
    out_dir = os.path.join(root, "select")
    os.makedirs(out_dir, exist_ok=True)
    for index, name in enumerate(["gpt2", "llama"]):
        cfg, model = load_model(os.path.join(root, name))
        gen = torch.Generator().manual_seed(SEED + index)
        start_id = cfg.get("bos_token_id", 0)
        cases = []
        for prompt, answer in pairs(cfg["vocab_size"], gen):
            case = {"prompt": prompt, "answer": answer}
            case.update(score(model, prompt, answer, start_id))
            cases.append(case)
        head = {"model": name, "sequence_len": SEQUENCE_LEN, "start_id": start_id}
        with open(os.path.join(out_dir, "ifd_%s.json" % name), "w") as f:
            f.write(json.dumps(head)[:-1] + ', "cases": [\n')
            f.write(",\n".join(json.dumps(c) for c in cases))
            f.write("\n]}\n")


if __name__ == "__main__":
    main()
