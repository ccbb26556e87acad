#!/usr/bin/python3
"""PyTorch oracle for prompt tuning and prefix tuning with PEFT's semantics (ALGORITHMS.md §8).

Usage:  /usr/bin/python3 tools/make_prefix_fixtures.py tests/fixtures/peft      (or `make fixtures`)

peft and transformers are not installed, so their semantics are written out here from PEFT's source
(tuners/prompt_tuning/model.py PromptEmbedding, tuners/prefix_tuning/model.py PrefixEncoder, peft_model.py
PeftModelForCausalLM.forward / get_prompt / get_prompt_embedding_to_save, utils/other.py
_prepare_prompt_learning_config):

  prompt tuning   inputs_embeds = cat(prompt_embeddings [n, C], wte(input_ids)); labels = cat(-100 × n, labels);
                  GPT-2 adds wpe[0 .. n+T) to the whole sequence (positions count the virtual tokens).
  prefix tuning   past_key_values = prefix [n, 2L·kv_dim] viewed (n, 2L, NKV, HD) and permuted to per-layer
                  (key = slot 2l, value = slot 2l+1) [NKV, n, HD]; the keys are not rotated; the real tokens take
                  positions n, n+1, ... (wpe and rotary embeddings) and attend to all n prefix slots plus their
                  causal window. For models whose config has num_key_value_heads PEFT sets token_dim = NKV·HD and
                  num_attention_heads = NKV. With prefix_projection the prefix is
                  Linear(H, 2L·token_dim)(tanh(Linear(token_dim, H)(embedding [n, token_dim]))), and the file holds
                  that output (get_prompt_embedding_to_save).

Deterministic (fixed seeds, one thread). Base models: tests/fixtures/gpt2 (GPT-2, 4 heads) and a tiny
grouped-query Llama written here to prefix_base_llama/ (4 query heads, 2 key/value heads of 8: kv_dim 16 differs
from hidden 32, so a mix-up of the two cannot pass). For each base and kind it writes <out>/<kind>_<base>/:

  adapter_config.json, adapter_model.safetensors   the adapter as PEFT saves it (prompt_embeddings F32)
  reference.safetensors   padded.ids / padded.targets I32 [2, 8] (a right-padded batch; targets already aligned
                          with positions, -100 ignored), padded.logits F32 [2, 8, V];
                          packed.ids / packed.pos / packed.targets I32 [1, 16] (one packed row of two samples with
                          position ids restarting per sample, padding at the end);
                          param.<name> the trainable tensors; grad.padded.<name>, grad.packed.<name> the gradients
                          of the mean cross-entropy of each batch (packed: its samples run alone, summed)
  reference.json          losses and target counts

Prompt-tuning rows hold n placeholder tokens (id 0, target -100) before each sample, as hone's callers do; the
reference builds PEFT's inputs_embeds from the real tokens instead. Everything is computed in float64 from float32
values and rounded to float32 at the end. Self-checks: gradients against central differences (float64), and the
packed row against an explicit block-diagonal forward.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import LLAMA, init_fixture_weights  # noqa: E402
from safetensors_io import load_safetensors, save_safetensors  # noqa: E402
from torch_models import apply_rope, build_model, llama_head_dim, repeat_kv, rope_cos_sin  # noqa: E402

N_VIRTUAL = 3
ENCODER_HIDDEN = 24  # differs from every token_dim, so the MLP's two shapes cannot be swapped
B, T = 2, 8  # padded batch
T_PACKED = 16
PLACEHOLDER = 0
IGNORE = -100
SEED = 4242

LLAMA_GQA = dict(LLAMA, head_dim=8)  # make_fixtures.py's Llama with head_dim 8: kv_dim 16 != hidden 32


def dims(cfg):
    """(C, L, NH, NKV, HD)"""
    if cfg["model_type"] == "gpt2":
        return cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["n_head"], cfg["n_embd"] // cfg["n_head"]
    nh = cfg["num_attention_heads"]
    return cfg["hidden_size"], cfg["num_hidden_layers"], nh, cfg.get("num_key_value_heads") or nh, llama_head_dim(cfg)


def load_base(path):
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    model = build_model(cfg)
    model.load_state_dict(load_safetensors(os.path.join(path, "model.safetensors")), strict=True)
    return cfg, model.double()


def write_llama_base(path, gen):
    os.makedirs(path, exist_ok=True)
    model = build_model(LLAMA_GQA)
    init_fixture_weights(model, gen)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(LLAMA_GQA, f, indent=2, sort_keys=True)
        f.write("\n")
    save_safetensors(os.path.join(path, "model.safetensors"),
                     {n: p.detach().clone() for n, p in model.named_parameters()})


# ----------------------------------------------------------------------------------------------------------
# The base models with inputs_embeds, explicit positions and per-layer prefix keys/values


def attend(q, k, v, prefix, scale, group):
    """q [B, NH, T, hd], k/v [B, NKV, T, hd]; prefix (pk, pv) [NKV, n, hd] or None; causal over the tokens, all of
    the prefix visible."""
    t = q.size(2)
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    if prefix is not None:
        pk, pv = prefix
        n = pk.size(1)
        k = torch.cat([pk[None].expand(k.size(0), -1, -1, -1), k], dim=2)
        v = torch.cat([pv[None].expand(v.size(0), -1, -1, -1), v], dim=2)
        mask = torch.cat([torch.ones(t, n, dtype=torch.bool), mask], dim=1)
    k, v = repeat_kv(k, group), repeat_kv(v, group)
    w = torch.matmul(q, k.transpose(-1, -2)) * scale
    w = w.masked_fill(~mask, float("-inf")).softmax(-1)
    y = torch.matmul(w, v)
    return y.transpose(1, 2).reshape(q.size(0), t, -1)


def split_prefix(prefix, cfg):
    """[n, 2L·NKV·HD] -> per layer (keys, values) [NKV, n, HD], as PEFT's get_prompt view + permute([2,0,3,1,4])."""
    _, L, _, NKV, HD = dims(cfg)
    pp = prefix.view(prefix.size(0), 2 * L, NKV, HD).permute(1, 2, 0, 3)
    return [(pp[2 * l], pp[2 * l + 1]) for l in range(L)]


