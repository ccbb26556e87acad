#!/usr/bin/python3
"""PyTorch oracle for LoRA with PEFT's semantics and file format (ALGORITHMS.md §8).

Usage:  /usr/bin/python3 tools/make_lora_fixtures.py tests/fixtures/peft      (or `make fixtures`)

peft is not installed, so its LoRA is written out here from PEFT's source (tuners/lora/layer.py Linear.forward,
get_delta_weight, tuners/tuners_utils.py check_target_module_exists and _maybe_include_all_linear_layers,
utils/constants.py TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING, config.py save_pretrained):

  y = base(x) + scale · lora_B(lora_A(dropout(x))),  scale = lora_alpha / r  (lora_alpha / sqrt(r) with use_rslora)
  lora_A.weight [r, in], lora_B.weight [out, r], also on GPT-2's Conv1D (whose own weight is [in, out]:
  fan_in_fan_out, so merging adds (B A)^T there). A target matches a module whose name equals it or ends with
  "." + target; "all-linear" = the last name components of every Linear/Conv1D but the output head; no target =
  the model type's default (gpt2: c_attn; llama, qwen2: q_proj, v_proj).

The base models are the committed model fixtures (tests/fixtures/gpt2, qwen2 — grouped-query with q/k/v biases —
and llama — head_dim 16 so q/o widths differ from hidden). For each case it writes <out>/lora_<case>/:

  adapter_config.json          the keys PEFT 0.13 writes for LoRA (sorted, indent 2)
  adapter_model.safetensors    base_model.model.<module>.lora_A.weight / .lora_B.weight (F32, or BF16 for the
                               bf16 case; with the ".default" adapter name for the default_names case)
  reference.safetensors        ids / targets I32 [2, 8] (targets aligned with positions, -100 ignored),
                               logits F32 [2, 8, V] with the adapter, grad.<key> F32 the gradient of the mean
                               cross-entropy w.r.t. every LoRA tensor (B is non-zero so dA is not trivial; the
                               layer-0 gradients only come out right when the LoRA path's input gradient of layer
                               1 is right), merged.<hf weight> F32 the base weights after merging (merge cases)
  reference.json               loss, target count, scale, module names

modules_to_save cases (PEFT's ModulesToSaveWrapper, utils/other.py; keys from utils/save_and_load.py, which strips
"modules_to_save.default"): the token embedding and/or lm_head are replaced by trainable copies (here the base
weights plus noise, so using the base's by mistake shows), saved as base_model.model.<module>.weight, gradients as
grad.base_model.model.<module>.weight, merged.<module>.weight the copy itself. On a tied model ensure_weight_tying
(PEFT >= 0.18, _add_modules_to_save_to_tie) makes ONE copy serve both, saved under both keys (PEFT clones aliased
tensors for safetensors) with one gradient summing both uses; without it each listed module gets its own copy.

Computed in float64 from float32 values (bf16 values for the bf16 case), rounded to float32 at the end. Self-check:
autograd against central differences in float64 on a few elements of every tensor.
"""

import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import load_safetensors, save_safetensors  # noqa: E402
from torch_models import Conv1D, build_model  # noqa: E402

