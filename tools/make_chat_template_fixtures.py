#!/usr/bin/python3
"""Reference renderings of chat templates for tests/unit/test_chat_template.c.

Renders every template in tests/fixtures/chat_templates/*.jinja (official Hugging Face templates, see the README
there) and hone's built-in templates (read from src/tokenizer/chat_template.c) on a set of conversations, with
jinja2 set up exactly as transformers' apply_chat_template sets it up (chat_template_utils.py:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker,
loopcontrols]), the tojson override, raise_exception and strftime_now), and writes the texts — or the errors
— and the {% generation %} spans (as byte offsets) to tests/fixtures/chat_templates/expected.json.

The two built-ins without an official template are also checked here against independent implementations of
their formats: FastChat's Conversation.get_prompt for vicuna_v1.1 and Stanford Alpaca's prompt for alpaca.

Run with Debian's /usr/bin/python3 (jinja2 3.1); the output is deterministic (strftime_now uses a fixed time in
UTC).
"""
import ast
import contextlib
import datetime
import json
import os
import re
import sys
import time

import jinja2
import jinja2.nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "chat_templates")
NOW = 1721952000  # 2024-07-26 00:00:00 UTC: what strftime_now sees (rendered in UTC)

os.environ["TZ"] = "UTC"
time.tzset()


# ---- transformers' environment (src/transformers/utils/chat_template_utils.py) ----

class AssistantTracker(Extension):
    tags = {"generation"}

    def __init__(self, environment):
        super().__init__(environment)
        environment.extend(activate_tracker=self.activate_tracker)
        self._rendered_blocks = None
        self._generation_indices = None

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        rv = caller()
        if self.is_active():
            start_index = len("".join(self._rendered_blocks))
            end_index = start_index + len(rv)
            self._generation_indices.append((start_index, end_index))
        return rv

    def is_active(self):
        return self._rendered_blocks or self._generation_indices

    @contextlib.contextmanager
    def activate_tracker(self, rendered_blocks, generation_indices):
        try:
            if self.is_active():
                raise ValueError("AssistantTracker should not be reused before closed")
            self._rendered_blocks = rendered_blocks
            self._generation_indices = generation_indices
            yield
        finally:
            self._rendered_blocks = None
            self._generation_indices = None


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.datetime.fromtimestamp(NOW).strftime(format)


def compile_template(source):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def render(source, messages, tools, add_generation_prompt, special, extra):
    """apply_chat_template(tokenize=False, return_assistant_tokens_mask=True): text and character spans."""
    template = compile_template(source)
    kwargs = {**special, **extra}
    blocks, indices = [], []
    with template.environment.activate_tracker(blocks, indices):
        for block in template.generate(messages=messages, tools=tools, documents=None,
                                       add_generation_prompt=add_generation_prompt, **kwargs):
            blocks.append(block)
        text = "".join(blocks)
    return text, indices