def run_model(model, cfg, embeds, pos, prefix):
    """embeds [B, T, C] (without positions), pos [T] int64 -> logits [B, T, V]."""
    C, L, NH, NKV, HD = dims(cfg)
    kv = split_prefix(prefix, cfg) if prefix is not None else [None] * L
    b, t, _ = embeds.shape
    if cfg["model_type"] == "gpt2":
        tr = model.transformer
        x = embeds + tr.wpe(pos)[None]
        for l, blk in enumerate(tr.h):
            q, k, v = blk.attn.c_attn(blk.ln_1(x)).split(C, dim=2)
            q, k, v = (z.view(b, t, NH, HD).transpose(1, 2) for z in (q, k, v))
            x = x + blk.attn.c_proj(attend(q, k, v, kv[l], HD ** -0.5, 1))
            x = x + blk.mlp(blk.ln_2(x))
        return F.linear(tr.ln_f(x), tr.wte.weight)
    mm = model.model
    cos, sin = rope_cos_sin(int(pos.max()) + 1, HD, float(cfg["rope_theta"]), embeds.dtype, embeds.device)
    cos, sin = cos[pos], sin[pos]
    x = embeds
    for l, layer in enumerate(mm.layers):
        at = layer.self_attn
        h = layer.input_layernorm(x)
        q = apply_rope(at.q_proj(h).view(b, t, NH, HD).transpose(1, 2), cos, sin)
        k = apply_rope(at.k_proj(h).view(b, t, NKV, HD).transpose(1, 2), cos, sin)
        v = at.v_proj(h).view(b, t, NKV, HD).transpose(1, 2)
        x = x + at.o_proj(attend(q, k, v, kv[l], HD ** -0.5, NH // NKV))
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    head = mm.embed_tokens.weight if cfg["tie_word_embeddings"] else model.lm_head.weight
    return F.linear(mm.norm(x), head)


def wte_of(model, cfg):
    return model.transformer.wte if cfg["model_type"] == "gpt2" else model.model.embed_tokens


# ----------------------------------------------------------------------------------------------------------
# The adapters


def make_adapter(kind, cfg, gen):
    """Trainable tensors {name: float64 leaf}, float32 values; names are PEFT's prompt_encoder parameter names."""
    C, L, _, NKV, HD = dims(cfg)
    kv_dim = NKV * HD
    if kind == "prompt":
        t = {"embedding.weight": torch.randn(N_VIRTUAL, C, generator=gen)}
    elif kind == "prefix":
        t = {"embedding.weight": torch.randn(N_VIRTUAL, 2 * L * kv_dim, generator=gen)}
    else:
        t = {
            "embedding.weight": torch.randn(N_VIRTUAL, kv_dim, generator=gen),
            "transform.0.weight": torch.randn(ENCODER_HIDDEN, kv_dim, generator=gen) * 0.5,
            "transform.0.bias": torch.randn(ENCODER_HIDDEN, generator=gen) * 0.5,
            "transform.2.weight": torch.randn(2 * L * kv_dim, ENCODER_HIDDEN, generator=gen) * 0.5,
            "transform.2.bias": torch.randn(2 * L * kv_dim, generator=gen) * 0.5,
        }
    return {k: v.float().double().requires_grad_(True) for k, v in t.items()}


def prefix_of(kind, p):
    """PrefixEncoder.forward on all virtual tokens: [n, 2L·token_dim]."""
    if kind == "prefix":
        return p["embedding.weight"]
    h = torch.tanh(F.linear(p["embedding.weight"], p["transform.0.weight"], p["transform.0.bias"]))
    return F.linear(h, p["transform.2.weight"], p["transform.2.bias"])


def logits_of(kind, model, cfg, p, ids):
    """One batch of rows that each start at position 0 (hone's view: prompt rows begin with n placeholders)."""
    wte = wte_of(model, cfg)
    t = ids.size(1)
    if kind == "prompt":
        assert bool((ids[:, :N_VIRTUAL] == PLACEHOLDER).all())
        prompts = p["embedding.weight"][None].expand(ids.size(0), -1, -1)
        embeds = torch.cat([prompts, wte(ids[:, N_VIRTUAL:])], dim=1)  # PeftModelForCausalLM.forward
        return run_model(model, cfg, embeds, torch.arange(t), None)
    return run_model(model, cfg, wte(ids), N_VIRTUAL + torch.arange(t), prefix_of(kind, p))


def nll_sum(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE,
                           reduction="sum")


def packed_loss(kind, model, cfg, p, ids, pos, targets):
    """Sum of NLL of a packed row = its samples run alone."""
    starts = [i for i in range(ids.size(1)) if int(pos[0, i]) == 0] + [ids.size(1)]
    total = 0
    for s, e in zip(starts[:-1], starts[1:]):
        total = total + nll_sum(logits_of(kind, model, cfg, p, ids[:, s:e]), targets[:, s:e])
    return total


def block_diagonal_loss(kind, model, cfg, p, ids, pos, targets):
    """The packed row in one pass with an explicit block-diagonal mask (cross-checks packed_loss)."""
    t = ids.size(1)
    same = torch.zeros(t, t, dtype=torch.bool)
    starts = [i for i in range(t) if int(pos[0, i]) == 0] + [t]
    for s, e in zip(starts[:-1], starts[1:]):
        same[s:e, s:e] = True
    global attend
    plain = attend

    def masked(q, k, v, prefix, scale, group):
        tt = q.size(2)
        mask = same & torch.ones(tt, tt, dtype=torch.bool).tril()
        if prefix is not None:
            pk, pv = prefix
            k = torch.cat([pk[None].expand(k.size(0), -1, -1, -1), k], dim=2)
            v = torch.cat([pv[None].expand(v.size(0), -1, -1, -1), v], dim=2)
            mask = torch.cat([torch.ones(tt, pk.size(1), dtype=torch.bool), mask], dim=1)
        k, v = repeat_kv(k, group), repeat_kv(v, group)
        w = (torch.matmul(q, k.transpose(-1, -2)) * scale).masked_fill(~mask, float("-inf")).softmax(-1)
        return torch.matmul(w, v).transpose(1, 2).reshape(q.size(0), tt, -1)

    attend = masked
    try:
        wte = wte_of(model, cfg)
        emb = wte(ids)
        ppos = pos[0].clone()
        if kind == "prompt":
            emb = emb.clone()
            virtual = ppos < N_VIRTUAL
            emb[0, virtual] = p["embedding.weight"][ppos[virtual]]
            logits = run_model(model, cfg, emb, ppos, None)
        else:
            logits = run_model(model, cfg, emb, ppos + N_VIRTUAL, prefix_of(kind, p))
    finally:
        attend = plain
    return nll_sum(logits, targets)


# ----------------------------------------------------------------------------------------------------------
# Batches (hone's view: ids, next-token targets aligned with positions, position ids)


def sample(gen, vocab, length, kind, last_target):
    """One sample's ids and targets; prompt samples start with the n placeholders (targets -100 before the last)."""
    ids = torch.randint(1, vocab, (length,), generator=gen)
    tg = torch.randint(0, vocab, (length,), generator=gen)
    if kind == "prompt":
        ids[:N_VIRTUAL] = PLACEHOLDER
        tg[: N_VIRTUAL - 1] = IGNORE
    if not last_target:
        tg[-1] = IGNORE
    return ids, tg


def padded_batch(gen, vocab, kind):
    lengths = [T, T - 3]
    ids = torch.full((B, T), PLACEHOLDER, dtype=torch.int64)
    tg = torch.full((B, T), IGNORE, dtype=torch.int64)
    for b, n in enumerate(lengths):
        ids[b, :n], tg[b, :n] = sample(gen, vocab, n, kind, True)
        ids[b, n:] = torch.randint(1, vocab, (T - n,), generator=gen)  # padding: any id, never a target
    tg[0, T // 2] = IGNORE
    return ids, tg


def packed_row(gen, vocab, kind):
    lengths = [9, 5] if kind == "prompt" else [7, 6]
    ids = torch.zeros((1, T_PACKED), dtype=torch.int64)
    tg = torch.full((1, T_PACKED), IGNORE, dtype=torch.int64)
    pos = torch.zeros((1, T_PACKED), dtype=torch.int64)
    c = 0
    for n in lengths:
        ids[0, c : c + n], tg[0, c : c + n] = sample(gen, vocab, n, kind, False)
        pos[0, c : c + n] = torch.arange(n)
        c += n
    ids[0, c:] = PLACEHOLDER
    pos[0, c:] = pos[0, c - 1] + 1 + torch.arange(T_PACKED - c)  # padding continues the last sample's positions
    return ids, pos, tg


# ----------------------------------------------------------------------------------------------------------


def peft_config(kind, cfg, base_name):
    """adapter_config.json as PEFT's save_pretrained writes it (inference_mode true; token_dim and
    num_attention_heads of prefix tuning are the key/value sizes when the model has num_key_value_heads)."""
    C, L, NH, NKV, HD = dims(cfg)
    gqa = "num_key_value_heads" in cfg
    d = {
        "auto_mapping": None,
        "base_model_name_or_path": base_name,
        "inference_mode": True,
        "modules_to_save": None,
        "num_attention_heads": NKV if kind != "prompt" and gqa else NH,
        "num_layers": L,
        "num_transformer_submodules": 1,
        "num_virtual_tokens": N_VIRTUAL,
        "peft_type": "PROMPT_TUNING" if kind == "prompt" else "PREFIX_TUNING",
        "peft_version": "0.18.0",
        "revision": None,
        "task_type": "CAUSAL_LM",
        "token_dim": NKV * HD if kind != "prompt" and gqa else C,
    }
    if kind == "prompt":
        d.update({"prompt_tuning_init": "RANDOM", "prompt_tuning_init_text": None, "tokenizer_kwargs": None,
                  "tokenizer_name_or_path": None})
    else:
        d.update({"encoder_hidden_size": ENCODER_HIDDEN if kind == "prefix_proj" else d["token_dim"],
                  "init_weights": None, "prefix_projection": kind == "prefix_proj"})
    return d


def fd_check(loss_fn, params, gen, h=1e-6):
    """Central differences on float64 for the largest-gradient element and two random ones of every tensor."""
    loss = loss_fn()
    grads = torch.autograd.grad(loss, list(params.values()))
    worst = 0.0
    with torch.no_grad():
        for (name, p), g in zip(params.items(), grads):
            g = g.reshape(-1)
            flat = p.view(-1)
            for idx in [int(g.abs().argmax())] + torch.randint(0, g.numel(), (2,), generator=gen).tolist():
                old = float(flat[idx])
                flat[idx] = old + h
                up = float(loss_fn())
                flat[idx] = old - h
                down = float(loss_fn())
                flat[idx] = old
                fd = (up - down) / (2 * h)
                worst = max(worst, abs(fd - float(g[idx])) / max(1.0, abs(fd)))
    return worst


def make_case(out_dir, kind, base, cfg, model, index):
    gen = torch.Generator().manual_seed(SEED + 100 * index)
    vocab = cfg["vocab_size"]
    p = make_adapter(kind, cfg, gen)
    ids, tg = padded_batch(gen, vocab, kind)
    pids, ppos, ptg = packed_row(gen, vocab, kind)
    name = "%s_%s" % (kind, base)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)

    logits = logits_of(kind, model, cfg, p, ids)
    n_pad, n_pack = int((tg != IGNORE).sum()), int((ptg != IGNORE).sum())
    loss_pad = nll_sum(logits, tg) / n_pad
    g_pad = torch.autograd.grad(loss_pad, list(p.values()))
    loss_pack = packed_loss(kind, model, cfg, p, pids, ppos, ptg) / n_pack
    g_pack = torch.autograd.grad(loss_pack, list(p.values()))
    with torch.no_grad():
        bd = float(block_diagonal_loss(kind, model, cfg, p, pids, ppos, ptg)) / n_pack
    fd = max(fd_check(lambda: nll_sum(logits_of(kind, model, cfg, p, ids), tg) / n_pad, p, gen),
             fd_check(lambda: packed_loss(kind, model, cfg, p, pids, ppos, ptg) / n_pack, p, gen))
    assert fd < 1e-6, "%s: finite differences disagree (%.1e)" % (name, fd)
    assert abs(bd - float(loss_pack)) < 1e-12, "%s: packed row != its samples alone" % name

    ref = {
        "padded.ids": ids.int(), "padded.targets": tg.int(), "padded.logits": logits.detach().float(),
        "packed.ids": pids.int(), "packed.pos": ppos.int(), "packed.targets": ptg.int(),
    }
    for (k, v), gp, gk in zip(p.items(), g_pad, g_pack):
        ref["param." + k] = v.detach().float()
        ref["grad.padded." + k] = gp.float()
        ref["grad.packed." + k] = gk.float()
    save_safetensors(os.path.join(d, "reference.safetensors"), ref)
    with torch.no_grad():
        saved = p["embedding.weight"] if kind == "prompt" else prefix_of(kind, p)  # get_prompt_embedding_to_save
    save_safetensors(os.path.join(d, "adapter_model.safetensors"), {"prompt_embeddings": saved.detach().float()})
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(peft_config(kind, cfg, "tests/fixtures/" + ("gpt2" if base == "gpt2" else "peft/prefix_base_llama")),
                  f, indent=2, sort_keys=True)
        f.write("\n")
    info = {"loss_padded": float(loss_pad), "n_targets_padded": n_pad, "loss_packed": float(loss_pack),
            "n_targets_packed": n_pack, "num_virtual_tokens": N_VIRTUAL}
    if kind == "prefix_proj":
        info["encoder_hidden_size"] = ENCODER_HIDDEN
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
    print("%-18s loss padded %.6f (%d)  packed %.6f (%d)  fd %.1e" % (name, float(loss_pad), n_pad, float(loss_pack),
                                                                     n_pack, fd))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 tools/make_prefix_fixtures.py OUT_DIR")
    out_dir = sys.argv[1]
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    os.makedirs(out_dir, exist_ok=True)
    write_llama_base(os.path.join(out_dir, "prefix_base_llama"), torch.Generator().manual_seed(SEED))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bases = [("gpt2", os.path.join(root, "tests/fixtures/gpt2")), ("llama", os.path.join(out_dir, "prefix_base_llama"))]
    index = 0
    for base, path in bases:
        cfg, model = load_base(path)
        for p in model.parameters():
            p.requires_grad_(False)
        for kind in ("prompt", "prefix", "prefix_proj"):
            make_case(out_dir, kind, base, cfg, model, index)
            index += 1


if __name__ == "__main__":
    main()
