#!/usr/bin/python3
"""Reference for `hone merge`: tiny checkpoints, mergekit configs and the tensors each config must produce.

Usage:  /usr/bin/python3 tools/make_merge_fixtures.py tests/fixtures/merge

Needs torch and PyYAML (Debian's python3-torch, python3-yaml). Deterministic: running it twice writes identical
files. It writes into <out>/:

  models/<name>/     config.json, model.safetensors (F32), tokenizer.json, tokenizer_config.json:
                     base, ft_a, ft_b, ft_c (fine-tunes: base + different deltas), scaled (1.5 × base: colinear
                     with base, slerp's lerp fallback), big_vocab (a fine-tune with 4 more tokens and its own
                     tokenizer, some ids swapped), gpt2_base, gpt2_ft (GPT-2 layout: Conv1D, biases, tied head),
                     other_vocab (a fine-tune whose tokenizer lacks t3, shares x1/x2 with big_vocab, has tokens of
                     its own, two added tokens and one token beyond its vocab_size)
  expected/<case>.tokenizer.json, .tokenizer_config.json  the tokenizer files of tokenizer_source: union cases
  configs/<case>.yaml  a mergekit config (paths relative to the repository root, where tests run)
  expected/<case>.safetensors  every output tensor, F32 (F16 where the case asks for it)
  cases.json         per case: the config, expected file, tolerances, expected config.json fields
  README.md          what each case exercises

The expected tensors are computed here, independently of hone, from mergekit's semantics
(../shared/reference/ALGORITHMS.md §5 and mergekit's merge_methods/*.py, sparsify.py, config.py, plan.py):
mergekit's architecture tables (pre weights, layer template, post weights) instead of hone's enumeration of the
checkpoint, mergekit's ConfigReader lookup and evaluate_setting, float64 arithmetic on the float32 inputs. Two
things are made identical on purpose so that the comparison can be exact: deltas are taken in float32 (as hone and
mergekit on float32 inputs do) before magnitudes are ranked, and DARE / DELLA masks use hone's counter-based
generator, re-implemented below: element i of the mask of input j of output tensor NAME draws
uniform(key(seed, fnv1a64(NAME) + j), i), where key and uniform are hone_rng_new / hone_rng_uniform
(src/base/rng.c). Ties in magnitude are ranked by position (a stable sort).
"""

import json
import os
import shutil
import sys

import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import load_safetensors, save_safetensors  # noqa: E402

ROOT = "tests/fixtures/merge"  # paths inside configs are relative to the repository root
SEED = 7
MERGE_SEED = 42  # hone merge's default --seed
V, C, NH, NKV, HD, I, L = 32, 8, 2, 1, 4, 16, 4

LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "head_dim": HD,
    "hidden_act": "silu",
    "hidden_size": C,
    "intermediate_size": I,
    "max_position_embeddings": 64,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": NH,
    "num_hidden_layers": L,
    "num_key_value_heads": NKV,
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "vocab_size": V,
}

GPT2 = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_embd": C,
    "n_head": NH,
    "n_layer": 2,
    "n_positions": 16,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
    "vocab_size": V,
}

# mergekit's architecture tables (mergekit/_data/architectures/llama.json, gpt2.json): what the output holds.
LLAMA_ARCH = {
    "pre": ["model.embed_tokens.weight"],
    "layer": ["model.layers.{i}.input_layernorm.weight", "model.layers.{i}.self_attn.q_proj.weight",
              "model.layers.{i}.self_attn.k_proj.weight", "model.layers.{i}.self_attn.v_proj.weight",
              "model.layers.{i}.self_attn.o_proj.weight", "model.layers.{i}.post_attention_layernorm.weight",
              "model.layers.{i}.mlp.up_proj.weight", "model.layers.{i}.mlp.gate_proj.weight",
              "model.layers.{i}.mlp.down_proj.weight"],
    "post": ["model.norm.weight", "lm_head.weight"],
    "embed": {"model.embed_tokens.weight", "lm_head.weight"},
    "layers_key": "num_hidden_layers",
}
GPT2_ARCH = {
    "pre": ["transformer.wte.weight", "transformer.wpe.weight"],
    "layer": ["transformer.h.{i}." + s for s in ["attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                                                 "attn.c_proj.bias", "ln_1.weight", "ln_1.bias", "ln_2.weight",
                                                 "ln_2.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
                                                 "mlp.c_fc.weight", "mlp.c_fc.bias"]],
    "post": ["transformer.ln_f.weight", "transformer.ln_f.bias"],
    "embed": {"transformer.wte.weight"},
    "layers_key": "n_layer",
}

# ---------------------------------------------------------------- hone's random numbers (src/base/rng.c)

M64 = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def rng_key(seed, stream):
    return mix64((seed * 0x9E3779B97F4A7C15 + mix64((stream + 0x632BE59BD9B4E019) & M64)) & M64)


def uniform(key, i):
    return (mix64(key ^ mix64((i + 0x9E3779B97F4A7C15) & M64)) >> 40) / 16777216.0


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def mask_key(name, input_index):
    return rng_key(MERGE_SEED, (fnv1a64(name) + input_index) & M64)


