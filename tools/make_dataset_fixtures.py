#!/usr/bin/python3
"""Reference expectations for hone's dataset reader (tests/unit/test_dataset.c).

Reads every dataset case below with Python's json/gzip, converts it with an independent implementation of the
rules of docs/FORMATS.md (LLaMA-Factory's alpaca/sharegpt converters, TRL's maybe_extract_prompt and hh-rlhf
transcript splitting, Tk-Instruct's Super-NaturalInstructions rendering), and writes, per case, the detected
format and kind, the counts (rows, examples, drops by reason with the first line of each) and FNV-1a digests of
the parsed examples: one per file, and one with the roles for the first and the last example (drop reasons
that did not occur are left out). No third-party
text is written: the real files stay in ../shared/data; only counts, roles and digests go into the fixture.

    /usr/bin/python3 tools/make_dataset_fixtures.py tests/fixtures/dataset/expected.json

Digest of an example (the test computes the same from hone's examples): FNV-1a 64 over the UTF-8 bytes of
    kind \\x1e body
where body is, by kind: sft: conv(messages); kto: conv(messages) \\x1e true|false; preference: conv(prompt) \\x1e
conv(chosen) \\x1e conv(rejected); text: the text; tokens: the ids joined by "," \\x1e the labels joined by ","
(or "-" without labels). conv(c) = canon(tools) or "" \\x1d, then per message role \\x1f content \\x1f weight
\\x1f name-or-"" \\x1f canon(tool_calls)-or-"" \\x1d. canon(v) is JSON without escapes or spaces: strings as
"raw UTF-8", integers in decimal, reals as %.17g, objects in their key order. The file digest runs over every
example's bytes, each followed by \\x1c.
"""
import gzip
import json
import os
import string
import sys

CASES = [
    # real files (../shared/data/datasets), with the column mapping the ecosystem uses where the names are not
    # standard (LLaMA-Factory `columns`, torchtune `column_map`)
    ("instruct/alpaca_23.json", {}),
    ("instruct/alpaca_cherry_3111.json", {}),
    ("instruct/alpaca_en_demo_999.json", {}),
    ("instruct/alpaca_tiny_100.json", {}),
    ("instruct/alpaca_tiny_100.json", {"format": "text"}),
    ("instruct/dolly_12.json", {}),
    ("instruct/gsm8k_train.jsonl", {"field_instruction": "question", "field_output": "answer"}),
    ("instruct/identity_91.json", {}),
    ("instruct/instruct_tiny_2.json", {}),
    ("instruct/longform_17.json", {}),
    ("instruct/selfinstruct_seed_tasks_175.jsonl", {}),
    ("chat/axolotl_conversation.json", {}),
    ("chat/axolotl_conversation.vicuna_llama2.tokenized.json", {}),
    ("chat/messages_500.jsonl", {}),
    ("chat/sharegpt_500.json", {}),
    ("chat/sharegpt_tiny_1.json", {}),
    ("chat/sharegpt_toolcall_300.json", {}),
    ("preference/dpo_messages_10.jsonl", {}),
    ("preference/dpo_sharegpt_300.json", {}),
    ("preference/hh_rlhf_harmless_test_2312.jsonl.gz", {}),
    ("preference/hh_rlhf_tiny_1.json", {}),
    ("preference/kto_messages_300.json", {}),
    ("preference/stack_exchange_paired_25.json",
     {"field_prompt": "question", "field_chosen": "response_j", "field_rejected": "response_k"}),
]
FIXTURES = [
    ("alpaca.json", {}),
    ("sharegpt.json", {}),
    ("messages.jsonl", {}),
    ("dolly.jsonl", {}),
    ("oasst.jsonl", {}),
    ("sni_task.json", {}),
    ("sni_rows.jsonl", {}),
    ("self_instruct.jsonl", {}),
    ("text.jsonl", {}),
    ("tokens.jsonl", {}),
    ("pref_strings.jsonl", {}),
    ("pref_alpaca.jsonl", {}),
    ("pref_lists.jsonl", {}),
    ("hh.jsonl", {}),
    ("dpo_sharegpt.json", {}),
    ("kto.jsonl", {}),
    ("kto_alpaca.json", {}),
    ("map_chat.jsonl", {"field_messages": "dialog", "message_field_role": "speaker", "message_field_content": "text",
                        "roles_user": "customer", "roles_assistant": "agent", "roles_system": "narrator",
                        "roles_tool": "api", "field_tools": "functions", "field_system": "sys"}),
    ("map_kto.jsonl", {"field_messages": "dialog", "message_field_role": "speaker", "message_field_content": "text",
                       "roles_user": "customer", "roles_assistant": "agent", "field_label": "desirable"}),
    ("map_alpaca.jsonl", {"field_instruction": "q", "field_input": "ctx", "field_output": "a", "field_system": "sys",
                          "field_history": "hist"}),
    ("map_pref.jsonl", {"field_prompt": "question", "field_chosen": "good", "field_rejected": "bad"}),
    ("map_text.jsonl", {"field_text": "body"}),
]

