"""Helper of bench/select_defects.sh (Debian's /usr/bin/python3, standard library only).

  make DIR SEED      writes DIR/pool.jsonl (alpaca rows: clean examples of hone's built-in task suite plus injected
                     defects, shuffled), DIR/labels.jsonl (kept aside: per pool row its defect type or "clean", and
                     for a near duplicate the row it copies) and DIR/test.jsonl (held-out problems with exact answers)
  catch DIR NAME DECISIONS   precision / recall of one selector's drops (a `hone select` decisions file) on the
                     defects: prints one Markdown table row
  random DIR K SEED OUT      K pool rows drawn uniformly (the random subset of the same size), alpaca JSONL
  prompts DIR        the ChatML prompt of every test item, one JSON string per line (for `hone generate`)
  exact DIR ANSWERS  exact match of the generated answers (one JSON {"text"} per test item) per task

The tasks mirror src/data/tasks.c (the same four tasks and phrasings; the prompt always ends with the operands), but
the problems are drawn here with Python's generator: every clean problem is distinct, and no pool row poses a test
problem in any phrasing, so exact match measures generalisation.
"""
import json
import random
import sys

TASKS = ["reverse", "sort", "add", "next"]
PHRASINGS = {
    "reverse": ["Reverse: {}", "Write backwards: {}", "Spell in reverse: {}", "Turn around: {}"],
    "sort": ["Sort: {}", "In order: {}", "Sort ascending: {}", "Smallest first: {}"],
    "add": ["Add: {}", "Sum: {}", "Compute: {}", "What is {}"],
    "next": ["Next number after: {}", "Successor of: {}", "Count on from: {}", "One more than: {}"],
}
# near duplicates: the first word of the phrasing swapped for another with the same meaning
SYNONYM = {"Reverse:": "Invert:", "Write": "Spell", "Spell": "Write", "Turn": "Flip", "Sort:": "Order:",
           "In": "Put", "Sort": "Order", "Smallest": "Lowest", "Add:": "Total:", "Sum:": "Total:",
           "Compute:": "Calculate:", "What": "Say", "Next": "Following", "Successor": "Follower",
           "Count": "Go", "One": "1"}

N_TEST = 10   # held-out problems per task
N_CLEAN = 64  # clean pool rows per task
N_DEFECT = 16 # rows per defect type (misaligned, truncated, wrong, near duplicate), spread over the tasks
DEFECTS = ["misaligned", "truncated", "wrong", "near_duplicate"]


def draw(rng, task):
    """(problem, operands text, answer) of one random problem."""
    if task == "reverse":
        w = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3))
        return w, w, w[::-1]
    if task == "sort":
        d = [rng.randrange(10) for _ in range(3)]
        return " ".join(map(str, d)), " ".join(map(str, d)), " ".join(map(str, sorted(d)))
    if task == "add":
        a, b = rng.randrange(10), rng.randrange(10)
        return (a, b), "%d + %d" % (a, b), str(a + b)
    n = 10 + rng.randrange(89)
    return n, str(n), str(n + 1)


def row(task, operands, answer, rng):
    return {"instruction": rng.choice(PHRASINGS[task]).format(operands), "input": "", "output": answer,
            "task": task}


def distinct_rows(rng, task, n, avoid, ok=lambda answer: True):
    """n rows of task whose problems are new (not in avoid; added to it)."""
    rows = []
    while len(rows) < n:
        problem, operands, answer = draw(rng, task)
        if (task, problem) in avoid or not ok(answer):
            continue
        avoid.add((task, problem))
        rows.append(row(task, operands, answer, rng))
    return rows


def wrong_answer(rng, task, answer):
    """A plausible answer that is not the right one, in the right format."""
    if task == "reverse":
        letters = list(answer)
        i = rng.randrange(3)
        letters[i] = rng.choice([c for c in "abcdefghijklmnopqrstuvwxyz" if c != letters[i]])
        return "".join(letters)
    if task == "sort":
        d = answer.split()
        i = rng.randrange(3)
        d[i] = str((int(d[i]) + 1 + rng.randrange(9)) % 10)
        return " ".join(d)
    return str(int(answer) + rng.choice([-3, -2, -1, 1, 2, 3]))