# ---------------------------------------------------------------- models


def llama_tensors(gen, vocab=V, scale=0.5):
    def r(*shape):
        return torch.randn(*shape, generator=gen) * scale

    t = {"model.embed_tokens.weight": r(vocab, C), "lm_head.weight": r(vocab, C), "model.norm.weight": 1 + r(C)}
    for i in range(L):
        p = "model.layers.%d." % i
        t[p + "input_layernorm.weight"] = 1 + r(C)
        t[p + "post_attention_layernorm.weight"] = 1 + r(C)
        t[p + "self_attn.q_proj.weight"] = r(NH * HD, C)
        t[p + "self_attn.k_proj.weight"] = r(NKV * HD, C)
        t[p + "self_attn.v_proj.weight"] = r(NKV * HD, C)
        t[p + "self_attn.o_proj.weight"] = r(C, NH * HD)
        t[p + "mlp.gate_proj.weight"] = r(I, C)
        t[p + "mlp.up_proj.weight"] = r(I, C)
        t[p + "mlp.down_proj.weight"] = r(C, I)
    return t


def gpt2_tensors(gen, scale=0.5):
    def r(*shape):
        return torch.randn(*shape, generator=gen) * scale

    t = {"transformer.wte.weight": r(V, C), "transformer.wpe.weight": r(GPT2["n_positions"], C),
         "transformer.ln_f.weight": 1 + r(C), "transformer.ln_f.bias": r(C)}
    for i in range(GPT2["n_layer"]):
        p = "transformer.h.%d." % i
        t[p + "ln_1.weight"], t[p + "ln_1.bias"] = 1 + r(C), r(C)
        t[p + "ln_2.weight"], t[p + "ln_2.bias"] = 1 + r(C), r(C)
        t[p + "attn.c_attn.weight"], t[p + "attn.c_attn.bias"] = r(C, 3 * C), r(3 * C)
        t[p + "attn.c_proj.weight"], t[p + "attn.c_proj.bias"] = r(C, C), r(C)
        t[p + "mlp.c_fc.weight"], t[p + "mlp.c_fc.bias"] = r(C, 4 * C), r(4 * C)
        t[p + "mlp.c_proj.weight"], t[p + "mlp.c_proj.bias"] = r(4 * C, C), r(C)
    return t


def added_token(tok_id, content, special, normalized):
    """An added_tokens entry of tokenizer.json, fields in the order the tokenizers library writes them."""
    return {"id": tok_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": normalized, "special": special}


def tokenizer_json(tokens, added=()):
    """A minimal BPE tokenizer.json whose vocabulary is `tokens` (id = position; None leaves the id to an added
    token) with the added tokens `added`."""
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": list(added), "normalizer": None,
            "pre_tokenizer": None, "post_processor": None, "decoder": {"type": "Fuse"},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "vocab": {t: i for i, t in enumerate(tokens) if t is not None}, "merges": []}}


BASE_TOKENS = ["t%d" % i for i in range(V)]
# big_vocab's tokenizer: t5 and t9 swap ids, and four new tokens follow.
BIG_TOKENS = list(BASE_TOKENS)
BIG_TOKENS[5], BIG_TOKENS[9] = BIG_TOKENS[9], BIG_TOKENS[5]
BIG_TOKENS += ["x0", "x1", "x2", "x3"]
# other_vocab's tokenizer: no t3; y0 and x1 plain; <|sep|> (special) and x2 added tokens at ids 33 and 34; z9 at
# id 35, beyond its vocab_size of 35 (padding: mergekit ignores it).
OTHER_TOKENS = [t for t in BASE_TOKENS if t != "t3"] + ["y0", "x1", None, None, "z9"]
OTHER_ADDED = [added_token(33, "<|sep|>", True, False), added_token(34, "x2", False, False)]
TEMPLATE_A = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
TEMPLATE_B = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"


def write_model(out, name, config, tensors, tokens, template, added=()):
    d = os.path.join(out, "models", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    save_safetensors(os.path.join(d, "model.safetensors"), {k: v.float().contiguous() for k, v in tensors.items()})
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(tokens, added), f, indent=2)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template}, f, indent=2)


