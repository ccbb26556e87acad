"""Plain-PyTorch re-implementations of the Hugging Face causal LMs that hone supports.

Shared by tools/make_fixtures.py (the numerical oracle for the C tests) and bench/pytorch_train_step.py.
Needs only torch (Debian's python3-torch, 1.13); no transformers.

The math follows transformers exactly (modeling_gpt2.py, modeling_llama.py, modeling_mistral.py,
modeling_qwen2.py) with dropout disabled, and the module tree mirrors theirs so that `named_parameters()`
yields the tensor names that `save_pretrained` writes:

  GPT2LMHeadModel   transformer.wte.weight, transformer.wpe.weight, transformer.h.{i}.ln_1.{weight,bias},
                    transformer.h.{i}.attn.c_attn.{weight,bias}, transformer.h.{i}.attn.c_proj.{weight,bias},
                    transformer.h.{i}.ln_2.{weight,bias}, transformer.h.{i}.mlp.c_fc.{weight,bias},
                    transformer.h.{i}.mlp.c_proj.{weight,bias}, transformer.ln_f.{weight,bias}
                    (lm_head tied to wte, not a parameter of its own)
  LlamaForCausalLM  model.embed_tokens.weight, model.layers.{i}.input_layernorm.weight,
  (llama, mistral,  model.layers.{i}.self_attn.{q,k,v,o}_proj.{weight[,bias]},
   qwen2)           model.layers.{i}.post_attention_layernorm.weight, model.layers.{i}.mlp.{gate,up,down}_proj.weight,
                    model.norm.weight, lm_head.weight (absent when tie_word_embeddings)
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------------------
# GPT-2


class Conv1D(nn.Module):
    """transformers.pytorch_utils.Conv1D: a linear layer whose weight is stored [in, out]; y = x @ W + b."""

    def __init__(self, n_out, n_in):
        super().__init__()
        self.n_out = n_out
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight).view(*x.shape[:-1], self.n_out)


def gelu_new(x):
    """transformers' NewGELUActivation ("gelu_new"): the tanh approximation of GELU."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def causal_mask(t, device):
    """[T, T] bool, True where key position s <= query position t (allowed)."""
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


class GPT2Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["n_embd"]
        self.n_head = cfg["n_head"]
        self.head_dim = c // self.n_head
        if cfg.get("scale_attn_by_inverse_layer_idx") or cfg.get("reorder_and_upcast_attn"):
            raise ValueError("scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not implemented")
        if not cfg.get("scale_attn_weights", True):
            raise ValueError("scale_attn_weights=false is not implemented")
        self.c_attn = Conv1D(3 * c, c)
        self.c_proj = Conv1D(c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        # _split_heads: [B, T, C] -> [B, H, T, hd]
        q = q.view(b, t, self.n_head, self.head_dim).permute(0, 2, 1, 3)
        k = k.view(b, t, self.n_head, self.head_dim).permute(0, 2, 1, 3)
        v = v.view(b, t, self.n_head, self.head_dim).permute(0, 2, 1, 3)
        w = torch.matmul(q, k.transpose(-1, -2)) / (float(self.head_dim) ** 0.5)
        w = w.masked_fill(~causal_mask(t, x.device), torch.finfo(w.dtype).min)
        w = torch.softmax(w, dim=-1)
        y = torch.matmul(w, v)  # [B, H, T, hd]
        y = y.permute(0, 2, 1, 3).reshape(b, t, c)  # _merge_heads
        return self.c_proj(y)


class GPT2MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["n_embd"]
        inner = cfg.get("n_inner") or 4 * c
        if cfg.get("activation_function", "gelu_new") != "gelu_new":
            raise ValueError("only activation_function gelu_new is implemented")
        self.c_fc = Conv1D(inner, c)
        self.c_proj = Conv1D(c, inner)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, eps = cfg["n_embd"], cfg["layer_norm_epsilon"]
        self.ln_1 = nn.LayerNorm(c, eps=eps)
        self.attn = GPT2Attention(cfg)
        self.ln_2 = nn.LayerNorm(c, eps=eps)
        self.mlp = GPT2MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT2Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.wte = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        self.wpe = nn.Embedding(cfg["n_positions"], cfg["n_embd"])
        self.h = nn.ModuleList([GPT2Block(cfg) for _ in range(cfg["n_layer"])])
        self.ln_f = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])

    def forward(self, ids):
        pos = torch.arange(ids.size(1), device=ids.device)
        x = self.wte(ids) + self.wpe(pos)[None]
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if not cfg.get("tie_word_embeddings", True):
            raise ValueError("GPT-2 with an untied lm_head is not implemented")
        self.config = cfg
        self.transformer = GPT2Model(cfg)

    def forward(self, ids):
        """ids: int64 [B, T] -> logits [B, T, V]."""
        return F.linear(self.transformer(ids), self.transformer.wte.weight)


# ----------------------------------------------------------------------------------------------------------
# Llama family (llama, mistral, qwen2)


