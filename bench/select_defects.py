"""Helper of bench/select_defects.sh (Debian's /usr/bin/python3, standard library only).

  make DIR N_CLEAN N_DEFECT SEED   reads DIR/suite/train.jsonl (`hone demo --write-suite`: alpaca rows of hone's
                     built-in tasks with a "task" field, none posing a held-out problem) and writes DIR/pool.jsonl
                     (the first N_CLEAN rows of each task, clean, plus N_DEFECT injected defects of each type made from
                     the rows after them, shuffled) and DIR/labels.jsonl (kept aside: per pool row its defect type or
                     "clean", and for a near duplicate the row it copies)
  catch DIR NAME DECISIONS   precision / recall of one selector's drops (a `hone select` decisions file) on the
                     defects: prints one Markdown table row
  random DIR K SEED OUT      K pool rows drawn uniformly (the random subset of the same size), alpaca JSONL
  subset DIR KIND OUT        the pool rows of one kind (clean), alpaca JSONL

The injection is the only part done here: the clean rows and the held-out prompts come from hone itself, and exact
match is `hone eval --tasks`.
"""
import json
import random
import sys

TASKS = ["reverse", "sort", "add", "next"]
# near duplicates: the first word of the phrasing (src/data/tasks.c) swapped for another with the same meaning
SYNONYM = {"Reverse:": "Invert:", "Write": "Spell", "Spell": "Write", "Turn": "Flip", "Sort:": "Order:",
           "In": "Put", "Sort": "Order", "Smallest": "Lowest", "Add:": "Total:", "Sum:": "Total:",
           "Compute:": "Calculate:", "What": "Say", "Next": "Following", "Successor": "Follower",
           "Count": "Go", "One": "1"}
DEFECTS = ["misaligned", "truncated", "wrong", "near_duplicate"]


def wrong_answer(rng, task, answer):
    """A plausible answer that is not the right one, in the right format."""
    if task == "reverse":
        letters = list(answer)
        i = rng.randrange(len(letters))
        letters[i] = rng.choice([c for c in "abcdefghijklmnopqrstuvwxyz" if c != letters[i]])
        return "".join(letters)
    if task == "sort":
        d = answer.split()
        i = rng.randrange(len(d))
        d[i] = str((int(d[i]) + 1 + rng.randrange(9)) % 10)
        return " ".join(d)
    return str(int(answer) + rng.choice([-3, -2, -1, 1, 2, 3]))


def spread(n, parts):
    """n split into `parts` counts that differ by at most one."""
    return [n // parts + (i < n % parts) for i in range(parts)]


def make(out, n_clean, n_defect, seed):
    rng = random.Random(seed)
    suite = read_jsonl(out + "/suite/train.jsonl")
    by_task = {t: [r for r in suite if r["task"] == t] for t in TASKS}
    clean = [r for t in TASKS for r in by_task[t][:n_clean]]
    spare = {t: by_task[t][n_clean:] for t in TASKS}
    if len(clean) < n_clean * len(TASKS):
        sys.exit("select_defects.py: the suite has fewer than %d rows of a task" % n_clean)
    labelled = [(r, "clean", None) for r in clean]

    def take(t, ok=lambda r: True):
        for i, r in enumerate(spare[t]):
            if ok(r):
                return spare[t].pop(i)
        sys.exit("select_defects.py: too few spare rows of task %s in the suite (write it with more)" % t)

    per_task = spread(n_defect, len(TASKS))
    for t, k in zip(TASKS, per_task):
        for _ in range(k):  # misaligned: the answer of a clean row of another task
            other = rng.choice([c for c in clean if c["task"] != t])
            labelled.append((dict(take(t), output=other["output"]), "misaligned", None))
        for _ in range(k):  # truncated: the last character cut (answers of two characters or more)
            r = take(t, lambda r: len(r["output"]) >= 2)
            labelled.append((dict(r, output=r["output"][:-1].rstrip()), "truncated", None))
        for _ in range(k):
            r = take(t)
            labelled.append((dict(r, output=wrong_answer(rng, t, r["output"])), "wrong", None))
    # near duplicates: a clean row with the first word of its instruction changed (still a right answer)
    for i in rng.sample(range(len(clean)), n_defect):
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
    print("pool: %d clean rows + %d defects (%s, %d each) -> %s/pool.jsonl" %
          (len(clean), len(labelled) - len(clean), ", ".join(DEFECTS), n_defect, out))


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


def subset(out, kind, path):
    pool = read_jsonl(out + "/pool.jsonl")
    labels = read_jsonl(out + "/labels.jsonl")
    with open(path, "w") as f:
        for r, l in zip(pool, labels):
            if l["defect"] == kind:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "catch":
        catch(*args)
    elif cmd == "random":
        random_subset(args[0], int(args[1]), int(args[2]), args[3])
    elif cmd == "subset":
        subset(*args)
    else:
        sys.exit("select_defects.py: unknown command %s" % cmd)