def make(out, seed):
    rng = random.Random(seed)
    seen = set()
    test = [dict(r, answer=r.pop("output")) for t in TASKS for r in distinct_rows(rng, t, N_TEST, seen)]
    for r in test:
        r.pop("input")
    clean = [r for t in TASKS for r in distinct_rows(rng, t, N_CLEAN, seen)]
    labelled = [(r, "clean", None) for r in clean]
    per_task = N_DEFECT // len(TASKS)
    # misaligned: a new problem answered with the answer of a clean row of another task
    for t in TASKS:
        for r in distinct_rows(rng, t, per_task, seen):
            other = rng.choice([c for c in clean if c["task"] != t])
            labelled.append((dict(r, output=other["output"]), "misaligned", None))
    # truncated: the last character cut (answers of at least two characters, so something is left)
    for t in TASKS:
        for r in distinct_rows(rng, t, per_task, seen, ok=lambda a: len(a) >= 2):
            labelled.append((dict(r, output=r["output"][:-1].rstrip()), "truncated", None))
    for t in TASKS:
        for r in distinct_rows(rng, t, per_task, seen):
            labelled.append((dict(r, output=wrong_answer(rng, t, r["output"])), "wrong", None))
    # near duplicates: a clean row with the first word of its instruction changed (still a right answer)
    for i in rng.sample(range(len(clean)), N_DEFECT):
        words = clean[i]["instruction"].split(" ")
        words[0] = SYNONYM[words[0]]
        labelled.append((dict(clean[i], instruction=" ".join(words)), "near_duplicate", i))
    order = list(range(len(labelled)))
    rng.shuffle(order)
    where = {old: new for new, old in enumerate(order)}
    with open(out + "/pool.jsonl", "w") as pool, open(out + "/labels.jsonl", "w") as labels:
        for new, old in enumerate(order):
            r, defect, source = labelled[old]
            pool.write(json.dumps({k: r[k] for k in ("instruction", "input", "output")}) + "\n")
            labels.write(json.dumps({"index": new, "task": r["task"], "defect": defect,
                                     "copy_of": where[source] if source is not None else None}) + "\n")
    with open(out + "/test.jsonl", "w") as f:
        for r in test:
            f.write(json.dumps(r) + "\n")
    print("pool: %d clean rows + %d defects (%s, %d each) -> %s/pool.jsonl; %d test problems" %
          (len(clean), len(labelled) - len(clean), ", ".join(DEFECTS), N_DEFECT, out, len(test)))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def catch(out, name, decisions_path):
    """A defect is caught when the selector drops it; a near-duplicate pair is caught when at most one of its two
    copies is kept (then whichever copy went is a correct drop). Precision: correct drops / all drops."""
    labels = read_jsonl(out + "/labels.jsonl")
    kept = {d["index"]: d["selected"] for d in read_jsonl(decisions_path)}
    copied = {l["copy_of"]: l["index"] for l in labels if l["copy_of"] is not None}
    caught = {d: 0 for d in DEFECTS}
    correct_drops = 0
    drops = sum(1 for v in kept.values() if not v)
    for l in labels:
        i = l["index"]
        if l["defect"] == "near_duplicate":
            pair_caught = not (kept[i] and kept[l["copy_of"]])
            caught["near_duplicate"] += pair_caught
            correct_drops += pair_caught and not kept[i]
        elif l["defect"] != "clean":
            caught[l["defect"]] += not kept[i]
            correct_drops += not kept[i]
        elif i in copied:  # the original of a near duplicate, dropped while its copy stays
            correct_drops += not kept[i] and kept[copied[i]]
    n = {d: sum(1 for l in labels if l["defect"] == d) for d in DEFECTS}
    defects = sum(n.values())
    precision = "%.2f" % (correct_drops / drops) if drops else "–"
    print("| %s | %d | %d | %s | %s | %.2f |" % (
        name, len(kept) - drops, drops, precision,
        " | ".join("%d/%d" % (caught[d], n[d]) for d in DEFECTS), sum(caught.values()) / defects))


def random_subset(out, k, seed, path):
    pool = read_jsonl(out + "/pool.jsonl")
    with open(path, "w") as f:
        for i in sorted(random.Random(seed).sample(range(len(pool)), k)):
            f.write(json.dumps(pool[i]) + "\n")


def prompts(out):
    # the base's chat template is ChatML (hone_byte_chat_tokenizer_write); the answer follows the generation prompt
    for r in read_jsonl(out + "/test.jsonl"):
        print(json.dumps("<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n" % r["instruction"]))


def exact(out, answers_path):
    test = read_jsonl(out + "/test.jsonl")
    answers = read_jsonl(answers_path)
    if len(answers) != len(test):
        sys.exit("select_defects.py: %d answers for %d test items" % (len(answers), len(test)))
    right = {t: 0 for t in TASKS}
    for r, a in zip(test, answers):
        right[r["task"]] += a["text"].replace("<|im_end|>", "").strip() == r["answer"]
    print(" | ".join("%.0f%%" % (100 * right[t] / N_TEST) for t in TASKS) +
          " | %.1f%%" % (100 * sum(right.values()) / len(test)))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(args[0], int(args[1]))
    elif cmd == "catch":
        catch(*args)
    elif cmd == "random":
        random_subset(args[0], int(args[1]), int(args[2]), args[3])
    elif cmd == "prompts":
        prompts(args[0])
    elif cmd == "exact":
        exact(*args)
    else:
        sys.exit("select_defects.py: unknown command %s" % cmd)