class RMSNorm(nn.Module):
    """LlamaRMSNorm / Qwen2RMSNorm / MistralRMSNorm: w * x * rsqrt(mean(x^2) + eps)."""

    def __init__(self, n, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rope_cos_sin(t, head_dim, theta, dtype, device):
    """LlamaRotaryEmbedding (rope_type "default", attention_scaling 1) for positions 0..t-1.

    inv_freq[i] = 1 / theta^(2i / head_dim), i < head_dim/2; freqs = pos * inv_freq; emb = cat(freqs, freqs).
    Computed in float64 (transformers computes it in float32; the difference is < 1e-6 for short sequences).
    Returns cos, sin: [T, head_dim].
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim))
    pos = torch.arange(t, dtype=torch.float64, device=device)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope(x, cos, sin):
    """x: [B, H, T, hd]; cos/sin: [T, hd]."""
    return x * cos + rotate_half(x) * sin


def repeat_kv(x, n_rep):
    """[B, KV, T, hd] -> [B, KV*n_rep, T, hd]; query head h uses kv head h // n_rep."""
    if n_rep == 1:
        return x
    b, kv, t, hd = x.shape
    return x[:, :, None, :, :].expand(b, kv, n_rep, t, hd).reshape(b, kv * n_rep, t, hd)


def llama_head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def llama_qkv_bias(cfg):
    # Qwen2 always has q/k/v biases (and no o_proj bias); Llama has them when attention_bias is true.
    return cfg["model_type"] == "qwen2" or bool(cfg.get("attention_bias", False))


def llama_o_bias(cfg):
    return cfg["model_type"] != "qwen2" and bool(cfg.get("attention_bias", False))


class LlamaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["hidden_size"]
        self.n_head = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_head
        self.head_dim = llama_head_dim(cfg)
        self.theta = float(cfg.get("rope_theta", 10000.0))
        if cfg.get("rope_scaling"):
            raise ValueError("rope_scaling is not implemented")
        qkv_bias = llama_qkv_bias(cfg)
        self.q_proj = nn.Linear(c, self.n_head * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(c, self.n_kv * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(c, self.n_kv * self.head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(self.n_head * self.head_dim, c, bias=llama_o_bias(cfg))

    def forward(self, x):
        b, t, _ = x.shape
        hd = self.head_dim
        q = self.q_proj(x).view(b, t, -1, hd).transpose(1, 2)  # [B, H, T, hd]
        k = self.k_proj(x).view(b, t, -1, hd).transpose(1, 2)  # [B, KV, T, hd]
        v = self.v_proj(x).view(b, t, -1, hd).transpose(1, 2)
        cos, sin = rope_cos_sin(t, hd, self.theta, x.dtype, x.device)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        k = repeat_kv(k, self.n_head // self.n_kv)
        v = repeat_kv(v, self.n_head // self.n_kv)
        w = torch.matmul(q, k.transpose(2, 3)) * (hd ** -0.5)
        w = w.masked_fill(~causal_mask(t, x.device), torch.finfo(w.dtype).min)
        w = torch.softmax(w, dim=-1)
        y = torch.matmul(w, v).transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(y)


class LlamaMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, i = cfg["hidden_size"], cfg["intermediate_size"]
        if cfg.get("hidden_act", "silu") != "silu":
            raise ValueError("only hidden_act silu is implemented")
        bias = bool(cfg.get("mlp_bias", False))
        self.gate_proj = nn.Linear(c, i, bias=bias)
        self.up_proj = nn.Linear(c, i, bias=bias)
        self.down_proj = nn.Linear(i, c, bias=bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(cfg)
        self.input_layernorm = RMSNorm(c, eps)
        self.post_attention_layernorm = RMSNorm(c, eps)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    """Also MistralForCausalLM and Qwen2ForCausalLM (sliding windows are not implemented: sequences must be
    no longer than sliding_window)."""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        self.model = LlamaModel(cfg)
        if not self.tied:
            self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)

    def forward(self, ids):
        cfg = self.config
        window = cfg.get("sliding_window")
        uses_window = cfg["model_type"] == "mistral" or cfg.get("use_sliding_window", False)
        if uses_window and window is not None and ids.size(1) > window:
            raise ValueError("sequence longer than sliding_window is not implemented")
        h = self.model(ids)
        w = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        return F.linear(h, w)


# ----------------------------------------------------------------------------------------------------------


def build_model(cfg):
    """An (uninitialised) model from a config.json dict."""
    mt = cfg["model_type"]
    if mt == "gpt2":
        return GPT2LMHeadModel(cfg)
    if mt in ("llama", "mistral", "qwen2"):
        return LlamaForCausalLM(cfg)
    raise ValueError("unsupported model_type %r" % mt)


def is_embedding(name):
    return name.endswith(("wte.weight", "wpe.weight", "embed_tokens.weight"))


@torch.no_grad()
def init_hf_style(model, generator=None, std=0.02):
    """Initialisation like transformers' _init_weights: matrices and embeddings N(0, std), norm gains 1,
    biases 0 (GPT-2's residual-projection rescaling omitted; it does not matter for benchmarks)."""
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            p.normal_(0.0, std, generator=generator)
        elif name.endswith("bias"):
            p.zero_()
        else:
            p.fill_(1.0)
