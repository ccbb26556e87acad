#!/usr/bin/python3
"""Reference tokenizer for hone's tests: Hugging Face `tokenizers` semantics for the pieces hone's issue 3 adds
(Split and the other pre-tokenizers with their delimiter behaviors, the Unicode normalizers, added tokens with
single_word / lstrip / rstrip / normalized, byte-level BPE, transformers' vocab.json + merges.txt folders and
tokenizer_config.json), written independently of hone's C code from the Rust / Python sources it describes.

It builds small tokenizers (BPE merges learned here on a fixed text), encodes tricky strings with them and writes
tests/fixtures/tokenizer/<name>/ (tokenizer.json, or vocab.json + merges.txt + configuration files) with
expected.json: the ids (with and without special tokens) and the decoded text of every string. When
../shared/data is present it also writes tests/fixtures/tokenizer/shared_expected.json: ids for real tokenizers
there (torchtune's tiny_bpe_tokenizer.json, lm-buddy's tiny_gpt2 folder). Run with Debian's interpreter, which
has the `regex` module:

    /usr/bin/python3 tools/tokenizer_oracle.py

Regex flavour: Hugging Face compiles Split patterns with Oniguruma; this script rewrites them for Python's
`regex` module (onig_to_python) and iterates over matches as the onig crate's find_iter does. Unicode data is
Python's (unicodedata 14.0 for normalization, `regex`'s for properties); the strings below avoid characters
whose properties changed since.
"""
import json
import os
import shutil
import sys
import textwrap
import unicodedata

import regex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
SHARED = os.path.join(ROOT, "..", "shared", "data")

# ---------------------------------------------------------------------------------------------------------------
# Oniguruma → Python regex

ONIG_WORD = r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}"  # Oniguruma's Word (its generator: Alphabetic + M + Nd + Pc)
RUST_WORD = r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}"  # Rust regex's \w