def make_models(out):
    gen = torch.Generator().manual_seed(SEED)
    base = llama_tensors(gen)
    models = {"base": base}
    for name, scale in [("ft_a", 0.1), ("ft_b", 0.1), ("ft_c", 0.15)]:
        models[name] = {k: v + torch.randn(v.shape, generator=gen) * scale for k, v in base.items()}
    models["scaled"] = {k: 1.5 * v for k, v in base.items()}
    big = {k: v + torch.randn(v.shape, generator=gen) * 0.1 for k, v in base.items()}
    for k in ["model.embed_tokens.weight", "lm_head.weight"]:
        rows = torch.cat([big[k], torch.randn(4, C, generator=gen) * 0.5])  # rows of the base's token order...
        rows[[5, 9]] = rows[[9, 5]]  # ...stored in big_vocab's own order
        big[k] = rows
    models["big_vocab"] = big
    gpt2_base = gpt2_tensors(gen)
    models["gpt2_base"] = gpt2_base
    models["gpt2_ft"] = {k: v + torch.randn(v.shape, generator=gen) * 0.1 for k, v in gpt2_base.items()}
    other = {k: v + torch.randn(v.shape, generator=gen) * 0.1 for k, v in base.items()}
    for k in ["model.embed_tokens.weight", "lm_head.weight"]:  # 35 rows in other_vocab's order (z9 has none)
        keep = [i for i in range(V) if i != 3]
        other[k] = torch.cat([other[k][keep], torch.randn(4, C, generator=gen) * 0.5])
    models["other_vocab"] = other
    # float32 as stored; the reference reads them back from the files below
    configs = {n: dict(LLAMA) for n in models}
    configs["big_vocab"]["vocab_size"] = V + 4
    configs["other_vocab"]["vocab_size"] = V + 3
    configs["gpt2_base"] = configs["gpt2_ft"] = GPT2
    for n, t in models.items():
        tokens = {"big_vocab": BIG_TOKENS, "other_vocab": OTHER_TOKENS}.get(n, BASE_TOKENS)
        template = TEMPLATE_B if n == "ft_b" else TEMPLATE_A
        write_model(out, n, configs[n], t, tokens, template, OTHER_ADDED if n == "other_vocab" else ())


def model_path(name):
    return ROOT + "/models/" + name


def load_models(out):
    res = {}
    for name in sorted(os.listdir(os.path.join(out, "models"))):
        d = os.path.join(out, "models", name)
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        with open(os.path.join(d, "tokenizer.json")) as f:
            tok = json.load(f)
        vocab = dict(tok["model"]["vocab"], **{a["content"]: a["id"] for a in tok["added_tokens"]})  # get_vocab()
        res[model_path(name)] = {"config": cfg, "tensors": load_safetensors(os.path.join(d, "model.safetensors")),
                                 "vocab": vocab, "added": tok["added_tokens"], "dir": d,
                                 "arch": GPT2_ARCH if cfg["model_type"] == "gpt2" else LLAMA_ARCH}
    return res


# ---------------------------------------------------------------- mergekit's config semantics


def evaluate_setting(tensor_name, setting, t):
    """mergekit.config.evaluate_setting; None when a filter list has no match."""
    if isinstance(setting, (float, int, bool)):
        return float(setting)
    if isinstance(setting, dict):
        setting = [setting]
    if all(isinstance(e, (int, float)) for e in setting):
        scaled = t * (len(setting) - 1)
        i0 = int(scaled)
        i1 = min(len(setting) - 1, i0 + 1)
        frac = scaled - i0
        return (1 - frac) * setting[i0] + frac * setting[i1]
    for cond in setting:
        f = cond.get("filter")
        if f is None or f == "*" or f in tensor_name:
            return evaluate_setting(tensor_name, cond["value"], t)
    return None


def parameter(cfg, out_slice, name, model, tensor_name, t):
    """mergekit.config.ConfigReader.parameter: sources, then the slice, then the global parameters."""
    if model is not None:
        for s in out_slice["sources"]:
            if s["model"] == model and name in (s.get("parameters") or {}):
                v = evaluate_setting(tensor_name, s["parameters"][name], t)
                if v is not None:
                    return v
    for params in [out_slice.get("parameters") or {}, cfg.get("parameters") or {}]:
        if name in params:
            v = evaluate_setting(tensor_name, params[name], t)
            if v is not None:
                return v
    return None


METHODS = {  # name: (task arithmetic, consensus, sparsify, default normalize, default rescale)
    "linear": (False, False, None, True, False),
    "slerp": (False, False, None, False, False),
    "model_stock": (False, False, None, False, False),
    "passthrough": (False, False, None, False, False),
    "task_arithmetic": (True, False, None, False, False),
    "ties": (True, True, "magnitude", True, False),
    "dare_linear": (True, False, "random", False, True),
    "dare_ties": (True, True, "random", False, True),
    "breadcrumbs": (True, False, "outliers", False, False),
    "breadcrumbs_ties": (True, True, "outliers", False, False),
    "della": (True, True, "della", True, True),
    "della_linear": (True, False, "della", False, True),
}


def normalized_slices(cfg, models):
    """mergekit's MergePlanner.normalize_config: `models:` becomes one slice over all layers (+ the base)."""
    if "slices" in cfg:
        return cfg["slices"]
    sources = []
    for m in cfg["models"]:
        n = models[m["model"]]["config"][models[m["model"]]["arch"]["layers_key"]]
        sources.append({"model": m["model"], "layer_range": [0, n], "parameters": m.get("parameters")})
    base = cfg.get("base_model")
    if base and base not in [s["model"] for s in sources]:
        n = models[base]["config"][models[base]["arch"]["layers_key"]]
        sources.append({"model": base, "layer_range": [0, n]})
    return [{"sources": sources}]