DROPS = ["unknown_role", "bad_tool_call", "identical_pair", "bad_turns", "empty_answer", "empty_text"]
BUILTIN_ROLES = {"user": "user", "human": "user", "prompter": "user", "assistant": "assistant", "gpt": "assistant",
                 "bot": "assistant", "model": "assistant", "system": "system", "tool": "tool", "observation": "tool",
                 "function": "tool", "function_call": "function_call"}


class Drop(Exception):
    pass


def get(obj, key):
    """A field; JSON null counts as absent."""
    return obj.get(key) if isinstance(obj, dict) else None


def msg(role, content, weight=-1, name=None, tool_calls=None):
    return {"role": role, "content": content, "weight": weight, "name": name, "tool_calls": tool_calls}


def is_blank(s):
    return all(c in " \t\n\r" for c in s)


class Verdict:
    def __init__(self):
        self.reason = None

    def set(self, reason):
        if self.reason is None or DROPS.index(reason) < DROPS.index(self.reason):
            self.reason = reason


class Reader:
    def __init__(self, opts):
        self.o = opts
        self.roles = dict(BUILTIN_ROLES)
        for key, role in (("roles_user", "user"), ("roles_assistant", "assistant"), ("roles_system", "system"),
                          ("roles_tool", "tool")):
            for alias in filter(None, (a.strip() for a in opts.get(key, "").split(","))):
                self.roles[alias] = role

    # ---- detection ----
    def detect(self, row):
        o = self.o
        chosen = o.get("field_chosen") or ("chosen" if get(row, "chosen") is not None else "chosen_messages")
        rejected = o.get("field_rejected") or ("rejected" if get(row, "rejected") is not None else "rejected_messages")
        msgs_name = o.get("field_messages") or ("conversations" if get(row, "conversations") is not None
                                                else "messages")
        instruction = o.get("field_instruction", "instruction")
        msgs = get(row, msgs_name)
        pair = get(row, chosen) is not None and get(row, rejected) is not None
        labelled = isinstance(get(row, o.get("field_label", "label")), bool)

        def chat_format():
            if msgs:
                return "sharegpt" if "from" in msgs[0] else "messages"
            return "sharegpt" if msgs_name == "conversations" else "messages"

        f = o.get("format", "auto")
        if f == "auto":
            root = get(row, "prompt") if isinstance(get(row, "prompt"), dict) else row
            if get(row, "input_ids") is not None:
                f = "tokens"
            elif pair:
                f = chat_format() if isinstance(msgs, list) else "alpaca" if get(row, instruction) is not None \
                    else "preference"
            elif get(row, "Definition") is not None:
                f = "sni"
            elif (get(root, "replies") is not None or get(root, "children") is not None) and \
                    get(root, "text") is not None:
                f = "oasst"
            elif get(row, instruction) is not None and isinstance(get(row, "instances"), list):
                f = "self_instruct"
            elif isinstance(msgs, list):
                f = chat_format()
            elif get(row, instruction) is not None and get(row, "response") is not None and "field_output" not in o:
                f = "dolly"
            elif get(row, o.get("field_output", "output")) is not None and (
                    get(row, instruction) is not None or get(row, o.get("field_input", "input")) is not None):
                f = "alpaca"
            elif get(row, o.get("field_text", "text")) is not None:
                f = "text"
            else:
                raise ValueError("cannot tell the format of %r" % sorted(row))
        kind = {"text": "text", "tokens": "tokens", "preference": "preference"}.get(f)
        if kind is None:
            kind = ("preference" if pair else "kto" if labelled else "sft") if f in (
                "alpaca", "dolly", "sharegpt", "messages") else "sft"
        return f, kind

    def resolve(self, fmt, kind):
        o = self.o
        dolly = fmt == "dolly"
        self.fmt, self.kind = fmt, kind
        self.f_instruction = o.get("field_instruction", "instruction")
        self.f_input = o.get("field_input", "context" if dolly else "input")
        self.f_output = o.get("field_output", "response" if dolly else "output")
        self.f_system = o.get("field_system", "system")
        self.f_history = o.get("field_history", "history")
        self.f_prompt = o.get("field_prompt", "prompt")
        self.f_label = o.get("field_label", "label")
        self.f_text = o.get("field_text", "text")
        self.f_tools = o.get("field_tools", "tools")

    # ---- shared pieces ----
    def row_messages(self, row):
        name = self.o.get("field_messages") or ("conversations" if get(row, "conversations") is not None
                                                else "messages")
        return get(row, name)

    def parse_message(self, m, v, out):
        o = self.o
        role_key = o.get("message_field_role") or ("from" if "from" in m else "role")
        content_key = o.get("message_field_content") or (
            "value" if "value" in m else "content" if "content" in m or role_key != "from" else "value")
        role = m[role_key]
        assert isinstance(role, str)
        wkey = "weight" if get(m, "weight") is not None else "loss_weight"
        weight = get(m, wkey)
        if weight is None:
            weight = -1
        else:
            assert not isinstance(weight, bool) and weight in (0, 1)
            weight = int(weight)
        calls = get(m, "tool_calls") or None
        content = get(m, content_key)
        assert content is not None or calls is not None
        if isinstance(content, list):
            parts = []
            for p in content:
                assert p["type"] == "text"
                parts.append(get(p, "text") if get(p, "text") is not None else get(p, "value"))
            content = "".join(parts)
        text = content if content is not None else ""
        canon_role = self.roles.get(role)
        if canon_role is None:
            v.set("unknown_role")
            return
        if canon_role == "function_call":
            try:
                c = json.loads(text)
            except ValueError:
                c = None
            if isinstance(c, dict):
                c = [c]
            ok = isinstance(c, list) and len(c) > 0 and all(
                isinstance(x, dict) and isinstance(x.get("name"), str) and "arguments" in x for x in c)
            if not ok:
                v.set("bad_tool_call")
                out.append(msg("assistant", text, weight, get(m, "name")))
                return
            calls = [{"type": "function", "function": {"name": x["name"], "arguments": x["arguments"]}} for x in c]
            text, canon_role = "", "assistant"
        out.append(msg(canon_role, text, weight, get(m, "name"), calls))

    def parse_messages(self, lst, v):
        out = []
        for m in lst:
            self.parse_message(m, v, out)
        return out

    def add_row_system(self, row, msgs):
        system = get(row, self.f_system)
        if system and not (msgs and msgs[0]["role"] == "system"):
            msgs.insert(0, msg("system", system))

    def row_tools(self, row):
        t = get(row, self.f_tools)
        if t is None or t == "":
            return None
        if isinstance(t, str):
            t = json.loads(t)
        assert isinstance(t, list)
        return t or None

    @staticmethod
    def check_turns(msgs, v):
        prev = None
        for i, m in enumerate(msgs):
            if i == 0 and m["role"] == "system":
                continue
            role = m["role"]
            if role == "assistant":
                ok = prev is not None and prev != "assistant"
            elif role == "user":
                ok = prev is None or prev == "assistant"
            elif role == "tool":
                ok = prev != "user"
            else:
                ok = False
            if not ok:
                v.set("bad_turns")
                break
            prev = role
        if prev is None or prev != "assistant":
            v.set("bad_turns")
        if any(m["role"] == "assistant" and m["tool_calls"] is None and is_blank(m["content"]) for m in msgs):
            v.set("empty_answer")

    # ---- formats ----
    def chat(self, row, emit):
        v = Verdict()
        msgs = self.parse_messages(self.row_messages(row), v)
        self.add_row_system(row, msgs)
        ex = {"kind": self.kind, "messages": msgs, "tools": self.row_tools(row)}
        if self.kind == "kto":
            assert isinstance(row[self.f_label], bool)
            ex["label"] = row[self.f_label]
        self.check_turns(msgs, v)
        emit(ex, v)

    def alpaca_prompt(self, row):
        msgs = []
        system = get(row, self.f_system)
        instruction, inp = get(row, self.f_instruction), get(row, self.f_input)
        assert instruction is not None or inp is not None
        if system:
            msgs.append(msg("system", system))
        for q, a in get(row, self.f_history) or []:
            msgs += [msg("user", q), msg("assistant", a)]
        msgs.append(msg("user", "\n".join(x for x in (instruction, inp) if x)))
        return msgs

    def alpaca(self, row, emit):
        msgs = self.alpaca_prompt(row) + [msg("assistant", row[self.f_output])]
        ex = {"kind": self.kind, "messages": msgs, "tools": self.row_tools(row)}
        if self.kind == "kto":
            ex["label"] = row[self.f_label]
        v = Verdict()
        self.check_turns(msgs, v)
        emit(ex, v)

    def self_instruct(self, row, emit):
        for inst in row["instances"]:
            msgs = [msg("user", "\n".join(x for x in (row[self.f_instruction], get(inst, "input")) if x)),
                    msg("assistant", inst["output"])]
            v = Verdict()
            self.check_turns(msgs, v)
            emit({"kind": "sft", "messages": msgs, "tools": None}, v)

    def sni(self, row, emit):
        # Tk-Instruct's ni_collator with add_task_name=False, add_task_definition=True, num_pos_examples=2,
        # num_neg_examples=0, add_explanation=False; the first acceptable output.
        def end(s):
            return s if s[-1] in string.punctuation else s + "."

        first = lambda x: x[0] if isinstance(x, list) else x
        definition = end("Definition: " + first(row["Definition"]).strip()) + "\n\n"
        pos = ""
        for idx, ex in enumerate((get(row, "Positive Examples") or [])[:2]):
            s = end(f" Positive Example {idx + 1} -\nInput: {ex['input'].strip()}") + "\n"
            s = end(s + f" Output: {ex['output'].strip()}") + "\n"
            pos += s + "\n"
        instances = get(row, "Instances")
        if instances is None:
            instances = [get(row, "Instance") or row]
        for inst in instances:
            task = end("Now complete the following example -\n" + f"Input: {inst['input'].strip()}") + "\nOutput: "
            msgs = [msg("user", definition + pos + task), msg("assistant", first(inst["output"]).strip())]
            v = Verdict()
            self.check_turns(msgs, v)
            emit({"kind": "sft", "messages": msgs, "tools": None}, v)

    def oasst(self, row, emit):
        node = row["prompt"] if isinstance(get(row, "prompt"), dict) else row
        role_key = self.o.get("message_field_role", "role")
        text_key = self.o.get("message_field_content", "text")
        msgs, v = [], Verdict()
        while node is not None:
            role = self.roles.get(node[role_key])
            if role is None or role == "function_call":
                v.set("unknown_role")
            else:
                msgs.append(msg(role, node[text_key]))
            replies = get(node, "replies") if get(node, "replies") is not None else get(node, "children")
            best, best_rank = None, float("inf")
            for reply in replies or []:
                if reply.get("deleted") is True:
                    continue
                rank = get(reply, "rank")
                rank = float("inf") if rank is None else rank
                if best is None or rank < best_rank:
                    best, best_rank = reply, rank
            node = best
        while msgs and msgs[-1]["role"] != "assistant":
            msgs.pop()
        self.check_turns(msgs, v)
        emit({"kind": "sft", "messages": msgs, "tools": None}, v)

    def text(self, row, emit):
        t = row[self.f_text]
        v = Verdict()
        if is_blank(t):
            v.set("empty_text")
        emit({"kind": "text", "text": t}, v)

    def tokens(self, row, emit):
        v = Verdict()
        if not row["input_ids"]:
            v.set("empty_text")
        emit({"kind": "tokens", "ids": row["input_ids"], "labels": get(row, "labels")}, v)

    # ---- preference ----
    @staticmethod
    def transcript(s):
        # TRL's hh-rlhf extract_dialogue, with only the leading tag removed
        out = []
        for part in s.strip().split("\n\n"):
            for tag, role in (("Human:", "user"), ("Assistant:", "assistant")):
                if part.startswith(tag):
                    out.append(msg(role, part[len(tag):].strip()))
                    break
            else:
                assert out, "not a transcript"
                out[-1]["content"] += "\n\n" + part.strip()
        return out

    @staticmethod
    def is_transcript(s):
        return s.strip().startswith("Human:")

    @staticmethod
    def split_lists(c, r):
        n = min(len(c), len(r))
        idx = 0
        while idx < n and c[idx] == r[idx]:
            idx += 1
        if idx == n and n:
            idx = n - 1
        return c[:idx], c[idx:], r[idx:]

    @staticmethod
    def split_strings(c, r):
        n = min(len(c), len(r))
        d = 0
        while d < n and c[d] == r[d]:
            d += 1
        if d == n:
            return max(n - 1, 0)
        if d and c[d - 1] == " ":
            d -= 1
        return d

    def preference(self, row, emit):
        o = self.o
        ck = o.get("field_chosen") or ("chosen" if get(row, "chosen") is not None else "chosen_messages")
        rk = o.get("field_rejected") or ("rejected" if get(row, "rejected") is not None else "rejected_messages")
        cv, rv = row[ck], row[rk]
        prompt, msgs = get(row, self.f_prompt), self.row_messages(row)
        v = Verdict()
        if isinstance(cv, str):
            if self.is_transcript(cv):
                fc, fr = self.transcript(cv), self.transcript(rv)
                if isinstance(prompt, str) and self.is_transcript(prompt):
                    p, ch, rj = self.transcript(prompt), fc, fr
                elif isinstance(prompt, list):
                    p, ch, rj = self.parse_messages(prompt, v), fc, fr
                else:
                    p, ch, rj = self.split_lists(fc, fr)
            else:
                if isinstance(prompt, str):
                    p = [msg("user", prompt)] if prompt else []
                elif prompt is None and isinstance(msgs, list):
                    p = self.parse_messages(msgs, v)
                elif prompt is None and (get(row, self.f_instruction) is not None or
                                         get(row, self.f_input) is not None):
                    p = self.alpaca_prompt(row)
                else:
                    d = self.split_strings(cv, rv)
                    p = [msg("user", cv[:d])] if d else []
                    cv, rv = cv[d:], rv[d:]
                ch, rj = [msg("assistant", cv)], [msg("assistant", rv)]
        elif isinstance(cv, list):
            if isinstance(prompt, list) or (prompt is None and isinstance(msgs, list)):
                p = self.parse_messages(prompt if isinstance(prompt, list) else msgs, v)
                ch, rj = self.parse_messages(cv, v), self.parse_messages(rv, v)
            else:
                p, ch, rj = self.split_lists(self.parse_messages(cv, v), self.parse_messages(rv, v))
        else:
            p = self.parse_messages(msgs if isinstance(msgs, list) else prompt, v)
            ch, rj = [], []
            self.parse_message(cv, v, ch)
            self.parse_message(rv, v, rj)
        self.add_row_system(row, p)
        if ch == rj:
            v.set("identical_pair")
        for comp in (ch, rj):
            if not comp or comp[0]["role"] != "assistant":
                v.set("bad_turns")
            else:
                self.check_turns(p + comp, v)
        emit({"kind": "preference", "prompt": p, "chosen": ch, "rejected": rj, "tools": self.row_tools(row)}, v)

    def parse(self, row, emit):
        if self.kind == "preference":
            return self.preference(row, emit)
        return {"alpaca": self.alpaca, "dolly": self.alpaca, "sharegpt": self.chat, "messages": self.chat,
                "oasst": self.oasst, "sni": self.sni, "self_instruct": self.self_instruct, "text": self.text,
                "tokens": self.tokens}[self.fmt](row, emit)