def onig_to_python(p):
    """Rewrites an Oniguruma pattern (ONIG_SYNTAX_ONIGURUMA) for Python's regex module."""
    out = []
    i, in_class, body = 0, False, 0
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            e = p[i + 1]
            table = {
                "w": ONIG_WORD if in_class else "[" + ONIG_WORD + "]",
                "W": "[^" + ONIG_WORD + "]",
                "s": r"\p{White_Space}",
                "S": r"\P{White_Space}",
                "h": "0-9a-fA-F" if in_class else "[0-9a-fA-F]",
                "H": "[^0-9a-fA-F]",
                "v": r"\x0b",
            }
            if not in_class:
                w = "[" + ONIG_WORD + "]"
                table["b"] = "(?:(?<=%s)(?!%s)|(?<!%s)(?=%s))" % (w, w, w, w)
                table["B"] = "(?:(?<=%s)(?=%s)|(?<!%s)(?!%s))" % (w, w, w, w)
            if e in table:
                out.append(table[e])
                i += 2
                continue
            if e == "u" and regex.match(r"[0-9a-fA-F]{4}", p[i + 2:i + 6]):
                out.append(r"\u" + p[i + 2:i + 6])
                i += 6
                continue
            out.append(p[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "]" and i > body:
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            body = i + 1 + (p[i + 1:i + 2] == "^")
            out.append(p[i:body])
            i = body
            continue
        if c == "(" and p[i + 1:i + 2] == "?":
            m = regex.match(r"\(\?([imx-]+)([:)])", p[i:])
            if m:
                out.append("(?" + m.group(1).replace("m", "s") + m.group(2))
                i += m.end()
                continue
        if c == "{":
            m = regex.match(r"\{,(\d+)\}", p[i:])
            if m:
                out.append("{0,%s}" % m.group(1))
                i += m.end()
                continue
        out.append(c)
        i += 1
    return regex.compile("".join(out), regex.MULTILINE | regex.V0)


def onig_find_iter(rx, s):
    """(start, end) of the matches, as the onig crate's FindMatches yields them."""
    pos, last_match_end = 0, None
    while pos <= len(s):
        m = rx.search(s, pos)
        if not m:
            return
        a, b = m.span()
        if a == b and last_match_end == b:
            pos += 1
            continue
        pos = last_match_end = b
        yield a, b


# ---------------------------------------------------------------------------------------------------------------
# NormalizedString::split and the patterns of the pre-tokenizers

def regex_matches(rx, s):
    if not s:
        return [((0, 0), False)]
    out, prev = [], 0
    for a, b in onig_find_iter(rx, s):
        if prev != a:
            out.append(((prev, a), False))
        out.append(((a, b), True))
        prev = b
    if prev != len(s):
        out.append(((prev, len(s)), False))
    return out


def char_matches(pred, s):
    if not s:
        return [((0, 0), False)]
    out, last = [], 0
    for i, c in enumerate(s):
        if pred(c):
            if last < i:
                out.append(((last, i), False))
            out.append(((i, i + 1), True))
            last = i + 1
    if len(s) > last:
        out.append(((last, len(s)), False))
    return out


def split(s, matches, behavior):
    """NormalizedString::split: the pieces (non-empty substrings, with their offsets in s) for a delimiter
    behavior."""
    if behavior == "Isolated":
        spans = [(o, False) for o, _ in matches]
    elif behavior == "Removed":
        spans = matches
    elif behavior == "Contiguous":
        spans, prev = [], False
        for o, m in matches:
            if m == prev and spans:
                spans[-1] = ((spans[-1][0][0], o[1]), False)
            else:
                spans.append((o, False))
            prev = m
    elif behavior == "MergedWithPrevious":
        spans, prev = [], False
        for o, m in matches:
            if m and not prev and spans:
                spans[-1] = ((spans[-1][0][0], o[1]), False)
            else:
                spans.append((o, False))
            prev = m
    elif behavior == "MergedWithNext":
        spans, prev = [], False
        for o, m in reversed(matches):
            if m and not prev and spans:
                spans[-1] = ((o[0], spans[-1][0][1]), False)
            else:
                spans.append((o, False))
            prev = m
        spans.reverse()
    else:
        raise ValueError(behavior)
    return [(s[a:b], a) for (a, b), remove in spans if not remove and b > a]


WHITE_SPACE = regex.compile(r"\p{White_Space}")
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
RUST_WHITESPACE_RX = regex.compile(r"[%s]+|[^%s\p{White_Space}]+" % (RUST_WORD, RUST_WORD), regex.V0)
RUST_WORD_RX = regex.compile("[%s]" % RUST_WORD, regex.V0)


def is_whitespace(c):
    return bool(WHITE_SPACE.fullmatch(c))


def is_numeric(c):
    return unicodedata.category(c) in ("Nd", "Nl", "No")


def is_punctuation(c):
    return (c.isascii() and c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") or unicodedata.category(c).startswith("P")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = bytes_to_unicode()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


def byte_level(s):
    return "".join(BYTE_CHAR[b] for b in s.encode("utf-8"))


# ---------------------------------------------------------------------------------------------------------------
# A tokenizer.json, run the Hugging Face way

class Tokenizer:
    def __init__(self, spec):
        spec = json.loads(json.dumps(spec))  # a copy: compiled patterns are stored in it
        model = spec["model"]
        assert model.get("type", "BPE") == "BPE"
        self.vocab = model["vocab"]
        self.id_to_tok = {i: t for t, i in self.vocab.items()}
        self.ranks = {}
        for r, m in enumerate(model["merges"]):
            a, b = m.split(" ") if isinstance(m, str) else m
            self.ranks[(a, b)] = r
        self.unk = model.get("unk_token")
        self.byte_fallback = model.get("byte_fallback", False)
        self.ignore_merges = model.get("ignore_merges", False)
        self.added = sorted(spec.get("added_tokens") or [], key=lambda a: a["id"])
        self.normalizers = self._flatten(spec.get("normalizer"), "normalizers")
        self.pre = self._flatten(spec.get("pre_tokenizer"), "pretokenizers")
        self.decoders = self._flatten(spec.get("decoder"), "decoders")
        self.prefix, self.suffix = [], []
        for p in self._flatten(spec.get("post_processor"), "processors"):
            if p["type"] == "TemplateProcessing":
                seen = False
                for item in p["single"]:
                    if "Sequence" in item:
                        seen = True
                    else:
                        ids = p["special_tokens"][item["SpecialToken"]["id"]]["ids"]
                        (self.suffix if seen else self.prefix).extend(ids)
        for step in self.pre:
            if step["type"] == "Split":
                pat = step["pattern"]
                step["rx"] = (onig_to_python(pat["Regex"]) if "Regex" in pat
                              else regex.compile(regex.escape(pat["String"])))
        self.gpt2_rx = onig_to_python(GPT2_PATTERN)

    @staticmethod
    def _flatten(component, key):
        """The steps of a component: a Sequence (nested or not) is its steps in order."""
        if not component:
            return []
        if component["type"] != "Sequence":
            return [component]
        return [step for c in component[key] for step in Tokenizer._flatten(c, key)]

    # -- normalizers --
    def normalize(self, s):
        for n in self.normalizers:
            t = n["type"]
            if t in ("NFC", "NFD", "NFKC", "NFKD"):
                s = unicodedata.normalize(t, s)
            elif t == "Lowercase":
                s = "".join(c.lower() for c in s)  # char::to_lowercase, character by character
            elif t == "Strip":
                if n["strip_left"]:
                    s = regex.sub(r"^\p{White_Space}+", "", s)
                if n["strip_right"]:
                    s = regex.sub(r"\p{White_Space}+$", "", s)
            elif t == "Prepend":
                s = n["prepend"] + s if s else s
            elif t == "Replace":
                s = s.replace(n["pattern"]["String"], n["content"])
            else:
                raise ValueError(t)
        return s

    # -- pre-tokenizers: each step over every piece; (text, starts the input) --
    def pre_tokenize(self, s, first):
        """The words BPE gets (after a ByteLevel step, in its byte characters)."""
        pieces = [(s, first)]
        for step in self.pre:
            t, nxt = step["type"], []
            for p, f in pieces:
                if t == "Split":
                    m = regex_matches(step["rx"], p)
                    if step.get("invert"):
                        m = [(o, not x) for o, x in m]
                    parts = split(p, m, step["behavior"])
                elif t == "Digits":
                    b = "Isolated" if step.get("individual_digits") else "Contiguous"
                    m = char_matches(is_numeric, p)
                    parts = split(p, m, b)
                elif t == "Punctuation":
                    b = step.get("behavior", "Isolated")
                    m = char_matches(is_punctuation, p)
                    parts = split(p, m, b)
                elif t == "WhitespaceSplit":
                    m = char_matches(is_whitespace, p)
                    parts = split(p, m, "Removed")
                elif t == "Whitespace":
                    m = [(o, not x) for o, x in regex_matches(RUST_WHITESPACE_RX, p)]
                    parts = split(p, m, "Removed")
                elif t == "ByteLevel":
                    if step.get("add_prefix_space", True) and not p.startswith(" "):
                        p = " " + p
                    if step.get("use_regex", True):
                        m = regex_matches(self.gpt2_rx, p)
                        parts = split(p, m, "Isolated")
                    else:
                        parts = [(p, 0)]
                    parts = [(byte_level(x), False) for x, _ in parts]
                elif t == "Metaspace":
                    rep = step["replacement"]
                    p = p.replace(" ", rep)
                    scheme = step.get("prepend_scheme", "always")
                    if not p.startswith(rep) and (scheme == "always" or (scheme == "first" and f)):
                        p = rep + p
                    if step.get("split", True):
                        m = char_matches(lambda c: c == rep, p)
                        parts = split(p, m, "MergedWithNext")
                    else:
                        parts = [(p, 0)]
                    parts = [(x, False) for x, _ in parts]
                else:
                    raise ValueError(t)
                if t not in ("ByteLevel", "Metaspace"):
                    parts = [(x, f and at == 0) for x, at in parts]
                nxt.extend(parts)
            pieces = nxt
        return [p for p, _ in pieces]

    # -- BPE --
    def bpe(self, word):
        if self.ignore_merges and word in self.vocab:  # a word that is a token is not merged
            return [self.vocab[word]]
        if self.pre and any(s["type"] == "ByteLevel" for s in self.pre):
            symbols = list(word)
        else:
            symbols = []
            for c in word:
                if c in self.vocab:
                    symbols.append(c)
                elif self.byte_fallback:
                    symbols.extend("<0x%02X>" % b for b in c.encode("utf-8"))
                else:
                    symbols.append(None)
        while len(symbols) > 1:
            pairs = [(self.ranks.get((a, b), None), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))
                     if a is not None and b is not None and (a, b) in self.ranks]
            if not pairs:
                break
            best = min(pairs)[0]
            a, b = [k for k, r in self.ranks.items() if r == best][0]
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        ids = []
        for s in symbols:
            if s is None or s not in self.vocab:
                if self.unk is None:
                    raise ValueError("no token for %r" % s)
                if ids and ids[-1] == self.vocab[self.unk]:
                    continue  # fuse_unk
                ids.append(self.vocab[self.unk])
            else:
                ids.append(self.vocab[s])
        return ids

    # -- added tokens (AddedVocabulary::find_matches) --
    def split_added(self, s, normalized):
        tokens = [a for a in self.added if bool(a.get("normalized", not a.get("special"))) == normalized]
        pats = [((self.normalize(a["content"]) if normalized else a["content"]), a) for a in tokens]
        out, start_offset, pos = [], 0, 0
        while pos < len(s):
            hit = None
            for i in range(pos, len(s)):
                cands = [(len(p), p, a) for p, a in pats if p and s.startswith(p, i)]
                if cands:
                    n, p, a = max(cands, key=lambda x: x[0])
                    hit = (i, i + n, a)
                    break
            if not hit:
                break
            start, stop, a = hit
            pos = stop
            if a.get("single_word"):
                before = start > 0 and RUST_WORD_RX.fullmatch(s[start - 1])
                after = stop < len(s) and RUST_WORD_RX.fullmatch(s[stop])
                if before or after:
                    continue
            if a.get("lstrip"):
                m = regex.search(r"\p{White_Space}*$", s[:start])
                start = max(m.start(), start_offset)
            if a.get("rstrip"):
                stop += regex.match(r"\p{White_Space}*", s[stop:]).end()
                pos = stop
            if start_offset < start:
                out.append((s[start_offset:start], None, start_offset))
            out.append((s[start:stop], a["id"], start))
            start_offset = stop
        if start_offset < len(s):
            out.append((s[start_offset:], None, start_offset))
        return out

    def encode(self, text, add_special):
        ids = list(self.prefix) if add_special else []
        for raw, tid, at in self.split_added(text, False):
            if tid is not None:
                ids.append(tid)
                continue
            for piece, tid2, at2 in self.split_added(self.normalize(raw), True):
                if tid2 is not None:
                    ids.append(tid2)
                    continue
                for word in self.pre_tokenize(piece, at == 0 and at2 == 0):
                    ids.extend(self.bpe(word))
        if add_special:
            ids.extend(self.suffix)
        return ids

    def decode(self, ids, skip_special):
        added = {a["id"]: a for a in self.added}
        toks = []
        for i in ids:
            if i in added:
                if added[i].get("special") and skip_special:
                    continue
                toks.append(added[i]["content"])
            else:
                toks.append(self.id_to_tok[i])
        for d in self.decoders:
            t = d["type"]
            if t == "ByteLevel":
                data = b"".join(bytes(CHAR_BYTE[c] for c in x) if all(c in CHAR_BYTE for c in x) else x.encode()
                                for x in toks)
                toks = [data.decode("utf-8", "replace")]
            elif t == "ByteFallback":
                out, run = [], []
                for x in toks + [None]:
                    m = regex.fullmatch(r"<0x([0-9A-Fa-f]{2})>", x) if x is not None else None
                    if m:
                        run.append(int(m.group(1), 16))
                        continue
                    if run:
                        try:
                            out.append(bytes(run).decode("utf-8"))
                        except UnicodeDecodeError:
                            out.extend(["\ufffd"] * len(run))
                        run = []
                    if x is not None:
                        out.append(x)
                toks = out
            elif t == "Fuse":
                toks = ["".join(toks)]
            elif t == "Metaspace":
                drop_first = d.get("prepend_scheme", "always") != "never"
                toks = ["".join(("" if i == 0 and drop_first else " ") if c == d["replacement"] else c for c in x)
                        for i, x in enumerate(toks)]
            else:
                raise ValueError(t)
        return "".join(toks)


# ---------------------------------------------------------------------------------------------------------------
# transformers' folders: vocab.json + merges.txt and the configuration files

def token_of(v):
    return v["content"] if isinstance(v, dict) else v


def load_folder(folder):
    """The tokenizer transformers' AutoTokenizer builds (GPT2TokenizerFast for vocab.json + merges.txt), and the
    special tokens / chat templates it reports."""
    def read(name):
        path = os.path.join(folder, name)
        return json.load(open(path, encoding="utf-8")) if os.path.exists(path) else None

    config = read("tokenizer_config.json") or {}
    smap, added_json = read("special_tokens_map.json"), read("added_tokens.json")
    tj = read("tokenizer.json")
    from_vocab = tj is None
    if from_vocab:
        vocab = read("vocab.json")
        lines = open(os.path.join(folder, "merges.txt"), encoding="utf-8").read().split("\n")[1:-1]
        merges = [tuple(l.split()) for l in lines]
        tj = {"model": {"type": "BPE", "vocab": vocab, "merges": [list(m) for m in merges]},
              "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": bool(config.get("add_prefix_space", False)),
                                "use_regex": True},
              "decoder": {"type": "ByteLevel"}, "added_tokens": []}
    tok = Tokenizer(tj)
    legacy = "added_tokens_decoder" not in config
    named = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        if legacy and smap and key in smap:
            named[key] = smap[key]
        elif key in config:
            named[key] = config[key]
        elif from_vocab and key != "pad_token":
            named[key] = "<|endoftext|>"
    if legacy and smap and "additional_special_tokens" in smap:
        additional = smap["additional_special_tokens"]
    else:
        additional = config.get("additional_special_tokens")
    specials = [token_of(v) for v in named.values() if v] + [token_of(v) for v in additional or []]

    def lookup(content):
        for a in tok.added:
            if a["content"] == content:
                return a
        return None

    def put(content, flags, want_id):
        a = lookup(content)
        if a:
            a.update(flags)
            return
        # tokenizers' add_tokens: the vocabulary's id, else the next free one, whatever id the file lists
        if content in tok.vocab:
            i = tok.vocab[content]
        else:
            i = max([len(tok.vocab)] + [x["id"] + 1 for x in tok.added])
        if want_id is not None and want_id != i:
            print("%s: %r is listed with id %d but takes %d" % (folder, content, want_id, i), file=sys.stderr)
        tok.added.append(dict(flags, content=content, id=i))
        tok.added.sort(key=lambda x: x["id"])

    if not legacy:
        for idx, v in sorted(((int(k), v) for k, v in config["added_tokens_decoder"].items())):
            flags = {k: v.get(k, False) for k in ("lstrip", "rstrip", "single_word", "special")}
            flags["normalized"] = v.get("normalized", not flags["special"])
            put(v["content"], flags, idx)
    elif added_json:
        for content, idx in sorted(added_json.items(), key=lambda kv: kv[1]):
            special = content in specials
            put(content, {"special": special, "normalized": not special, "lstrip": False, "rstrip": False,
                          "single_word": False}, idx)
    for v in list(named.values()) + list(additional or []):
        if not v or lookup(token_of(v)):
            continue
        flags = {k: v.get(k, False) for k in ("lstrip", "rstrip", "single_word")} if isinstance(v, dict) else {}
        flags["special"] = True
        flags["normalized"] = v.get("normalized", False) if isinstance(v, dict) else False
        put(token_of(v), flags, None)

    def id_of(content):
        a = lookup(content)
        return a["id"] if a else tok.vocab.get(content, -1)

    ids = {k: (id_of(token_of(v)) if v else -1) for k, v in named.items()}
    if not from_vocab:  # what tokenizer.json implies for keys given nowhere
        inferred = {"unk_token": tok.vocab.get(tok.unk, -1) if tok.unk else -1,
                    "bos_token": tok.prefix[0] if len(tok.prefix) == 1 else -1,
                    "eos_token": tok.suffix[0] if len(tok.suffix) == 1 else -1, "pad_token": -1}
        for k, i in inferred.items():
            if k not in named:
                ids[k] = i
    ab, ae = config.get("add_bos_token"), config.get("add_eos_token")
    if isinstance(ab, bool) or isinstance(ae, bool):
        bos, eos = ids.get("bos_token", -1), ids.get("eos_token", -1)
        with_bos = ab if isinstance(ab, bool) else tok.prefix == [bos]
        with_eos = ae if isinstance(ae, bool) else tok.suffix == [eos]
        tok.prefix = [bos] if with_bos else []
        tok.suffix = [eos] if with_eos else []
    templates = {}
    ct = config.get("chat_template")
    if os.path.exists(os.path.join(folder, "chat_template.jinja")):
        templates["default"] = open(os.path.join(folder, "chat_template.jinja"), encoding="utf-8").read()
    elif isinstance(ct, str):
        templates["default"] = ct
    elif isinstance(ct, list):
        templates = {e["name"]: e["template"] for e in ct}
    names = sorted(templates, key=lambda n: (n != "default", list(templates).index(n)))
    special = {}
    for k in ("bos_token", "eos_token", "unk_token", "pad_token"):
        i = ids.get(k, -1)
        special[k[:-6] + "_id"] = i
        v = named.get(k)
        special[k] = token_of(v) if v else (tok.decode([i], False) if i >= 0 and k not in named else None)
    special.update({"add_bos_token": bool(tok.prefix) and tok.prefix[0] == special["bos_id"] >= 0,
                    "add_eos_token": bool(tok.suffix) and tok.suffix[-1] == special["eos_id"] >= 0,
                    "chat_templates": [[n, templates[n]] for n in names]})
    return tok, special


# ---------------------------------------------------------------------------------------------------------------
# Building small tokenizers

TRAINING_TEXT = """The quick brown fox jumps over the lazy dog. It's the dog's toy; they're sure we'll see.
I'm here, you've been there, she'd know. Don't stop! DON'T STOP. The year 2024 had 366 days and 8784 hours.
Numbers: 3.14159, 2.71828, 1,000,000 and 42 and 007. Hello world, hello there, hello again: hello hello.
    Indented code_block_here = value_of(thing) + other_thing * 2
\tTabbed line\tand more\t\ttabs
Mixed   spaces    everywhere     in     this    line.
CJK: 你好，世界。今天天气很好。日本語のテキストです。한국어 텍스트입니다.
Accents: café naïve résumé coöperate Ångström façade jalapeño.
Emoji: 👍 🎉 😀 ❤ and more text after them. lol lolz lol.
"""

TRICKY = [
    "Hello world! It's a test.",
    "  leading and trailing spaces  ",
    "tabs\tand\t\tnewlines\n\nmixed \t \n end",
    "runs of     spaces and\r\n\r\nCRLF lines\n\n\n",
    "numbers 1234567 and 3.14159, 1,000,000; ٣٤٥ ²³ Ⅻ ½",
    "contractions: don't I'M we'll they've she'd it\u2019s I\u2019m DON\u2019T y'all",
    "emoji: 👍🏽 👨\u200d👩\u200d👧\u200d👦 🇫🇷 ❤️ done",
    "CJK: 你好，世界。日本語のテキスト、カタカナ！",
    "Hangul: 한국어 텍스트 and conjoining \u1112\u1161\u11ab jamo",
    "combining: e\u0301 vs \u00e9, A\u030a vs \u00c5, \u2126 ohm, \ufb01 ligature, "
    "\uff46\uff55\uff4c\uff4c \u2460 \u00b2",
    "cases: \u0130stanbul \u03a3\u0391\u03a3 \u00df MiXeD_Case snake_case camelCase 3rdParty",
    "punctuation!!! ??? ... --- (parens) [brackets] {braces} \u00abquotes\u00bb \u201ccurly\u201d",
    "whitespace zoo:\u00a0nbsp\u2003em\u3000ideo\u200bzwsp\u180emvs\u0085nel|\u001cfs",
    "hex and words: deadbeef cafe 0xFF <tag\nwith newline> \u00e9\u00e9 xxy",
    "lol lolz xlol lol_ lol. (lol) lol\u2019s lol",
    " ",
    "\n",
    "",
    "a",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]

QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
         r"|\s+(?!\S)|\s+")
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
          r"|\s+(?!\S)|\s+")