def plan(cfg, models):
    """[(output name, [(model, input name)], t, slice)] in mergekit's order."""
    slices = normalized_slices(cfg, models)
    arch = models[slices[0]["sources"][0]["model"]]["arch"]
    out = []
    for name in arch["pre"]:
        out.append((name, [(s["model"], name) for s in slices[0]["sources"]], 0.0, slices[0]))
    layer = 0
    for s in slices:
        n = s["sources"][0]["layer_range"][1] - s["sources"][0]["layer_range"][0]
        for k in range(n):
            t = k / (n - 1) if n > 1 else 1.0
            for tmpl in arch["layer"]:
                ins = [(src["model"], tmpl.format(i=src["layer_range"][0] + k)) for src in s["sources"]]
                out.append((tmpl.format(i=layer), ins, t, s))
            layer += 1
    for name in arch["post"]:
        if not any(name in models[s["model"]]["tensors"] for s in slices[-1]["sources"]):
            continue  # the optional lm_head of tied models
        out.append((name, [(s["model"], name) for s in slices[-1]["sources"]], 0.0, slices[-1]))
    return out, layer


# ---------------------------------------------------------------- methods (float64 unless stated)


def rank_keep(d32, lo, hi):
    """Mask of the elements whose ascending rank by |d| (ties by position) is in [lo, hi)."""
    order = torch.sort(d32.abs().flatten(), stable=True).indices
    mask = torch.zeros(d32.numel(), dtype=torch.bool)
    mask[order[lo:hi]] = True
    return mask.reshape(d32.shape)


def sparsify(d32, method, density, gamma, epsilon, rescale, key):
    """mergekit's sparsify on a float32 delta; returns float64."""
    d = d32.double()
    if method is None or density >= 1:
        return d
    n = d32.numel()
    if method == "magnitude":
        k = int(density * n)
        assert k > 0
        mask = rank_keep(d32, n - k, n)
    elif method == "outliers":
        target, n_top = int(density * n), int(gamma * n)
        n_bot = n - target - n_top
        if n_bot < 0:
            n_top += n_bot
            n_bot = 0
        mask = rank_keep(d32, n_bot, n - n_top) if n_top > 0 else torch.zeros(d32.shape, dtype=torch.bool)
    elif method == "random":
        mask = torch.tensor([uniform(key, i) < density for i in range(n)]).reshape(d32.shape)
    elif method == "della":
        rows = d32.reshape(1, -1) if d32.dim() == 1 else d32
        cols = rows.shape[1]
        m = torch.zeros(rows.shape, dtype=torch.bool)
        for r in range(rows.shape[0]):
            order = torch.sort(rows[r].abs(), stable=True).indices
            for rank, j in enumerate(order.tolist()):
                p = (density - epsilon) + rank / (cols - 1) * 2 * epsilon
                m[r, j] = uniform(key, r * cols + j) < p
        mask = m.reshape(d32.shape)
    masked = d * mask
    if rescale:
        before, after = d.abs().sum().item(), masked.abs().sum().item()
        if before >= 1e-7 and after >= 1e-7:
            masked = masked * (before / after)
    return masked


def slerp(t, a, b):
    na, nb = a.norm().item(), b.norm().item()
    an = a / na if na > 1e-8 else a
    bn = b / nb if nb > 1e-8 else b
    dot = (an * bn).sum().item()
    if abs(dot) > 0.9995:
        return (1 - t) * a + t * b
    theta = torch.acos(torch.tensor(dot, dtype=torch.float64)).item()
    s = torch.sin(torch.tensor(theta, dtype=torch.float64)).item()
    s0 = torch.sin(torch.tensor(theta - theta * t, dtype=torch.float64)).item() / s
    s1 = torch.sin(torch.tensor(theta * t, dtype=torch.float64)).item() / s
    return s0 * a + s1 * b


def model_stock(w0, ws, filter_wise):
    shape = w0.shape
    if filter_wise:
        w0 = w0.reshape(1, -1) if w0.dim() == 1 else w0.reshape(-1, shape[-1])
        ws = [w.reshape(w0.shape) for w in ws]
    else:
        w0, ws = w0.reshape(1, -1), [w.reshape(1, -1) for w in ws]
    offsets = [w - w0 for w in ws]
    cos = []
    for i in range(len(offsets)):
        for j in range(i + 1, len(offsets)):
            norm = offsets[i].norm(dim=-1) * offsets[j].norm(dim=-1)
            cos.append(((offsets[i] * offsets[j]).sum(dim=-1) / norm.clamp(min=1e-6)).clamp(-1, 1))
    c = torch.stack(cos).mean(dim=0).unsqueeze(-1)
    n = len(ws)
    t = n * c / (1 + (n - 1) * c)
    return (t * (sum(ws) / n) + (1 - t) * w0).reshape(shape)


def tokenizer_source(cfg):
    tok = cfg.get("tokenizer")  # a TokenizerConfig, even an empty one, is truthy: source defaults to union
    return cfg.get("tokenizer_source") or (tok.get("source", "union") if tok is not None else None)


def referenced_models(cfg):
    """The base model, then the others in config order. mergekit's referenced_models() is a set; its tokenizer
    loop therefore has no defined order, and hone documents this one."""
    base = cfg.get("base_model") or cfg["models"][0]["model"]
    return [base] + [m["model"] for m in cfg["models"] if m["model"] != base]