B, T = 2, 8
IGNORE = -100
SEED = 5151
DEFAULT_TARGETS = {"gpt2": ["c_attn"], "llama": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"]}

# name, base fixture, target_modules (None = the model type's default), r, lora_alpha, use_rslora, lora_dropout,
# stored dtype, ".default" in the keys, merged weights in the reference
CASES = [
    ("gpt2", "gpt2", None, 4, 8, False, 0.0, torch.float32, False, False),
    ("gpt2_all", "gpt2", "all-linear", 2, 3, False, 0.05, torch.float32, False, True),
    ("qwen2_all", "qwen2", "all-linear", 4, 16, False, 0.0, torch.float32, False, True),
    ("qwen2_q_bf16", "qwen2", ["q_proj"], 3, 5, False, 0.0, torch.bfloat16, False, False),
    ("llama_rslora", "llama", ["q_proj", "v_proj", "o_proj", "down_proj"], 4, 8, True, 0.1, torch.float32, True,
     True),
]
# the same, then modules_to_save and ensure_weight_tying (after CASES so that their fixtures stay the same)
MTS_CASES = [
    ("llama_mts", "llama", ["q_proj", "v_proj"], 4, 8, False, 0.0, torch.float32, False, True,
     ["embed_tokens", "lm_head"], False),
    ("qwen2_mts_tied", "qwen2", ["q_proj", "v_proj"], 2, 4, False, 0.0, torch.float32, True, True,
     ["embed_tokens", "lm_head"], True),
    ("gpt2_mts_head", "gpt2", ["c_attn"], 2, 4, False, 0.0, torch.float32, False, False, ["lm_head"], False),
]


def load_base(path):
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    model = build_model(cfg)
    model.load_state_dict(load_safetensors(os.path.join(path, "model.safetensors")), strict=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return cfg, model.double()


def linear_modules(model):
    """(name, module) of every Linear / Conv1D but the output head, in named_modules order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, Conv1D)) and n != "lm_head"]


def resolve_targets(cfg, model, targets):
    if targets is None:
        return list(DEFAULT_TARGETS[cfg["model_type"]])
    if targets == "all-linear":
        names = []
        for n, _ in linear_modules(model):
            base = n.rsplit(".", 1)[-1]
            if base not in names:
                names.append(base)
        return names
    return list(targets)


def matches(name, targets):
    return any(name == t or name.endswith("." + t) for t in targets)


def in_out(module):
    if isinstance(module, Conv1D):
        return module.weight.shape[0], module.weight.shape[1]
    return module.in_features, module.out_features


def attach_lora(model, targets, r, scale, tensors):
    """Wraps each targeted module's forward: base(x) + scale · (x A^T) B^T (dropout off: the reference is eval)."""
    for name, module in linear_modules(model):
        if not matches(name, targets):
            continue
        A = tensors[name + ".lora_A.weight"]
        Bm = tensors[name + ".lora_B.weight"]
        base_forward = module.forward

        def forward(x, base_forward=base_forward, A=A, Bm=Bm):
            return base_forward(x) + scale * F.linear(F.linear(x, A), Bm)

        module.forward = forward


def make_tensors(model, targets, r, dtype, gen):
    """PEFT's A init (kaiming_uniform a=sqrt(5): U(-1/sqrt(in), 1/sqrt(in))); B random instead of zero so the
    gradients of A are not trivially zero. Values rounded to the stored dtype, then float64 leaves."""
    out = {}
    for name, module in linear_modules(model):
        if not matches(name, targets):
            continue
        n_in, n_out = in_out(module)
        bound = 1.0 / math.sqrt(n_in)
        a = (torch.rand(r, n_in, generator=gen) * 2 - 1) * bound
        b = torch.randn(n_out, r, generator=gen) * 0.3
        out[name + ".lora_A.weight"] = a.to(dtype).double().requires_grad_(True)
        out[name + ".lora_B.weight"] = b.to(dtype).double().requires_grad_(True)
    if not out:
        raise ValueError("targets %r match nothing" % (targets,))
    return out


def embedding_module(cfg, model):
    return ("transformer.wte", model.transformer.wte) if cfg["model_type"] == "gpt2" else \
        ("model.embed_tokens", model.model.embed_tokens)


def attach_copies(cfg, model, saved, tie, gen):
    """modules_to_save: the embedding and/or lm_head compute with trainable copies; returns {module name: copy}."""
    emb_name, emb = embedding_module(cfg, model)
    tied = cfg.get("tie_word_embeddings", cfg["model_type"] == "gpt2")
    base_e = emb.weight
    base_h = base_e if tied else model.lm_head.weight
    want_e = any(emb_name == m or emb_name.endswith("." + m) for m in saved)
    want_h = "lm_head" in saved
    def noisy(w):  # float32 values, as the file stores them, then a float64 leaf
        return (w.detach() + 0.02 * torch.randn(w.shape, generator=gen).double()).float().double().requires_grad_(True)

    copies = {}
    if tied and tie and (want_e or want_h):
        shared = noisy(base_e)
        copies = {emb_name: shared, "lm_head": shared}
    else:
        if want_e:
            copies[emb_name] = noisy(base_e)
        if want_h:
            copies["lm_head"] = noisy(base_h)
    e = copies.get(emb_name, base_e)
    h = copies.get("lm_head", base_h)
    trunk = model.transformer if cfg["model_type"] == "gpt2" else model.model
    emb.forward = lambda ids: F.embedding(ids, e)
    model.forward = lambda ids: F.linear(trunk(ids), h)
    return copies


def make_batch(vocab, gen):
    ids = torch.randint(0, vocab, (B, T), generator=gen)
    extra = torch.randint(0, vocab, (B, 1), generator=gen)
    targets = torch.cat([ids[:, 1:], extra], dim=1)
    targets[0, 2] = IGNORE
    targets[1, 5] = IGNORE
    return ids, targets


def loss_of(model, ids, targets):
    logits = model(ids)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE)
    return logits, loss


def finite_difference_check(model, ids, targets, tensors, gen, h=1e-6):
    worst = 0.0
    for name, t in tensors.items():
        for _ in range(3):
            i = int(torch.randint(0, t.numel(), (1,), generator=gen))
            with torch.no_grad():
                old = t.view(-1)[i].item()
                t.view(-1)[i] = old + h
                up = loss_of(model, ids, targets)[1].item()
                t.view(-1)[i] = old - h
                down = loss_of(model, ids, targets)[1].item()
                t.view(-1)[i] = old
            fd = (up - down) / (2 * h)
            g = t.grad.view(-1)[i].item()
            err = abs(fd - g) / max(1e-4, abs(g))
            worst = max(worst, err)
    if worst > 1e-5:
        raise RuntimeError("autograd disagrees with finite differences (%.2e)" % worst)
    return worst


def merged_weights(model, targets, scale, tensors):
    """W + scale · B A in Hugging Face layout (Conv1D [in, out]: the transpose, fan_in_fan_out)."""
    out = {}
    for name, module in linear_modules(model):
        if not matches(name, targets):
            continue
        delta = scale * tensors[name + ".lora_B.weight"].detach() @ tensors[name + ".lora_A.weight"].detach()
        if isinstance(module, Conv1D):
            delta = delta.T
        out["merged." + name + ".weight"] = (module.weight.detach() + delta).float()
    return out


def adapter_config(cfg, base_dir, targets, r, alpha, rslora, dropout, saved=None, tie=False):
    """What PEFT 0.13's LoraConfig.save_pretrained writes (to_dict without runtime_config, sorted, indent 2); with
    modules_to_save, PEFT 0.18's ensure_weight_tying too."""
    out = {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": base_dir,
        "bias": "none",
        "fan_in_fan_out": cfg["model_type"] == "gpt2",
        "inference_mode": True,
        "init_lora_weights": True,
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": alpha,
        "lora_dropout": dropout,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": r,
        "rank_pattern": {},
        "revision": None,
        "target_modules": targets,
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": rslora,
    }
    if saved:
        out["modules_to_save"] = saved
        out["ensure_weight_tying"] = tie
    return out


def make_case(out_root, fixtures_root, case, gen, saved=None, tie=False):
    name, base, targets, r, alpha, rslora, dropout, dtype, default_names, merge = case
    base_dir = os.path.join(fixtures_root, base)
    cfg, model = load_base(base_dir)
    resolved = resolve_targets(cfg, model, targets)
    scale = alpha / math.sqrt(r) if rslora else alpha / r
    tensors = make_tensors(model, resolved, r, dtype, gen)
    ids, tgt = make_batch(cfg["vocab_size"], gen)
    attach_lora(model, resolved, r, scale, tensors)
    copies = attach_copies(cfg, model, saved, tie, gen) if saved else {}
    logits, loss = loss_of(model, ids, tgt)
    loss.backward()
    fd = finite_difference_check(model, ids, tgt, tensors, gen)
    if copies:  # elements of a [V, C] copy have small gradients: a larger step keeps rounding out of the difference
        fd = max(fd, finite_difference_check(model, ids, tgt, {k: t for k, t in copies.items()}, gen, h=1e-4))

    out = os.path.join(out_root, "lora_" + name)
    os.makedirs(out, exist_ok=True)
    # the folder as PEFT saves it; targets as given (PEFT stores the resolved set only for "all-linear")
    saved_targets = resolved if targets in (None, "all-linear") else list(targets)
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(adapter_config(cfg, "tests/fixtures/" + base, saved_targets, r, alpha, rslora, dropout, saved, tie),
                  f, indent=2, sort_keys=True)
    infix = ".default" if default_names else ""
    adapter = {}
    for key, t in tensors.items():
        stem, w = key.rsplit(".", 1)
        adapter["base_model.model." + stem + infix + "." + w] = t.detach().to(dtype)
    for module, t in copies.items():
        adapter["base_model.model." + module + infix + ".weight"] = t.detach().to(dtype)
    save_safetensors(os.path.join(out, "adapter_model.safetensors"), adapter)

    ref = {"ids": ids.to(torch.int32), "targets": tgt.to(torch.int32), "logits": logits.detach().float()}
    for key, t in tensors.items():
        ref["grad.base_model.model." + key] = t.grad.float()
    for module, t in copies.items():
        ref["grad.base_model.model." + module + ".weight"] = t.grad.float()
    if merge:
        ref.update(merged_weights(model, resolved, scale, tensors))
        ref.update({"merged." + module + ".weight": t.detach().float() for module, t in copies.items()})
    save_safetensors(os.path.join(out, "reference.safetensors"), ref)
    count = int((tgt != IGNORE).sum())
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"loss": loss.item(), "count": count, "scale": scale, "r": r, "target_modules": resolved,
                   "modules": sorted({k.rsplit(".lora_", 1)[0] for k in tensors}),
                   "merged": merge, "finite_difference_error": fd, **({"modules_to_save": sorted(copies)} if copies
                                                                       else {})}, f, indent=2, sort_keys=True)
        f.write("\n")
    print("lora_%s: %d LoRA tensors, loss %.6f, fd err %.1e" % (name, len(tensors), loss.item(), fd))


def main():
    out_root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/peft"
    fixtures_root = os.path.dirname(os.path.normpath(out_root))
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)
    for case in CASES:
        make_case(out_root, fixtures_root, case, gen)
    for case in MTS_CASES:
        make_case(out_root, fixtures_root, case[:10], gen, saved=case[10], tie=case[11])


if __name__ == "__main__":
    main()