O200K = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# the constructs hone rewrites: (?m) (Oniguruma's dot-all), \uHHHH, \h, {,n}, \b, \w, \s
ONIG_CONSTRUCTS = r"(?m:<.+?>)|\u00e9+|\h{3,}|x{,2}y|\b\w+\b|[^\w\s]+|\s+"

BYTE_LEVEL_LAST = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}


def split_step(pattern, behavior="Isolated", invert=False, literal=False):
    return {"type": "Split", "pattern": {"String" if literal else "Regex": pattern}, "behavior": behavior,
            "invert": invert}


def seq(*steps):
    return {"type": "Sequence", "pretokenizers": list(steps)}


def train(words, base, n_merges, min_count):
    """BPE training on a list of words (each a sequence of base symbols): the most frequent pair, ties broken by
    the pair's text, while it occurs at least min_count times. Returns (vocab, merges)."""
    vocab = {t: i for i, t in enumerate(base)}
    corpus = {}
    for w in words:
        if w:
            corpus[tuple(w)] = corpus.get(tuple(w), 0) + 1
    merges = []
    for _ in range(n_merges):
        counts = {}
        for w, c in corpus.items():
            for pair in zip(w, w[1:]):
                counts[pair] = counts.get(pair, 0) + c
        if not counts:
            break
        pair = max(counts, key=lambda p: (counts[p], [-ord(ch) for ch in p[0] + " " + p[1]]))
        if counts[pair] < min_count:
            break
        merges.append(pair)
        vocab.setdefault(pair[0] + pair[1], len(vocab))
        new = {}
        for w, c in corpus.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == pair:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        corpus = new
    return vocab, merges