def union_tokenizer(cfg, models):
    """mergekit's build_union_tokenizer: the base vocabulary (ids below its vocab_size), then the tokens the base
    lacks, each model's (ids below its vocab_size) in id order: plain tokens through add_tokens(str) (normalized,
    not special), then the added tokens with the settings of the first model that has them. Returns the output
    vocabulary by id and the entries appended to the base tokenizer's added_tokens."""
    refs = referenced_models(cfg)
    base = models[refs[0]]
    base_vocab = {t: i for t, i in base["vocab"].items() if i < base["config"]["vocab_size"]}
    by_id = sorted(base_vocab, key=base_vocab.get)
    assert [base_vocab[t] for t in by_id] == list(range(len(by_id)))
    out_vocab, out_added = [], {}
    for m in refs:
        size = models[m]["config"]["vocab_size"]
        vocab = models[m]["vocab"]
        for tok in sorted(vocab, key=vocab.get):
            if vocab[tok] < size and tok not in out_vocab:
                out_vocab.append(tok)
        for a in sorted(models[m]["added"], key=lambda a: a["id"]):
            if a["id"] < size and a["content"] not in out_added:
                out_added[a["content"]] = a
    appended = []
    for tok in out_vocab:
        if tok not in out_added and tok not in base_vocab:
            appended.append(added_token(len(by_id), tok, False, True))
            by_id.append(tok)
    for tok, a in out_added.items():
        if tok not in base_vocab:
            appended.append(dict(a, id=len(by_id)))
            by_id.append(tok)
    return by_id, appended


def permuted_embeddings(cfg, models, inputs, base):
    """mergekit's BuildTokenizer + PermutedEmbeddings for tokenizer_source base, union or a model."""
    src = tokenizer_source(cfg)
    donor = base if src in ("base", "union") else src
    vocab = models[donor]["vocab"]
    if src in ("base", "union"):
        vocab = {t: i for t, i in vocab.items() if i < models[donor]["config"]["vocab_size"]}
    by_id = union_tokenizer(cfg, models)[0] if src == "union" else sorted(vocab, key=lambda t: vocab[t])
    perms = {}
    for m, _ in inputs:
        mv = models[m]["vocab"]
        perms[m] = [mv[t] if t in mv and mv[t] < models[m]["config"]["vocab_size"] else -1 for t in by_id]
    out = {}
    for m, x in inputs:
        new = torch.zeros(len(by_id), x.shape[1], dtype=torch.float64)
        for r in range(len(by_id)):
            if perms[m][r] >= 0:
                new[r] = x[perms[m][r]]
                continue
            have = [(mm, xx) for mm, xx in inputs if perms[mm][r] >= 0]
            if len(have) == 1:
                new[r] = have[0][1][perms[have[0][0]][r]]
            elif not have:
                pass
            elif base is not None and perms.get(base, [-1] * len(by_id))[r] >= 0:
                new[r] = dict(inputs)[base][perms[base][r]]
            else:
                new[r] = sum(xx[perms[mm][r]] for mm, xx in have) / len(have)
        out[m] = new
    return out


def merge_tensor(cfg, models, name, ins, t, out_slice):
    method = cfg["merge_method"]
    gta, consensus, sp, default_norm, default_rescale = METHODS[method]
    base = out_slice.get("base_model") or cfg.get("base_model")
    dtype = cfg.get("dtype")

    def load(m, n):
        x = models[m]["tensors"].get(n)
        if x is None and n == "lm_head.weight":
            x = models[m]["tensors"][models[m]["arch"]["pre"][0]]
        if dtype == "bfloat16":
            x = x.to(torch.bfloat16)
        return x.float()

    xs = [(m, load(m, n)) for m, n in ins]
    in_names = dict(ins)
    is_embed = name in models[ins[0][0]]["arch"]["embed"]
    if is_embed and tokenizer_source(cfg):
        perm = permuted_embeddings(cfg, models, xs, base)
        xs = [(m, perm[m].float()) for m, _ in xs]
    elif is_embed and len({x.shape for _, x in xs}) > 1:
        if gta:
            bs = dict(xs)[base].shape
            xs = [(m, x[: bs[0], : bs[1]]) for m, x in xs]
        else:
            r, c = min(x.shape[0] for _, x in xs), min(x.shape[1] for _, x in xs)
            xs = [(m, x[:r, :c]) for m, x in xs]

    def gparam(p, default):
        v = parameter(cfg, out_slice, p, None, name, t)
        return default if v is None else v

    def mparam(p, m, default):
        v = parameter(cfg, out_slice, p, m, in_names[m], t)
        return default if v is None else v

    if method == "passthrough":
        (m, x), = xs
        s = mparam("scale", m, None)
        return x.double() * s if s is not None else x.double()
    if method == "linear":
        w = [mparam("weight", m, None) for m, _ in xs]
        res = sum(wi * x.double() for wi, (_, x) in zip(w, xs))
        return res / sum(w) if gparam("normalize", default_norm) else res
    if method == "slerp":
        d = dict(xs)
        other = [m for m, _ in xs if m != base][0]
        return slerp(gparam("t", None), d[base].double(), d[other].double())
    if method == "model_stock":
        d = dict(xs)
        return model_stock(d[base].double(), [x.double() for m, x in xs if m != base], gparam("filter_wise", 0))
    # generalized task arithmetic
    normalize, rescale = gparam("normalize", default_norm), gparam("rescale", default_rescale)
    lam = gparam("lambda", 1.0)
    b32 = dict(xs)[base]
    deltas, weights = [], []
    for j, (m, x) in enumerate(xs):
        if m == base:
            continue
        d32 = x - b32  # float32, as hone and mergekit take it
        deltas.append(sparsify(d32, sp, mparam("density", m, 1.0), mparam("gamma", m, 0.01),
                               mparam("epsilon", m, 0.15), rescale, mask_key(name, j)))
        weights.append(mparam("weight", m, None))
    if not deltas:
        return b32.double()
    D = torch.stack([w * d for w, d in zip(weights, deltas)])
    W = torch.tensor(weights, dtype=torch.float64).reshape([-1] + [1] * b32.dim())
    if consensus:
        majority = torch.where(D.sum(0) >= 0, 1.0, -1.0).double()
        mask = D.sign() == majority
        mixed = (D * mask).sum(0)
        divisor = (W * mask).sum(0)
        divisor[divisor == 0] = 1
    else:
        mixed = D.sum(0)
        divisor = W.sum()
        if abs(divisor) < 1e-8:
            divisor = 1.0
    if normalize:
        mixed = mixed / divisor
    return b32.double() + lam * mixed


