#!/usr/bin/python3
"""Reference for `hone merge-moe`: tiny Llama checkpoints, mergekit-moe configs and the Mixtral tensors each must give.

Usage:  /usr/bin/python3 tools/make_moe_fixtures.py tests/fixtures/moe

Needs torch (Debian's python3-torch). Deterministic: running it twice writes identical files. It writes into <out>/:

  models/<name>/     config.json, model.safetensors (F32): base, expert_a, expert_b, expert_c (tiny Llamas of one
                     shape), wide (intermediate_size 24: a shape mismatch), qwen (model_type qwen2: not Llama);
                     base also has tokenizer.json (byte-level BPE: id = byte value, no merges; <s> = 256 and
                     </s> = 257 as special added tokens) and tokenizer_config.json (bos_token <s>), so a prompt's
                     ids are [256] + its UTF-8 bytes
  configs/<case>.yaml  a mergekit-moe config (paths relative to the repository root, where tests run)
  expected/<case>.safetensors  every output tensor, F32
  cases.json         per case: the config, expected file, tolerance, expected config.json fields

The expected tensors follow mergekit (mergekit/moe/mixtral.py before its transformers-5 rewrite, router.py,
common.py): attention, norms, embeddings and head copied from the base model; experts.e.w1 / w2 / w3 of layer i are
gate_proj / down_proj (times residual_scale) / up_proj of layer i of expert e; the router of layer i has row e =
expert e's gate vector, from get_gate_params computed here in float64:
  hidden       hidden_states[i] (the residual stream entering layer i) at the prompt's last token through the
               BASE model (tools/torch_models.py), averaged over the prompts, minus the negative prompts' average,
               divided by its L2 norm (clamped at 1e-8)
  cheap_embed  the sum of the embedding rows of every token of every prompt, divided by its norm; with negative
               prompts that vector minus the negatives' (normalised the same way), normalised again; every layer
               gets the same vector
Prompts are tokenized as mergekit's tokenize_prompts does: bos_token + prompt, add_special_tokens=False.
"""

import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_safetensors  # noqa: E402
from torch_models import LlamaDecoderLayer  # noqa: E402

ROOT = "tests/fixtures/moe"  # paths inside configs are relative to the repository root
V, C, NH, NKV, HD, I, L = 260, 8, 2, 1, 4, 16, 3
BOS = 256

LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "bos_token_id": BOS,
    "eos_token_id": BOS + 1,
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


def llama_tensors(gen, inter=I):
    def r(*shape, scale=0.5):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).float()

    t = {"model.embed_tokens.weight": r(V, C), "model.norm.weight": 1 + r(C, scale=0.1), "lm_head.weight": r(V, C)}
    for i in range(L):
        p = "model.layers.%d." % i
        t[p + "input_layernorm.weight"] = 1 + r(C, scale=0.1)
        t[p + "post_attention_layernorm.weight"] = 1 + r(C, scale=0.1)
        t[p + "self_attn.q_proj.weight"] = r(NH * HD, C)
        t[p + "self_attn.k_proj.weight"] = r(NKV * HD, C)
        t[p + "self_attn.v_proj.weight"] = r(NKV * HD, C)
        t[p + "self_attn.o_proj.weight"] = r(C, NH * HD)
        t[p + "mlp.gate_proj.weight"] = r(inter, C)
        t[p + "mlp.up_proj.weight"] = r(inter, C)
        t[p + "mlp.down_proj.weight"] = r(C, inter)
    return t


def byte_level_tokenizer():
    """Like tests/unit/testutil.c's test_write_byte_level_tokenizer with <s>, </s>: GPT-2's bytes_to_unicode."""
    vocab, nxt = {}, 256
    for b in range(256):
        printable = ord("!") <= b <= ord("~") or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF
        cp = b if printable else nxt
        nxt += 0 if printable else 1
        vocab[chr(cp)] = b
    added = []
    for k, tok in enumerate(["<s>", "</s>"]):
        vocab[tok] = 256 + k
        added.append({"id": 256 + k, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
    return {"version": "1.0", "added_tokens": added, "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": None, "model": {"type": "BPE", "vocab": vocab, "merges": []},
            "decoder": {"type": "ByteLevel"}}


def write_model(out, name, config, tensors, tokenizer=False):
    d = os.path.join(out, "models", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    save_safetensors(os.path.join(d, "model.safetensors"), tensors)
    if tokenizer:
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            json.dump(byte_level_tokenizer(), f, indent=1, sort_keys=True)
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"bos_token": "<s>", "eos_token": "</s>", "tokenizer_class": "PreTrainedTokenizerFast"}, f,
                      indent=2)


def tokenize(prompt):
    return [BOS] + list(prompt.encode("utf-8"))


# ---- gates (mergekit/moe/router.py), float64 ----


def base_layers(tensors):
    """The base model's decoder layers in float64 (tools/torch_models.py), with its embedding matrix."""
    layers = []
    for i in range(L):
        layer = LlamaDecoderLayer(LLAMA).double()
        sd = {k[len("model.layers.%d." % i):]: v.double() for k, v in tensors.items()
              if k.startswith("model.layers.%d." % i)}
        layer.load_state_dict(sd)
        layers.append(layer)
    return layers


@torch.no_grad()
def hidden_mean(embed, layers, prompts):
    """get_hidden_states(average=False): hidden_states[:-1] at the last token, averaged over the prompts: [L, C]."""
    acc = torch.zeros(L, C, dtype=torch.float64)
    for p in prompts:
        x = embed[torch.tensor(tokenize(p))].unsqueeze(0)
        for i, layer in enumerate(layers):
            acc[i] += x[0, -1]
            x = layer(x)
    return acc / len(prompts)


def unit(v):
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-8)