# ---- conversations ----

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello, how are you?"}],
    "system_user": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "multi_turn": [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "Why did the chicken cross the road? To get to the other side."},
        {"role": "user", "content": "Another one, please."},
    ],
    "system_multi_turn": [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Italy?"},
    ],
    "user_assistant": [
        {"role": "user", "content": "Say yes."},
        {"role": "assistant", "content": "Yes."},
    ],
    "unicode": [
        {"role": "system", "content": "Tu es un assistant 🤖 qui parle français."},
        {"role": "user", "content": "Ça va? 日本語のテキスト — “quotes” and a\u00a0no-break space"},
        {"role": "assistant", "content": "Très bien ! 🎉 Ελληνικά, Кириллица, العربية\u2028(line separator)"},
    ],
    "whitespace": [
        {"role": "user", "content": "  leading and trailing spaces  \n\n"},
        {"role": "assistant", "content": "\n\tan answer with tabs\t\n"},
        {"role": "user", "content": "multi\n\nline\r\nwith a CRLF and {{ braces }} and {% tags %}"},
    ],
    "named_user": [{"role": "user", "content": "Who am I?", "name": "alice"}],
    "tool_call": [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "tool_calls": [{"id": "call12345", "type": "function", "function": {
            "name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "name": "get_weather", "content": "22.5"},
        {"role": "assistant", "content": "It is 22.5 °C in Paris."},
    ],
    "bad_alternation": [
        {"role": "user", "content": "First question."},
        {"role": "user", "content": "Second question without an answer in between."},
    ],
    "empty": [],
}

TOOL_CONVERSATIONS = {"tool_call"}
TOOL_TEMPLATES = {"llama3.1-instruct", "llama3.2-instruct", "mistral-v0.3-instruct", "qwen2.5-instruct", "smollm3"}

LLAMA_SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
SPECIAL = {
    "qwen2-instruct": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "qwen2.5-instruct": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "llama2-chat": LLAMA_SPECIAL,
    "llama3-instruct": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3.1-instruct": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3.2-instruct": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "mistral-v0.1-instruct": LLAMA_SPECIAL,
    "mistral-v0.3-instruct": LLAMA_SPECIAL,
    "zephyr-beta": LLAMA_SPECIAL,
    "tinyllama-chat": LLAMA_SPECIAL,
    "gemma2-it": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"},
    "phi3-mini": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "smollm2-instruct": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "smollm3": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "openhermes-2.5-mistral": {"bos_token": "<s>", "eos_token": "<|im_end|>"},
}

# Extra variables some templates read (passed as apply_chat_template kwargs).
EXTRA_RUNS = {
    "llama3.1-instruct": [{"date_string": "01 Jan 2025"}, {"tools_in_user_message": False}],
    "smollm3": [{"enable_thinking": False}],
}

# hone's built-ins with an official template: they must render what the official one renders.
BUILTIN_OFFICIAL = {
    "chatml": "openhermes-2.5-mistral", "llama2": "llama2-chat", "llama3": "llama3-instruct",
    "mistral": "mistral-v0.1-instruct", "zephyr": "zephyr-beta", "gemma": "gemma2-it", "phi3": "phi3-mini",
}


# ---- independent references for the hone-defined built-ins ----

VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's questions.")


def fastchat_vicuna(messages, add_generation_prompt, eos):
    """FastChat's get_prompt for vicuna_v1.1 (SeparatorStyle.ADD_COLON_TWO, sep " ", sep2 "</s>")."""
    system = VICUNA_SYSTEM
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    turns = [("USER" if m["role"] == "user" else "ASSISTANT", m["content"]) for m in messages]
    if add_generation_prompt:
        turns.append(("ASSISTANT", None))
    seps = [" ", eos]
    ret = system + seps[0]
    for i, (role, message) in enumerate(turns):
        ret += role + ": " + message + seps[i % 2] if message is not None else role + ":"
    return ret


ALPACA_PREAMBLE = ("Below is an instruction that describes a task. "
                   "Write a response that appropriately completes the request.\n\n")


def stanford_alpaca(messages, eos):
    """Stanford Alpaca's prompt_no_input + output + eos per turn, turns joined by a blank line."""
    out = ALPACA_PREAMBLE
    if messages and messages[0]["role"] == "system":
        out, messages = messages[0]["content"] + "\n\n", messages[1:]
    first = True
    for m in messages:
        if m["role"] == "user":
            out += ("" if first else "\n\n") + "### Instruction:\n" + m["content"] + "\n\n### Response:"
            first = False
        else:
            out += m["content"] + eos
    return out


def builtin_sources():
    """hone's built-in templates: the builtin_names / builtin_sources arrays of src/tokenizer/chat_template.c."""
    c = open(os.path.join(ROOT, "src", "tokenizer", "chat_template.c"), encoding="utf-8").read()
    names = re.findall(r'"(\w+)"', re.search(r"builtin_names\[\] = \{(.*?)\};", c, re.S).group(1))
    body = re.search(r"builtin_sources\[\] = \{\n(.*?)\n\};", c, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    sources = [ast.literal_eval("".join(re.findall(r'"(?:[^"\\]|\\.)*"', part))) for part in body.split(",\n")
               if part.strip()]
    assert len(names) == len(sources), (names, len(sources))
    return dict(zip(names, sources))


# ---- engine semantics: small templates, each rendered with its own variables ----

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]

ENGINE_CASES = [
    # statements
    ("{% if x %}a{% elif y %}b{% else %}c{% endif %}", {"x": 0, "y": 1}),
    ("{% if x %}a{% elif y %}b{% else %}c{% endif %}", {}),
    ("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
     "{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.depth }}{{ loop.depth0 }}|{% endfor %}", {"messages": MSGS}),
    ("{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ loop.nextitem.role"
     " if loop.nextitem is defined else '-' }} {% endfor %}", {"messages": MSGS}),
    ("{% for m in messages %}{{ loop.cycle('odd', 'even') }}{{ loop.changed(m.role == 'user') }} {% endfor %}",
     {"messages": MSGS}),
    ("{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}:{{ m.content }}"
     "{% if not loop.last %}, {% endif %}{% endfor %}", {"messages": MSGS}),
    ("{% for m in messages if m.role == 'tool' %}x{% else %}no tools{% endfor %}", {"messages": MSGS}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|items %}{{ k }}{% endfor %}"
     "{% for k in d %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": [1, 2], "c": None}}),
    ("{% for a, (b, c) in [[1, [2, 3]], [4, [5, 6]]] %}{{ a + b + c }} {% endfor %}", {}),
    ("{% for c in 'héllo' %}[{{ c }}]{% endfor %}{% for x in none_var %}never{% endfor %}", {}),
    ("{% for i in range(10) %}{% if i is even %}{% continue %}{% endif %}{% if i > 6 %}{% break %}{% endif %}"
     "{{ i }}{% endfor %}", {}),
    ("{% for i in [1, 2] %}{% for j in [3, 4] %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}{{ loop.index }}|"
     "{% endfor %}", {}),
    ("{% for i in [1, 2] %}{% set outer = loop %}{% for j in 'ab' %}{{ outer.index }}{{ loop.index }}{% endfor %}"
     "{% endfor %}", {}),
    ("{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + i %}{{ x }};{% endfor %}{{ x }}", {}),
    ("{% if true %}{% set y = 'set in if' %}{% endif %}{{ y }}", {}),
    ("{% set a, b = 'xy' %}{{ b }}{{ a }}{% set t = 1, 'two', 3.0 %}{{ t }}{{ t[1] }}", {}),
    ("{% set ns = namespace(found=false, n=0, items=[]) %}{% for m in messages %}{% if m.role == 'user' %}"
     "{% set ns.found = true %}{% set ns.n = ns.n + 1 %}{% set ns.items = ns.items + [m.content] %}{% endif %}"
     "{% endfor %}{{ ns.found }} {{ ns.n }} {{ ns.items }} {{ ns }}", {"messages": MSGS}),
    ("{% set block %}\n  Some {{ 'text' }}  \n{% endset %}[{{ block }}]{% set up | upper | trim %} a b {% endset %}"
     "[{{ up }}]", {}),
    ("{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}"
     "{{ greet('Ann') }} {{ greet('Bob', 'Hi') }} {{ greet('Cy', punct='?') }} {{ greet(name='Di') }}", {}),
    ("{% macro m(a, b=a * 2) %}{{ a }},{{ b }},{{ varargs }},{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1, 2, 3, 4) }}"
     "|{{ m(1, z='q') }}", {}),
    ("{% macro m(a) %}{{ a }}{% endmacro %}{{ m() }}|{{ m }}", {}),
    ("{% macro row(cls) %}<{{ cls }}>{{ caller('x', 2) }}</{{ cls }}>{% endmacro %}"
     "{% macro box() %}[{{ caller() }}]{% endmacro %}"
     "{% call(a, b) row('td') %}{{ a * b }}{% endcall %}{% call box() %}inside{% endcall %}", {}),
    ("{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}", {}),
    ("{% set v = 'outer' %}{% macro show() %}{{ v }}{% endmacro %}{% set v = 'changed' %}{{ show() }}"
     "{% for i in [1] %}{% set v = 'loop' %}{{ show() }}{% endfor %}", {}),
    ("{% filter upper %}abc {{ 'def' }}{% endfilter %}{% filter trim | replace('a', 'o') %}  banana  {% endfilter %}",
     {}),
    ("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    ("{% print 'a', 1 %}{% print %}", {}),
    ("{% raw %}{{ kept }} {% if %}{% endraw %}|{% raw -%}  x  {%- endraw %}|", {}),
    ("a{# a comment {{ x }} #}b{#- trimmed -#}  c", {}),
    ("{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}"
     "{% else %}{{ m.role }}: {{ m.content }}\n{% endif %}{% endfor %}", {"messages": MSGS}),
    ("{% for m in messages %}{% generation %}<{{ m.content }}>{% endgeneration %}{% endfor %}",
     {"messages": MSGS[2:]}),
    ("{% macro asst(t) %}[{% generation %}{{ t }}{% endgeneration %}]{% endmacro %}x{{ asst('a') }}{{ asst('bc') }}",
     {}),
    # whitespace control, trim_blocks and lstrip_blocks
    ("a\n  {% if true %}\n    b\n  {% endif %}\nc", {}),
    ("a  {% if true %}  b  {% endif %}  c", {}),
    ("a\n  {%- if true -%}\n    b\n  {%- endif -%}\nc", {}),
    ("a\n  {%+ if true +%}\n    b\n  {%+ endif +%}\nc", {}),
    ("a\n  {{ 'x' }}\n  {# comment #}\n  {#- c2 -#}\n  z", {}),
    ("  {% for i in [1, 2] %}\n  - {{ i }}\n  {% endfor %}\nend", {}),
    ("{{- 'a' -}}   \n   {{- 'b' }}  {{ 'c' -}}\n\nd", {}),
    ("line1\n{# c #}\nline2\n\t{% if true %}tab{% endif %}\n\u00a0 {% if true %}nbsp{% endif %}", {}),
    ("x{% if true %}\n{% endif %}y\n{% if true %}\n\n{% endif %}\nz", {}),
    ("text with trailing newlines\n\n", {}),
    ("text\r\nwith\rCR\r\n{{ 'a\r\nb' }}", {}),
    ("{{ {'a': {'b': [1, {'c': 2}]}} }}{{ '{{' ~ '}}' }}", {}),
    # literals and operators
    ("{{ 'tab\\there' }}|{{ \"q'\" }}|{{ 'q\\'q' }}|{{ '\\u00e9\\x41\\101\\n' }}|{{ 'a' 'b' \"c\" }}|{{ '\\d' }}", {}),
    ("{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_0.5e1 }} {{ 2.5e-3 }} {{ 1E3 }} {{ 0 }}", {}),
    ("{{ true }} {{ True }} {{ false }} {{ none }} {{ None }} {{ [] }} {{ {} }} {{ () }} {{ (1,) }} {{ [1, 'a', none] }}",
     {}),
    ("{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -2 }}"
     " {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1 + 2 * 3 - 4 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 10 / 4 * 2 }}", {}),
    ("{{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 3.0 }} {{ -0.0 }} {{ 2 ** 62 }}"
     " {{ 1.5e300 * 1e10 }} {{ 123456789.123456789 }} {{ 5e-324 }}", {}),
    ("{{ 'a' + 'b' }} {{ [1] + [2] }} {{ (1,) + (2,) }} {{ 'ab' * 3 }} {{ [0] * 3 }} {{ 3 * 'x' }} {{ 'a' ~ 1 ~ none ~ x }}"
     " {{ true + 1 }} {{ 1 ~ 2.0 }}", {}),
    ("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ (1, 2) >= (1, 2) }} {{ 1 == 1.0 }}"
     " {{ 1 != '1' }} {{ none == none }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ x == y }}", {}),
    ("{{ 'b' in 'abc' }} {{ 'x' not in 'abc' }} {{ 2 in [1, 2] }} {{ 'a' in {'a': 1} }} {{ 1 in (1,) }}"
     " {{ '' in 'abc' }} {{ x in [1] }} {{ 'k' in d }}", {"d": {"k": None}}),
    ("{{ 0 or 'a' }} {{ '' and 'b' }} {{ 1 and 2 }} {{ none or [] }} {{ not 0 }} {{ not 'x' }} {{ not x is defined }}"
     " {{ not 1 == 2 }}", {}),
    ("{{ 'yes' if true else 'no' }} {{ 'yes' if false else 'no' }} [{{ 'only if' if false }}] {{ 1 if 0 else 2 if 0 else 3 }}",
     {}),
    ("{{ messages[0].role }} {{ messages[-1]['content'] }} {{ messages.0.content }} {{ d.a }} {{ d['b'] }} {{ d.get('a') }}"
     " [{{ d.missing }}] [{{ messages[10] }}]", {"messages": MSGS, "d": {"a": 1, "b": 2}}),
    ("{{ messages[1:] | length }} {{ messages[:-1] | map(attribute='role') | join(',') }} {{ 'abcdef'[::2] }}"
     " {{ 'abcdef'[::-1] }} {{ [1, 2, 3, 4][-3:-1] }} {{ 'héllo'[1:4] }} {{ [1, 2, 3][5:] }} {{ (1, 2, 3)[::-2] }}"
     " {{ range(10)[2:8:3] }}", {"messages": MSGS}),
    ("{{ d['items'] }}|{{ d.items is defined }}|{{ 'abc'.upper is defined }}|{{ 'abc'.nosuch is defined }}",
     {"d": {"items": 5}}),
    # filters
    ("{{ -3 | abs }} {{ -2.5 | abs }} {{ 'Hello' | attr('upper') is defined }} {{ [1, 2, 3, 4, 5] | batch(2) | list }}"
     " {{ [1, 2, 3] | batch(2, 'x') | list }} {{ [1, 2, 3, 4, 5] | slice(2) | list }}", {}),
    ("{{ 'hELLO wORLD' | capitalize }} {{ 'hello' | center(11) }}| {{ [1, 2] | count }} {{ 'héllo' | length }}"
     " {{ x | default('dflt') }} {{ '' | d('empty', true) }} {{ none | default('kept') }}", {}),
    ("{{ d | dictsort }} {{ d | dictsort(reverse=true) }} {{ d | dictsort(by='value') }} {{ d | dictsort(true) }}",
     {"d": {"b": 2, "A": 3, "a": 1}}),
    ("{{ '<a href=\"x\">&</a>' | e }} {{ '<b>' | escape | escape }} {{ '<b>' | safe }} {{ '<i>' | safe | e }}"
     " {{ '<x>' | forceescape }}", {}),
    ("{{ [3, 1, 2] | first }} {{ 'abc' | last }} {{ [] | first }}|{{ (messages | last).content }}",
     {"messages": MSGS}),
    ("{{ '3.5' | float }} {{ 'x' | float }} {{ 'x' | float(1.5) }} {{ 2 | float }} {{ ' 42 ' | int }} {{ '42.9' | int }}"
     " {{ 'x' | int(7) }} {{ 3.99 | int }} {{ '0x1A' | int(0, 16) }} {{ '1_000' | int }} {{ true | int }}", {}),
    ("{{ '%s is %d years and %.2f%%' | format('Ann', 30, 99.5) }} {{ '%(a)s-%(b)05d' | format(a='x', b=42) }}"
     " {{ '%5s|%-5s|%x|%o|%e|%r|%c' % ('ab', 'cd', 255, 8, 12345.678, 'q', 65) }}", {}),
    ("{{ 'line1\nline2\n\nline4' | indent }}|{{ 'a\nb' | indent(2, true) }}|{{ 'a\n\nb' | indent('>', blank=true) }}",
     {}),
    ("{{ [1, 'a', none] | join }} {{ [1, 2] | join(', ') }} {{ messages | join(' ', attribute='role') }}",
     {"messages": MSGS}),
    ("{{ 'ABC' | lower }} {{ 'abc' | upper }} {{ 'hello-world (foo) [bar] <baz>' | title }} {{ \"they're\" | title }}"
     " {{ 'ßtraße' | upper }}", {}),
    ("{{ 'ΣΑΣ ΑΣ.' | lower }} {{ 'İx' | lower }} {{ 'ﬁne ﬂow' | upper }} {{ 'straße' | title }} {{ 'ßa' | capitalize }}"
     " {{ 'Straße'.swapcase() }} {{ 'ÉCOLE' | lower }} {{ 'ǆ' | upper }}", {}),
    ("{{ ['a', 'b'] | list }} {{ 'ab' | list }} {{ {'k': 1} | list }} {{ messages | map(attribute='role') | list }}"
     " {{ [1, 2] | map('string') | list }} {{ messages | map(attribute='missing', default='?') | list }}",
     {"messages": MSGS}),
    ("{{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }} {{ ['b', 'A', 'c'] | max }} {{ ['b', 'A', 'c'] | min(true) }}"
     " {{ messages | max(attribute='content') }} {{ [] | max }}", {"messages": MSGS}),
    ("{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} {{ [0, 1, '', 'a'] | select"
     " | list }} {{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}"
     " {{ messages | rejectattr('role', 'in', ['user', 'system']) | list | length }} {{ [1, 5, 9] | select('>', 3)"
     " | list }}", {"messages": MSGS}),
    ("{{ 'aaa' | replace('a', 'b', 2) }} {{ 'abc' | replace('', '-') }} {{ 1234 | replace('2', 'x') }}"
     " {{ 'abc' | reverse }} {{ [1, 2, 3] | reverse | list }} {{ {'a': 1, 'b': 2} | reverse | list }}", {}),
    ("{{ 42.55 | round }} {{ 42.55 | round(1, 'floor') }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }}"
     " {{ 1234.5 | round(-2) }} {{ 5 | round }} {{ 15 | round(-1, 'ceil') }} {{ -1.5 | round }} {{ 0.125 | round(2) }}",
     {}),
    ("{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] |"
     " sort(case_sensitive=true) }} {{ messages | sort(attribute='role,content') | map(attribute='content') | list }}",
     {"messages": MSGS}),
    ("{{ 12 | string }} {{ none | string }} {{ [1, 'x'] | string }} {{ [1, 2, 3] | sum }} {{ [0.5, 1] | sum(start=1) }}"
     " {{ messages | sum(attribute='missing_never') if false else 0 }}", {"messages": MSGS}),
    ("[{{ '  padded\n\t' | trim }}] [{{ 'xxhixx' | trim('x') }}] [{{ '\u3000wide\u00a0' | trim }}]"
     " {{ ['a', 'b', 'a', 'A'] | unique | list }} {{ ['a', 'A'] | unique(case_sensitive=true) | list }}"
     " {{ 'one two  three' | wordcount }}", {}),
    ("{{ d | tojson }} {{ d | tojson(indent=2) }} {{ d | tojson(sort_keys=true) }} {{ d | tojson(separators=(',', ':')) }}"
     " {{ 'é\u2028\x00\x7f\U0001F600' | tojson }} {{ 'é😀' | tojson(ensure_ascii=true) }} {{ [] | tojson(indent=4) }}"
     " {{ {'k': {}} | tojson(indent='--') }} {{ [1.0, 1e20, -0.0, true, none] | tojson }} {{ {1: 'a', 2.5: 'b', true: 'c', none: 'd'} | tojson }}",
     {"d": {"z": [1, 2.5, None, True, "x\"y\\"], "a": {"n": -1}}}),
    ("{{ x | tojson }}", {}),
    ("{{ messages | map('upper') | list }}", {"messages": MSGS}),
    # tests
    ("{{ 3 is odd }} {{ 3 is even }} {{ 9 is divisibleby 3 }} {{ x is defined }} {{ x is undefined }} {{ none is none }}"
     " {{ true is boolean }} {{ 1 is boolean }} {{ false is false }} {{ true is true }} {{ 1 is integer }} {{ true is integer }}"
     " {{ 1.0 is float }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ 'a' is string }} {{ {} is mapping }} {{ 1.5 is number }}",
     {}),
    ("{{ [] is sequence }} {{ 'a' is sequence }} {{ {} is sequence }} {{ 1 is sequence }} {{ x is sequence }} {{ 1 is iterable }}"
     " {{ 'a' is iterable }} {{ x is iterable }} {{ range is callable }} {{ 'a' is callable }} {{ 1 is sameas 1 }}"
     " {{ none is sameas none }} {{ 'a' is escaped }} {{ 'a' | safe is escaped }} {{ 2 is in [1, 2] }} {{ 1 is eq 1 }}"
     " {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 2 is gt 1 }} {{ 2 is ge 2 }} {{ 1 is lt 2 }} {{ 1 is le 0 }}"
     " {{ 'upper' is filter }} {{ 'odd' is test }} {{ 'x' is not string }}", {}),
    # str, dict and list methods
    ("[{{ '  a b  '.strip() }}] [{{ 'xxaxx'.lstrip('x') }}] [{{ 'xxaxx'.rstrip('x') }}] {{ 'a,b,,c'.split(',') }}"
     " {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ '  a  b  '.split(None, 1) }}"
     " {{ '  a  b  '.rsplit(None, 1) }} {{ 'a\nb\r\nc'.splitlines() }} {{ 'a\nb'.splitlines(true) }}", {}),
    ("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'hello'.startswith('l', 2) }}"
     " {{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'héllo'.find('l') }} {{ 'hello'.count('l') }}"
     " {{ 'hello'.index('e') }} {{ 'hello'.replace('l', 'L') }} {{ 'hello'.replace('l', 'L', 1) }} {{ '-'.join(['a', 'b']) }}",
     {}),
    ("{{ 'hello world'.title() }} {{ 'Hello'.swapcase() }} {{ 'hello'.capitalize() }} {{ 'ABC'.lower() }} {{ 'abc'.upper() }}"
     " {{ 'abc'.isalpha() }} {{ '123'.isdigit() }} {{ ' '.isspace() }} {{ 'Ab'.istitle() }} {{ 'a1'.isalnum() }}"
     " {{ 'a=b'.partition('=') }} {{ 'a=b=c'.rpartition('=') }} {{ '5'.zfill(3) }} {{ 'ab'.ljust(4, '.') }}"
     " {{ 'ab'.rjust(4) }} {{ 'abc'.removeprefix('a') }} {{ 'abc'.removesuffix('c') }}", {}),
    ("{{ d.keys() }} {{ d.values() }} {{ d.items() }} {{ d.get('a') }} {{ d.get('z', 0) }} {{ d.get('z') }} {{ d.copy() }}"
     " {{ [1, 2, 1].count(1) }} {{ [1, 2, 1].index(2) }} {{ (1, 2).index(2) }} {{ d.items() | list }}",
     {"d": {"a": 1, "b": [2]}}),
    ("{{ range(10)[2:9:3] }} {{ range(10)[::-1] }} {{ range(10)[8:1:-2] }} {{ range(1, 20, 3)[1:] }}"
     " {{ range(5)[-2:] }} {{ range(3)[::-1] | list }} {{ range(0) }} {{ 4 in range(5) }}", {}),
    ("{{ ('<a>' | safe).upper() }} {{ ('a' | safe).replace('a', '<') }} {{ ('x,y' | safe).split(',') }}"
     " {{ ('<b>' | safe)[1:] }} {{ ('<' | safe) * 2 }} {{ ('%s' | safe) % '<i>' }} {{ (', ' | safe).join(['<', 1]) }}"
     " {{ '<' ~ ('>' | safe) }} {{ ('<' | e) + '&' }}", {}),
    # globals
    ("{{ range(3) }} {{ range(1, 10, 3) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, b=2) }}"
     " {{ dict([('x', 1)]) }} {{ namespace(a=1).a }} {{ strftime_now('%Y-%m-%d %A %B') }}", {}),
    # undefined values and errors (jinja2 raises; hone must refuse too)
    ("{{ x }}|{{ x.y if false }}|{{ d.missing }}|{{ x | length }}|{% for i in x %}{% endfor %}|{{ x is defined }}",
     {"d": {}}),
    ("{{ x.y }}", {}),
    ("{{ d.missing.deeper }}", {"d": {}}),
    ("{{ x + 1 }}", {}),
    ("{{ x() }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 + 'a' }}", {}),
    ("{{ 'a' < 1 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ [1].append(2) }}", {}),
    ("{{ {'a': 1}.update({}) }}", {}),
    ("{{ raise_exception('custom failure') }}", {}),
    ("{% set n = none %}{% set n.attr = 1 %}", {}),
    ("{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("{{ range(100001) | length }}", {}),
    ("{{ [] | first | upper }}{{ {'a': 1} | items | list }}", {}),
    ("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {}),
    ("{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", {}),
    ("{{ 'abc' | indent(true) }}", {}),
    ("{{ unknown_filter_in_if if false }}{% if false %}{{ 1 | nosuch }}{% endif %}ok", {}),
    ("{% if true %}{{ 1 | nosuch }}{% endif %}", {}),
]


def engine_case(source, variables):
    entry = {"template": source, "vars": variables}
    try:
        text, spans = render(source, variables.get("messages", []), variables.get("tools"), False, {},
                             {k: v for k, v in variables.items() if k not in ("messages", "tools")})
        entry["expected"] = text
        if "generation" in source:
            entry["spans"] = byte_spans(text, spans)
    except Exception as e:
        entry["error_type"] = type(e).__name__
        entry["error"] = str(e)
    return entry


def byte_spans(text, spans):
    b = lambda k: len(text[:k].encode("utf-8"))
    return [[b(s), b(e)] for s, e in spans]


def case(name, source, conv, agp, special, extra, tools):
    messages = CONVERSATIONS[conv]
    entry = {"template": name, "conversation": conv, "add_generation_prompt": agp}
    if special:
        entry["special"] = special
    if extra:
        entry["extra"] = extra
    if tools is not None:
        entry["tools"] = tools
    try:
        text, spans = render(source, messages, tools, agp, special, extra or {})
        entry["expected"] = text
        if "{% generation %}" in source or "{%- generation" in source:
            entry["spans"] = byte_spans(text, spans)
    except Exception as e:  # the template refuses this conversation: hone must refuse it too
        entry["error_type"] = type(e).__name__
        entry["error"] = str(e)
    return entry


def main():
    templates = {}
    for f in sorted(os.listdir(FIXTURES)):
        if f.endswith(".jinja"):
            templates[f[:-6]] = open(os.path.join(FIXTURES, f), encoding="utf-8").read()
    builtins = builtin_sources()
    for b, official in BUILTIN_OFFICIAL.items():
        assert official in templates, official
    cases = []
    for name, source in templates.items():
        special = SPECIAL.get(name, {})
        for conv in CONVERSATIONS:
            tools_runs = [None]
            if conv in TOOL_CONVERSATIONS:
                if name not in TOOL_TEMPLATES:
                    continue
                tools_runs = [[WEATHER_TOOL]]
            elif name in TOOL_TEMPLATES and conv == "system_user":
                tools_runs = [None, [WEATHER_TOOL]]
            for tools in tools_runs:
                for agp in (False, True):
                    cases.append(case(name, source, conv, agp, special, None, tools))
        for extra in EXTRA_RUNS.get(name, []):
            for conv in ("system_user", "multi_turn"):
                cases.append(case(name, source, conv, True, special, extra, [WEATHER_TOOL]
                                  if "tools_in_user_message" in extra else None))
    # the hone-defined built-ins, checked against their reference formats first
    for name in ("alpaca", "vicuna"):
        source = builtins[name]
        for conv in CONVERSATIONS:
            if conv in TOOL_CONVERSATIONS or conv == "bad_alternation":
                continue
            for special in ({"eos_token": "</s>"}, {}):
                for agp in (False, True):
                    entry = case("builtin:" + name, source, conv, agp, special, None, None)
                    msgs = CONVERSATIONS[conv]
                    eos = special.get("eos_token", "</s>" if name == "vicuna" else "")
                    ref = (fastchat_vicuna(msgs, agp, eos) if name == "vicuna" else stanford_alpaca(msgs, eos))
                    assert entry.get("expected") == ref, (name, conv, agp, entry.get("expected"), ref)
                    cases.append(entry)
    out = {
        "generator": "tools/make_chat_template_fixtures.py",
        "jinja2_version": jinja2.__version__,
        "now": NOW,
        "timezone": "UTC",
        "conversations": CONVERSATIONS,
        "builtin_official": BUILTIN_OFFICIAL,
        "cases": cases,
    }
    write_json(os.path.join(FIXTURES, "expected.json"), out, "cases")
    engine = {
        "generator": "tools/make_chat_template_fixtures.py",
        "jinja2_version": jinja2.__version__,
        "now": NOW,
        "timezone": "UTC",
        "cases": [engine_case(source, variables) for source, variables in ENGINE_CASES],
    }
    write_json(os.path.join(FIXTURES, "engine.json"), engine, "cases")


def write_json(path, obj, list_key):
    """One list entry per line: small diffs when a case changes."""
    head = {k: v for k, v in obj.items() if k != list_key}
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        for k, v in head.items():
            f.write(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},\n")
        f.write(f" {json.dumps(list_key)}: [\n")
        items = obj[list_key]
        for i, item in enumerate(items):
            f.write("  " + json.dumps(item, ensure_ascii=False) + (",\n" if i + 1 < len(items) else "\n"))
        f.write(" ]\n}\n")
    n_err = sum("error" in c for c in obj[list_key])
    print(f"{path}: {len(obj[list_key])} cases ({n_err} errors), {os.path.getsize(path)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