# ---------------------------------------------------------------- cases

P = model_path
CASES = []


def case(name, what, cfg, atol=2e-6, rtol=2e-6, out_dtype=None, layers=L, vocab_size=None):
    CASES.append({"name": name, "what": what, "config": cfg, "atol": atol, "rtol": rtol, "out_dtype": out_dtype,
                  "layers": layers, "vocab_size": vocab_size})


case("linear", "linear, three models, normalize (default), a gradient weight and a filter-list weight", {
    "merge_method": "linear",
    "models": [
        {"model": P("ft_a"), "parameters": {"weight": [1.0, 0.2, 0.6]}},
        {"model": P("ft_b"), "parameters": {"weight": [{"filter": "mlp", "value": 0.1}, {"value": 0.7}]}},
        {"model": P("ft_c"), "parameters": {"weight": 0.4}},
    ],
    "dtype": "float32",
})
case("linear_nonorm", "linear without normalize; weights given globally, one overridden per model", {
    "merge_method": "linear",
    "models": [{"model": P("ft_a")}, {"model": P("ft_b"), "parameters": {"weight": -0.25}}],
    "parameters": {"weight": 0.75, "normalize": False},
})
case("slerp", "slerp over slices with the classic per-layer t gradients for self_attn / mlp and 0.5 elsewhere", {
    "slices": [{"sources": [{"model": P("base"), "layer_range": [0, 4]}, {"model": P("ft_a"), "layer_range": [0, 4]}]}],
    "merge_method": "slerp",
    "base_model": P("base"),
    "parameters": {"t": [{"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]},
                         {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]}, {"value": 0.5}]},
    "dtype": "float32",
})
case("slerp_lerp", "slerp of colinear tensors (1.5 × base): mergekit's lerp fallback", {
    "merge_method": "slerp",
    "base_model": P("base"),
    "models": [{"model": P("base")}, {"model": P("scaled")}],
    "parameters": {"t": 0.3},
})
case("task_arithmetic", "task arithmetic, a negative weight, lambda 0.8, base not listed among the models", {
    "merge_method": "task_arithmetic",
    "base_model": P("base"),
    "models": [{"model": P("ft_a"), "parameters": {"weight": 1.0}},
               {"model": P("ft_b"), "parameters": {"weight": -0.5}}],
    "parameters": {"lambda": 0.8},
})
case("ties", "TIES: magnitude top-k (density gradient and filter), sign election, normalize (default)", {
    "merge_method": "ties",
    "base_model": P("base"),
    "models": [{"model": P("base")},
               {"model": P("ft_a"), "parameters": {"density": [0.9, 0.3], "weight": 0.6}},
               {"model": P("ft_b"), "parameters": {"density": 0.5, "weight": [{"filter": "o_proj", "value": 0.1},
                                                                              {"value": 0.5}]}},
               {"model": P("ft_c"), "parameters": {"density": 0.7, "weight": 0.3}}],
    "parameters": {"int8_mask": True},
    "dtype": "float32",
})
case("ties_rescale", "TIES without normalize, with rescale (L1 norm of each delta restored), lambda 1.2", {
    "merge_method": "ties",
    "base_model": P("base"),
    "models": [{"model": P("ft_a"), "parameters": {"density": 0.4, "weight": 1.0}},
               {"model": P("ft_b"), "parameters": {"density": 0.6, "weight": 0.8}}],
    "parameters": {"normalize": False, "rescale": True, "lambda": 1.2},
})
case("dare_linear", "DARE (random keep, L1 rescale by default), linear mixing; masks from hone's generator, seed 42", {
    "merge_method": "dare_linear",
    "base_model": P("base"),
    "models": [{"model": P("ft_a"), "parameters": {"density": 0.6, "weight": 0.5}},
               {"model": P("ft_b"), "parameters": {"density": [0.3, 0.8], "weight": 0.5}}],
})
case("dare_ties", "DARE with sign election and normalize", {
    "merge_method": "dare_ties",
    "base_model": P("base"),
    "models": [{"model": P("ft_a"), "parameters": {"density": 0.5, "weight": 0.7}},
               {"model": P("ft_b"), "parameters": {"density": 0.5, "weight": 0.4}},
               {"model": P("ft_c"), "parameters": {"density": 0.4, "weight": 0.3}}],
    "parameters": {"normalize": True},
})
case("breadcrumbs", "breadcrumbs with gamma 0.01: int(0.01 n) = 0 on tensors under 100 elements drops the whole "
     "delta (mergekit's indices[n_bot:-0]); the embeddings (256) lose their top 2", {
         "merge_method": "breadcrumbs",
         "base_model": P("base"),
         "models": [{"model": P("ft_a"), "parameters": {"density": 0.7, "weight": 1.0}},
                    {"model": P("ft_b"), "parameters": {"density": 0.9, "weight": 0.5}}],
     })