# ---- files ----

def rows_of(path):
    """(line, index, row) for every row: JSONL lines, JSON array elements or one object."""
    raw = gzip.open(path, "rb").read() if open(path, "rb").read(2) == b"\x1f\x8b" else open(path, "rb").read()
    text = raw.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    start = len(text) - len(text.lstrip(" \t\n\r"))
    jsonl = text[start] == "{" and (path.endswith(".jsonl") or path.endswith(".jsonl.gz"))
    if text[start] == "{" and not jsonl:
        try:
            json.loads(text[start:].split("\n", 1)[0])
            jsonl = True
        except ValueError:
            pass
    if jsonl:
        index = 0
        for lineno, line in enumerate(text.split("\n"), 1):
            if line.strip(" \t\r"):
                yield lineno, index, json.loads(line)
                index += 1
    elif text[start] == "{":
        yield text.count("\n", 0, start) + 1, 0, json.loads(text[start:])
    else:
        dec, pos, index = json.JSONDecoder(), start + 1, 0
        while True:
            while text[pos] in " \t\n\r,":
                pos += 1
            if text[pos] == "]":
                return
            obj, end = dec.raw_decode(text, pos)
            yield text.count("\n", 0, pos) + 1, index, obj
            pos, index = end, index + 1


def canon(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "%.17g" % v
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    return "{" + ",".join('"' + k + '":' + canon(x) for k, x in v.items()) + "}"


def conv(msgs, tools=None):
    s = (canon(tools) if tools else "") + "\x1d"
    for m in msgs:
        s += "\x1f".join([m["role"], m["content"], str(m["weight"]), m["name"] or "",
                          canon(m["tool_calls"]) if m["tool_calls"] else ""]) + "\x1d"
    return s


def serialize(ex):
    k = ex["kind"]
    if k == "sft":
        body = conv(ex["messages"], ex["tools"])
    elif k == "kto":
        body = conv(ex["messages"], ex["tools"]) + "\x1e" + ("true" if ex["label"] else "false")
    elif k == "preference":
        body = conv(ex["prompt"], ex["tools"]) + "\x1e" + conv(ex["chosen"]) + "\x1e" + conv(ex["rejected"])
    elif k == "text":
        body = ex["text"]
    else:
        body = ",".join(map(str, ex["ids"])) + "\x1e" + (",".join(map(str, ex["labels"])) if ex["labels"] else "-")
    return (k + "\x1e" + body).encode("utf-8")


def fnv(data, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def roles(ex):
    if ex["kind"] == "preference":
        return [[m["role"] for m in ex[k]] for k in ("prompt", "chosen", "rejected")]
    if ex["kind"] in ("sft", "kto"):
        return [[m["role"] for m in ex["messages"]]]
    return []


def expect(path, opts):
    reader = Reader(opts)
    rows = list(rows_of(path))
    detected = {reader.detect(row) for _, _, row in rows[:16]}
    assert len(detected) == 1, detected
    reader.resolve(*detected.pop())
    dropped = {r: 0 for r in DROPS}
    first_line = {r: 0 for r in DROPS}
    examples = []
    for line, index, row in rows:
        def emit(ex, v):
            if v.reason:
                dropped[v.reason] += 1
                first_line[v.reason] = first_line[v.reason] or line
            else:
                examples.append((line, index, ex))
        reader.parse(row, emit)
    file_digest = 0xCBF29CE484222325
    for _, _, ex in examples:
        file_digest = fnv(serialize(ex) + b"\x1c", file_digest)

    def one(item):
        line, index, ex = item
        return {"line": line, "index": index, "roles": roles(ex), "digest": "%016x" % fnv(serialize(ex))}

    return {"format": reader.fmt, "kind": reader.kind, "rows": len(rows), "examples": len(examples),
            "dropped_by": {r: n for r, n in dropped.items() if n},
            "first_dropped_line": {r: n for r, n in first_line.items() if n}, "digest": "%016x" % file_digest,
            "first": one(examples[0]) if examples else None, "last": one(examples[-1]) if examples else None}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/dataset/expected.json"
    cases = []
    for rel, opts in CASES:
        path = os.path.join("../shared/data/datasets", rel)
        if not os.path.exists(path):
            sys.exit("missing %s: run from the repository root with ../shared/data present" % path)
        cases.append(dict(file=path, options=opts, **expect(path, opts)))
    for rel, opts in FIXTURES:
        path = os.path.join("tests/fixtures/dataset", rel)
        cases.append(dict(file=path, options=opts, **expect(path, opts)))
    with open(out, "w") as f:  # one case per line
        f.write('{"generator": "tools/make_dataset_fixtures.py", "cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")
    for c in cases:
        print("%-70s %-13s %-10s rows %5d examples %5d dropped %s" % (
            c["file"], c["format"], c["kind"], c["rows"], c["examples"],
            c["dropped_by"]))


if __name__ == "__main__":
    main()