def build(pre, normalizer=None, added=(), post=None, byte_level_vocab=True, n_merges=400, decoder=None,
          extra_texts=(), min_count=2):
    """A tokenizer.json with these components whose merges are learned on TRAINING_TEXT (and, for a byte-level
    vocabulary, the tricky strings)."""
    spec = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": normalizer,
            "pre_tokenizer": pre, "post_processor": post,
            "decoder": decoder or {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                   "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": {}, "merges": []}}
    if byte_level_vocab:
        base = [BYTE_CHAR[b] for b in range(256)]
    else:
        chars = sorted(set(TRAINING_TEXT.replace(" ", "▁")))
        base = ["<unk>"] + ["<0x%02X>" % b for b in range(256)] + chars
        spec["model"].update(unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    # Merges are learned on whole lines, not on pre-tokenized words, so that many of them cross the places where a
    # pre-tokenizer may cut: then a piece cut differently gives different ids, and the fixtures see it. A
    # character vocabulary is learned on TRAINING_TEXT alone, every character of which it holds.
    words = []
    for text in [TRAINING_TEXT] + (TRICKY + list(extra_texts) if byte_level_vocab else []):
        for line in text.split("\n"):
            words.append(list(byte_level(line) if byte_level_vocab else line.replace(" ", "▁")))
    vocab, merges = train(words, base, n_merges, min_count)
    spec["model"]["vocab"] = vocab
    spec["model"]["merges"] = [a + " " + b for a, b in merges]
    next_id = len(vocab)
    for a in added:
        a = dict({"single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}, **a)
        a.setdefault("id", vocab.get(a["content"], None))
        if a["id"] is None:
            a["id"] = next_id
            next_id += 1
        spec["added_tokens"].append({k: a[k] for k in ("id", "content", "single_word", "lstrip", "rstrip",
                                                       "normalized", "special")})
    return spec


def template(bos=None, eos=None, ids=None):
    single, specials = [], {}
    if bos:
        single.append({"SpecialToken": {"id": bos, "type_id": 0}})
        specials[bos] = {"id": bos, "ids": [ids[bos]], "tokens": [bos]}
    single.append({"Sequence": {"id": "A", "type_id": 0}})
    if eos:
        single.append({"SpecialToken": {"id": eos, "type_id": 0}})
        specials[eos] = {"id": eos, "ids": [ids[eos]], "tokens": [eos]}
    return {"type": "TemplateProcessing", "single": single, "pair": single, "special_tokens": specials}


def with_template(spec, bos, eos=None, byte_level_post=True):
    ids = {a["content"]: a["id"] for a in spec["added_tokens"]}
    t = template(bos, eos, ids)
    spec["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}, t]} \
        if byte_level_post else t
    return spec


CHATML = [{"content": "<|endoftext|>"}, {"content": "<|im_start|>"}, {"content": "<|im_end|>"}]


def fixtures():
    f = {}
    f["qwen2"] = build(seq(split_step(QWEN2), BYTE_LEVEL_LAST), {"type": "NFC"}, CHATML)
    f["llama3"] = with_template(build(seq(split_step(LLAMA3), BYTE_LEVEL_LAST), None, [
        {"content": "<|begin_of_text|>"}, {"content": "<|end_of_text|>"},
        {"content": "lol", "single_word": True, "special": False}, {"content": "ol", "special": False},
        {"content": "<L>", "lstrip": True}, {"content": "<R>", "rstrip": True}]), "<|begin_of_text|>")
    f["llama3"]["model"]["ignore_merges"] = True  # as Meta's Llama 3 tokenizer.json
    f["o200k"] = build(seq(split_step(O200K), BYTE_LEVEL_LAST), None, CHATML[:1])
    # more merges: most pairs of its strings merge, so that where the pattern cuts shows in the ids
    f["onig_constructs"] = build(seq(split_step(ONIG_CONSTRUCTS), BYTE_LEVEL_LAST),
                                 n_merges=1500, extra_texts=EXTRA_CASES["onig_constructs"], min_count=1)
    for behavior in ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"):
        for invert in (False, True):
            name = "split_%s%s" % (behavior, "_invert" if invert else "")
            f[name] = build(seq(split_step(r"\s+|[,.!?]|\d", behavior, invert), BYTE_LEVEL_LAST), n_merges=200)
    f["split_string"] = build(seq(split_step("  ", "Removed", literal=True),
                                                  split_step(". ", "MergedWithNext", literal=True),
                                                  split_step("l", "Contiguous", literal=True), BYTE_LEVEL_LAST),
                              n_merges=200)
    # empty matches: Oniguruma's find_iter skips an empty match right where the previous match ended
    f["split_empty_matches"] = build(seq(split_step(r"\d*", "MergedWithPrevious"),
                                                                split_step("", "Contiguous", literal=True),
                                                                BYTE_LEVEL_LAST), n_merges=200)
    f["digits_individual"] = build(seq({"type": "Digits", "individual_digits": True},
                                                            {"type": "ByteLevel", "add_prefix_space": True,
                                                             "trim_offsets": True, "use_regex": True}))
    f["digits_punctuation"] = build(seq({"type": "Digits", "individual_digits": False},
                                                              {"type": "Punctuation", "behavior": "Isolated"},
                                                              BYTE_LEVEL_LAST))
    f["punctuation_whitespace_split"] = build(seq(
        {"type": "Punctuation", "behavior": "MergedWithNext"}, {"type": "WhitespaceSplit"},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": False}))
    f["whitespace"] = build(seq({"type": "Whitespace"}, BYTE_LEVEL_LAST))
    # tiiuae/falcon-7b's pre-tokenizer: the steps after ByteLevel see its byte characters ("м" = D0 BC is "Ð¼", and
    # "¼" is numeric for Digits)
    f["falcon"] = build(seq({"type": "Punctuation", "behavior": "Contiguous"},
                                      {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                       "use_regex": True},
                                      {"type": "Digits", "individual_digits": False},
                                      split_step("[0-9][0-9][0-9]")), None, CHATML[:1],
                        extra_texts=EXTRA_CASES["falcon"])
    # a Sequence inside a Sequence
    f["nested_sequence"] = build(seq(seq({"type": "Punctuation", "behavior": "Contiguous"},
                                                            {"type": "Digits", "individual_digits": True}),
                                                        {"type": "ByteLevel", "add_prefix_space": True,
                                                         "trim_offsets": True, "use_regex": False}))
    f["whitespace_alone"] = build({"type": "Whitespace"}, byte_level_vocab=False,
                                  decoder={"type": "Sequence", "decoders": [{"type": "ByteFallback"},
                                                                            {"type": "Fuse"}]})
    f["metaspace_sequence"] = with_template(build(
        seq({"type": "Digits", "individual_digits": True},
            {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}),
        None, [{"content": "<s>"}], byte_level_vocab=False,
        decoder={"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Metaspace", "replacement": "▁",
                                                                              "prepend_scheme": "first",
                                                                              "split": True}]}),
        "<s>", byte_level_post=False)
    f["nfkc_lowercase_strip"] = build({"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                       "use_regex": True},
                                      {"type": "Sequence", "normalizers": [
                                          {"type": "NFKC"}, {"type": "Lowercase"},
                                          {"type": "Strip", "strip_left": True, "strip_right": True}]},
                                      [{"content": "<MASK>", "normalized": True, "special": False},
                                       {"content": "<|endoftext|>"},
                                       {"content": "Lol", "normalized": True, "special": False, "single_word": True}])
    f["nfd_whitespace"] = build(seq({"type": "Whitespace"}, BYTE_LEVEL_LAST), {"type": "NFD"})
    f["nfkd_strip_left"] = build(seq(split_step(LLAMA3), BYTE_LEVEL_LAST),
                                 {"type": "Sequence", "normalizers": [
                                     {"type": "NFKD"}, {"type": "Strip", "strip_left": True, "strip_right": False}]})
    f["nfc_lowercase_llama3"] = build(seq(split_step(LLAMA3), BYTE_LEVEL_LAST),
                                      {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]})
    return f


EXTRA_CASES = {
    "falcon": ["Привет мир 12345678 ¼ ½", "price: 12,345.67 and 1000000!!", "<|endoftext|>x 999"],
    "onig_constructs": ["feedbackloop 0xdeadbeefz cafébabe", "xxyz yes xy xxxy", "<a\nb> <c>\n<\n>",
                        "\u00e9t\u00e9 caf\u00e9s \u00c9t\u00e9", "word\u000btab\u000b\u000bvt"],
    "qwen2": ["<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n", "x<|endoftext|>y<|endoftext|>"],
    "llama3": ["lol <L> lol  <R>  end", "<|begin_of_text|>Hi<|end_of_text|>", "a   <L>b<R>   c"],
    "nfkc_lowercase_strip": ["Hide the <MASK> and <mask> and ＜ＭＡＳＫ＞", "LOL lol Lol xLol Lol. ＬＯＬ",
                             "  <|endoftext|>  "],
    "metaspace_sequence": ["<s>a 1<s>b", "12 34"],
}


def expectations(tok, texts):
    """Hugging Face drops a byte its vocabulary lacks when there is no unk_token; hone refuses it, so such texts are
    expected to fail."""
    cases = []
    for text in texts:
        try:
            ids = tok.encode(text, True)
        except ValueError as e:
            cases.append({"text": text, "error": str(e)})
            continue
        case = {"text": text, "ids": ids, "ids_no_special": tok.encode(text, False),
                "decoded": tok.decode(ids, False), "decoded_skip_special": tok.decode(ids, True)}
        # the variants are left out where they equal the plain ones
        for variant, plain in (("ids_no_special", "ids"), ("decoded_skip_special", "decoded")):
            if case[variant] == case[plain]:
                del case[variant]
        # where no added token is in the way, the pre-tokenizer's words themselves (hone's tests check them for
        # pipelines of several steps, where different cuts could still give the same ids)
        normalized = tok.normalize(text)
        if len(tok.pre) > 1 or (tok.pre and tok.pre[0]["type"] not in ("ByteLevel", "Metaspace")):
            if not any(a["content"] in text or tok.normalize(a["content"]) in normalized for a in tok.added):
                case["pieces"] = tok.pre_tokenize(normalized, True)
        cases.append(case)
    return cases


def write_json(path, obj, compact=False):
    """Compact, or else one line per value of obj and per element of its lists."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if compact:
            json.dump(obj, f, ensure_ascii=False)
        else:
            lines = []
            for k, v in obj.items():
                inner = (",\n  ".join(json.dumps(x, ensure_ascii=False) for x in v) if isinstance(v, list)
                         else None)
                lines.append(' "%s": ' % k + ("[\n  %s\n ]" % inner if inner is not None
                                              else json.dumps(v, ensure_ascii=False)))
            f.write("{\n" + ",\n".join(lines) + "\n}")
        f.write("\n")


# ---------------------------------------------------------------------------------------------------------------
# transformers folders built here

def gpt2_folders():
    spec = build({"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                "use_regex": True}, n_merges=300)
    vocab = dict(spec["model"]["vocab"])
    vocab["<|endoftext|>"] = len(vocab)
    merges = "#version: 0.2\n" + "".join(m + "\n" for m in spec["model"]["merges"])
    n = len(vocab)
    legacy = {
        "tokenizer_config.json": {"add_bos_token": True, "add_prefix_space": False, "model_max_length": 1024,
                                  "tokenizer_class": "GPT2Tokenizer",
                                  "chat_template": [{"name": "default", "template": "{{ messages }}"},
                                                    {"name": "tool_use", "template": "{{ tools }}"}]},
        "special_tokens_map.json": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                                    "unk_token": "<|endoftext|>", "pad_token": "<|pad|>",
                                    "additional_special_tokens": ["<|tool|>"]},
        "added_tokens.json": {"<|pad|>": n, "<|tool|>": n + 1, "<extra>": n + 2},
    }
    decoder_layout = {
        "tokenizer_config.json": {
            "add_prefix_space": True, "add_eos_token": True, "model_max_length": 1e30,
            "bos_token": {"__type": "AddedToken", "content": "<|endoftext|>", "lstrip": False, "normalized": True,
                          "rstrip": False, "single_word": False},
            "eos_token": "<|end|>", "unk_token": None, "pad_token": "<|endoftext|>",
            "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
            "added_tokens_decoder": {
                str(n - 1): {"content": "<|endoftext|>", "lstrip": False, "normalized": False, "rstrip": False,
                             "single_word": False, "special": True},
                str(n): {"content": "<|end|>", "lstrip": True, "normalized": False, "rstrip": False,
                         "single_word": False, "special": True},
                str(n + 1): {"content": "zebra", "lstrip": False, "normalized": True, "rstrip": False,
                             "single_word": True, "special": False}},
        },
        # ignored: tokenizer_config.json has added_tokens_decoder
        "special_tokens_map.json": {"eos_token": "<|ignored|>"},
    }
    folders = {}
    for name, files in (("gpt2_files_legacy", legacy), ("gpt2_files_decoder", decoder_layout)):
        folder = os.path.join(OUT, name)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        write_json(os.path.join(folder, "vocab.json"), vocab, compact=True)
        with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
            f.write(merges)
        for fname, obj in files.items():
            write_json(os.path.join(folder, fname), obj)
        folders[name] = folder
    return folders


FOLDER_CASES = ["hello world<|endoftext|>", "Hello<|pad|> <|tool|>x<extra>", " zebra  zebras, xzebra zebra_ <|end|>",
                "  <|end|>  tabs\tand\nnewlines", "numbers 1234567 and 3.14159"]


README = """# Tokenizer test fixtures (generated — do not edit)

Written by `tools/tokenizer_oracle.py`, an independent Python implementation of Hugging Face `tokenizers` (and
transformers' configuration files) for the features of issue 3; regenerate with

    /usr/bin/python3 tools/tokenizer_oracle.py

The output is deterministic. %(n)d folders, each a small tokenizer whose BPE merges the script learns on a fixed
text, and `expected.json`: for each tricky string (runs of spaces, tabs and newlines, digits, contractions with
Unicode apostrophes, emoji, CJK, combining characters, Hangul, Unicode whitespace) the ids with and without special
tokens, the decoded text with and without special tokens, and the words the pre-tokenizer pipeline hands to BPE
(in ByteLevel's byte characters for byte-level tokenizers). `tests/unit/test_tokenizer_oracle.c` checks them all.

- tokenizer.json folders:
  %(names)s.
- `gpt2_files_legacy/`, `gpt2_files_decoder/`: vocab.json + merges.txt folders with the two layouts of the
  configuration (special_tokens_map.json + added_tokens.json; tokenizer_config.json's added_tokens_decoder), with
  `special` in expected.json: the special tokens, add_bos_token / add_eos_token and the chat templates.
- `shared_expected.json`: the same expectations for real tokenizers in `../shared/data` (torchtune's
  tiny_bpe_tokenizer.json, lm-buddy's tiny_gpt2 folder), written when that folder is present. A string with a byte
  the vocabulary lacks is expected to fail: Hugging Face drops such a byte when there is no unk_token, hone refuses.
"""


def main():
    fx = fixtures()
    for name, spec in fx.items():
        folder = os.path.join(OUT, name)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        write_json(os.path.join(folder, "tokenizer.json"), spec, compact=True)
        tok = Tokenizer(json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8")))
        write_json(os.path.join(folder, "expected.json"),
                   {"cases": expectations(tok, TRICKY + EXTRA_CASES.get(name, []))})
    for name, folder in gpt2_folders().items():
        tok, special = load_folder(folder)
        write_json(os.path.join(folder, "expected.json"),
                   {"special": special, "cases": expectations(tok, TRICKY + FOLDER_CASES)})
    shared = {}
    tiny_bpe = os.path.join(SHARED, "tokenizers", "bpe-train", "tiny_bpe_tokenizer.json")
    if os.path.exists(tiny_bpe):
        tok = Tokenizer(json.load(open(tiny_bpe, encoding="utf-8")))
        shared["tokenizers/bpe-train/tiny_bpe_tokenizer.json"] = {
            "cases": expectations(tok, TRICKY + EXTRA_CASES["qwen2"])}
    tiny_gpt2 = os.path.join(SHARED, "models", "tiny_gpt2")
    if os.path.isdir(tiny_gpt2):
        tok, special = load_folder(tiny_gpt2)  # its vocabulary has only l o w e r s t i d n and space
        shared["models/tiny_gpt2"] = {"special": special, "cases": expectations(
            tok, ["lower newer", " lowest wider", "newest<|endoftext|>lower", "<unk>low", "", "  lowlow  "])}
    with open(os.path.join(OUT, "README.md"), "w", encoding="utf-8") as f:
        names = textwrap.fill(", ".join("`%s`" % n for n in sorted(fx)), 114, subsequent_indent="  ")
        f.write(README % {"n": len(fx) + 2, "names": names})
    if shared:
        write_json(os.path.join(OUT, "shared_expected.json"), shared)
    else:
        print("../shared/data is absent: shared_expected.json not rewritten", file=sys.stderr)
    print("wrote %d tokenizer folders to %s" % (len(fx) + 2, OUT))


if __name__ == "__main__":
    main()