case("breadcrumbs_ties", "breadcrumbs with gamma 0.1 and 0.3, sign election; density 0.95 makes n_bot negative", {
    "merge_method": "breadcrumbs_ties",
    "base_model": P("base"),
    "models": [{"model": P("ft_a"), "parameters": {"density": 0.6, "gamma": 0.1, "weight": 0.6}},
               {"model": P("ft_b"), "parameters": {"density": 0.95, "gamma": 0.3, "weight": 0.4}}],
    "parameters": {"normalize": True},
})
case("della", "DELLA: rank-dependent keep probability within rows, rescale, sign election, normalize", {
    "merge_method": "della",
    "base_model": P("base"),
    "models": [{"model": P("ft_a"), "parameters": {"density": 0.5, "epsilon": 0.1, "weight": 0.6}},
               {"model": P("ft_b"), "parameters": {"density": 0.6, "weight": 0.4}}],
})
case("della_linear", "DELLA without sign election, lambda 1.1", {
    "merge_method": "della_linear",
    "base_model": P("base"),
    "models": [{"model": P("ft_a"), "parameters": {"density": 0.6, "epsilon": 0.2, "weight": 0.5}},
               {"model": P("ft_c"), "parameters": {"density": 0.5, "epsilon": 0.05, "weight": 0.5}}],
    "parameters": {"lambda": 1.1},
})
case("model_stock", "Model Stock over three fine-tunes", {
    "merge_method": "model_stock",
    "base_model": P("base"),
    "models": [{"model": P("ft_a")}, {"model": P("ft_b")}, {"model": P("ft_c")}],
})
case("model_stock_filter_wise", "Model Stock per row (filter_wise)", {
    "merge_method": "model_stock",
    "base_model": P("base"),
    "models": [{"model": P("base")}, {"model": P("ft_a")}, {"model": P("ft_c")}],
    "parameters": {"filter_wise": True},
})
case("passthrough", "frankenmerge: slices of three models renumbered into 5 layers, per-tensor scale by filter; "
     "embeddings from the first slice's model, norm and lm_head from the last's", {
         "slices": [
             {"sources": [{"model": P("base"), "layer_range": [0, 2]}]},
             {"sources": [{"model": P("ft_a"), "layer_range": [1, 3],
                           "parameters": {"scale": [{"filter": "o_proj", "value": 0.5},
                                                    {"filter": "down_proj", "value": 0.25}]}}]},
             {"sources": [{"model": P("ft_b"), "layer_range": [3, 4]}], "parameters": {"scale": 2.0}},
         ],
         "merge_method": "passthrough",
     }, layers=5)
case("linear_vocab", "linear over embeddings of 32 and 36 rows: mergekit takes the common sub-matrix", {
    "merge_method": "linear",
    "models": [{"model": P("base"), "parameters": {"weight": 0.5}},
               {"model": P("big_vocab"), "parameters": {"weight": 0.5}}],
})
case("task_arithmetic_vocab", "task arithmetic with a bigger-vocabulary fine-tune: cut to the base's 32 rows", {
    "merge_method": "task_arithmetic",
    "base_model": P("base"),
    "models": [{"model": P("big_vocab"), "parameters": {"weight": 0.7}},
               {"model": P("ft_a"), "parameters": {"weight": 0.3}}],
})
case("tokenizer_base", "tokenizer_source: base — big_vocab's rows mapped to the base vocabulary by token text "
     "(t5/t9 swapped back), new tokens dropped", {
         "merge_method": "linear",
         "base_model": P("base"),
         "models": [{"model": P("base"), "parameters": {"weight": 0.4}},
                    {"model": P("big_vocab"), "parameters": {"weight": 0.6}}],
         "tokenizer_source": "base",
     }, vocab_size=V)