def cheap_embedding(embed, prompts):
    """get_cheap_embedding: masked sum over tokens and prompts, unit norm, repeated for every layer: [L, C]."""
    h = sum(embed[torch.tensor(tokenize(p))].sum(dim=0) for p in prompts)
    return unit(h.unsqueeze(0)).repeat(L, 1)


def gate_vectors(mode, base, experts):
    embed = base["model.embed_tokens.weight"].double()
    layers = base_layers(base)

    def do_it(prompts):
        return hidden_mean(embed, layers, prompts) if mode == "hidden" else cheap_embedding(embed, prompts)

    vecs = []
    for e in experts:
        h = do_it(e["positive_prompts"])
        if e.get("negative_prompts"):
            h = h - do_it(e["negative_prompts"])
        vecs.append(unit(h))
    return torch.stack(vecs, dim=0).permute(1, 0, 2)  # [L, E, C]


def expected_tensors(mode, models, experts):
    base = models["base"]
    gates = gate_vectors(mode, base, experts)
    out = {k: v for k, v in base.items() if ".mlp." not in k}
    for i in range(L):
        for e, x in enumerate(experts):
            src = models[os.path.basename(x["source_model"])]
            p, q = "model.layers.%d.mlp." % i, "model.layers.%d.block_sparse_moe.experts.%d." % (i, e)
            out[q + "w1.weight"] = src[p + "gate_proj.weight"]
            out[q + "w3.weight"] = src[p + "up_proj.weight"]
            down = src[p + "down_proj.weight"]
            if x.get("residual_scale") is not None:
                down = (down.double() * x["residual_scale"]).float()
            out[q + "w2.weight"] = down
        out["model.layers.%d.block_sparse_moe.gate.weight" % i] = gates[i].float()
    return out


def yaml_config(base, mode, experts, extra=""):
    lines = ["base_model: %s" % base, "gate_mode: %s" % mode, "dtype: float32", "experts_per_token: 2", extra,
             "experts:"]
    for e in experts:
        lines.append("  - source_model: %s" % e["source_model"])
        for key in ("positive_prompts", "negative_prompts"):
            if e.get(key):
                lines.append("    %s:" % key)
                lines.extend("      - %s" % json.dumps(p) for p in e[key])
        if e.get("residual_scale") is not None:
            lines.append("    residual_scale: %r" % e["residual_scale"])
    return "\n".join(line for line in lines if line) + "\n"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else ROOT
    if os.path.exists(out):
        shutil.rmtree(out)
    for sub in ("models", "configs", "expected"):
        os.makedirs(os.path.join(out, sub))
    gen = torch.Generator().manual_seed(11)
    models = {name: llama_tensors(gen) for name in ("base", "expert_a", "expert_b", "expert_c")}
    write_model(out, "base", LLAMA, models["base"], tokenizer=True)
    for name in ("expert_a", "expert_b", "expert_c"):
        write_model(out, name, LLAMA, models[name])
    write_model(out, "wide", dict(LLAMA, intermediate_size=24), llama_tensors(gen, inter=24))
    write_model(out, "qwen", dict(LLAMA, model_type="qwen2", architectures=["Qwen2ForCausalLM"]), models["expert_c"])

    m = lambda name: "%s/models/%s" % (ROOT, name)  # noqa: E731
    cases = {
        "hidden": ("hidden", [
            {"source_model": m("expert_a"), "positive_prompts": ["Solve 12 + 7 =", "What is 3 * 4?"],
             "negative_prompts": ["Write a poem"]},
            {"source_model": m("expert_b"), "positive_prompts": ["Once upon a time, a dragon"]},
            {"source_model": m("expert_c"), "positive_prompts": ["def f(x):\n    return x", "int main() {"],
             "residual_scale": 0.5},
        ]),
        "cheap_embed": ("cheap_embed", [
            {"source_model": m("expert_a"), "positive_prompts": ["numbers 1 2 3"], "negative_prompts": ["story"]},
            {"source_model": m("expert_b"), "positive_prompts": ["Il \u00e9tait une fois", "A tale"],
             "negative_prompts": ["x = 1", "2 + 2"]},
        ]),
    }
    index = {}
    for case, (mode, experts) in sorted(cases.items()):
        with open(os.path.join(out, "configs", case + ".yaml"), "w") as f:
            f.write(yaml_config(m("base"), mode, experts))
        save_safetensors(os.path.join(out, "expected", case + ".safetensors"), expected_tensors(mode, models, experts))
        index[case] = {
            "config": "%s/configs/%s.yaml" % (ROOT, case),
            "expected": "%s/expected/%s.safetensors" % (ROOT, case),
            "rtol": 1e-5,
            "config_json": {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"],
                            "num_local_experts": len(experts), "num_experts_per_tok": 2, "num_hidden_layers": L,
                            "hidden_size": C, "intermediate_size": I, "torch_dtype": "float32",
                            "sliding_window": None},
        }
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