case("tokenizer_model", "tokenizer_source: big_vocab — 36 rows; tokens the base lacks take big_vocab's rows", {
    "merge_method": "ties",
    "base_model": P("base"),
    "models": [{"model": P("big_vocab"), "parameters": {"weight": 0.6, "density": 0.5}},
               {"model": P("ft_a"), "parameters": {"weight": 0.4, "density": 0.5}}],
    "tokenizer_source": P("big_vocab"),
}, vocab_size=V + 4)
case("tokenizer_union", "tokenizer_source: union — base, big_vocab and other_vocab: 38 rows; each token's row from "
     "the only model that has it, else the base's, else the mean; other_vocab's padding token dropped", {
         "merge_method": "linear",
         "base_model": P("base"),
         "models": [{"model": P("base"), "parameters": {"weight": 0.3}},
                    {"model": P("big_vocab"), "parameters": {"weight": 0.4}},
                    {"model": P("other_vocab"), "parameters": {"weight": 0.3}}],
         "tokenizer_source": "union",
     }, vocab_size=V + 6)
case("tokenizer_block_union", "tokenizer: {} (source union by default) with TIES: the base's rows in rows other "
     "models lack", {
         "merge_method": "ties",
         "base_model": P("base"),
         "models": [{"model": P("other_vocab"), "parameters": {"weight": 0.7, "density": 0.6}},
                    {"model": P("big_vocab"), "parameters": {"weight": 0.5, "density": 0.6}}],
         "tokenizer": {},
     }, vocab_size=V + 6)
case("bf16_in_f16_out", "dtype bfloat16 (inputs rounded to bf16 on load), out_dtype float16", {
    "merge_method": "linear",
    "models": [{"model": P("ft_a"), "parameters": {"weight": 0.5}},
               {"model": P("ft_b"), "parameters": {"weight": 0.5}}],
    "dtype": "bfloat16",
    "out_dtype": "float16",
}, atol=1e-3, rtol=1e-3, out_dtype="float16")
case("gpt2_ties", "GPT-2 layout (Conv1D weights, biases, wte/wpe before the layers, ln_f after, tied head)", {
    "merge_method": "ties",
    "base_model": P("gpt2_base"),
    "models": [{"model": P("gpt2_ft"), "parameters": {"density": 0.5, "weight": 1.0}}],
}, layers=2)


def write_union_tokenizer(cfg, models, prefix):
    """The tokenizer files mergekit's save_pretrained writes for a union: the base tokenizer.json with the new
    added_tokens, tokenizer_config.json with them in added_tokens_decoder."""
    appended = union_tokenizer(cfg, models)[1]
    d = models[referenced_models(cfg)[0]]["dir"]
    with open(os.path.join(d, "tokenizer.json")) as f:
        tok = json.load(f)
    tok["added_tokens"] += appended
    with open(os.path.join(d, "tokenizer_config.json")) as f:
        tc = json.load(f)
    fields = ["content", "lstrip", "normalized", "rstrip", "single_word", "special"]
    tc.setdefault("added_tokens_decoder", {}).update({str(a["id"]): {k: a[k] for k in fields} for a in appended})
    for name, obj in [("tokenizer.json", tok), ("tokenizer_config.json", tc)]:
        with open(prefix + "." + name, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else ROOT
    torch.manual_seed(SEED)
    for sub in ["models", "configs", "expected"]:
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        os.makedirs(os.path.join(out, sub))
    make_models(out)
    models = load_models(out)
    index = []
    for c in CASES:
        with open(os.path.join(out, "configs", c["name"] + ".yaml"), "w") as f:
            f.write("# %s\n" % c["what"])
            yaml.safe_dump(c["config"], f, sort_keys=False, default_flow_style=None)
        cfg = yaml.safe_load(open(os.path.join(out, "configs", c["name"] + ".yaml")))  # what mergekit would read
        entries, layers = plan(cfg, models)
        assert layers == c["layers"], (c["name"], layers)
        result = {}
        for name, ins, t, s in entries:
            x = merge_tensor(cfg, models, name, ins, t, s).float()
            result[name] = x.to(torch.float16) if c["out_dtype"] == "float16" else x
        save_safetensors(os.path.join(out, "expected", c["name"] + ".safetensors"), result)
        if tokenizer_source(cfg) == "union":
            write_union_tokenizer(cfg, models, os.path.join(out, "expected", c["name"]))
        index.append({k: c[k] for k in ["name", "what", "atol", "rtol", "layers", "vocab_size", "out_dtype"]})
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("# Merge fixtures (generated by tools/make_merge_fixtures.py; do not edit)\n\n"
                "Tiny Llama-shaped (hidden %d, %d layers, vocabulary %d) and GPT-2-shaped checkpoints in `models/`,\n"
                "mergekit configs in `configs/`, and in `expected/` the tensors each config must produce, computed\n"
                "in float64 from mergekit's semantics by the script (see its docstring). `tests/unit/test_merge.c`\n"
                "runs every config through `hone_merge_run` and compares.\n\n| case | exercises | atol | rtol |\n"
                "|---|---|---|---|\n" % (C, L, V))
        for c in CASES:
            f.write("| %s | %s | %g | %g |\n" % (c["name"], c["what"], c["atol"], c["rtol"]))


if __name__ == "__main__":
    main()
