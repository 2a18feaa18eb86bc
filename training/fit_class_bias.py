"""Fit a per-class offset on log-probabilities that maximizes UAR on validation speakers,
and report what it does on held-out speakers.

Input: `sentio-train --evaluate DIR --evaluate-on val --decisions-out val.jsonl` (and the
same with the default `test` for test speakers). A decision becomes
argmax_c(log p_c + b_c): the network's ranking is kept, only the boundaries between classes
move. Offsets are fitted by coordinate ascent on a grid, separately for clean speech and for
the phone conditions (the default reads them with different networks).

    python3 training/fit_class_bias.py val.jsonl test.jsonl [--out bias.json]

`--crossfit` also reports the honest gain on validation itself: offsets fitted on half of
the validation speakers, scored on the other half, and the other way round.
"""

import argparse
import json
import math
import random
from collections import defaultdict

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"]
GROUPS = {"clean": ["clean"], "phone": ["mulaw8k", "phone_mulaw", "phone_alaw"]}
GRID = [x / 10 for x in range(-20, 21)]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            r["logp"] = [math.log(max(p, 1e-9)) for p in r["probabilities"]]
            r["y"] = LABELS.index(r["label"])
            rows.append(r)
    return rows


def uar(rows, bias):
    hit, count = defaultdict(int), defaultdict(int)
    for r in rows:
        scores = [lp + b for lp, b in zip(r["logp"], bias)]
        pred = max(range(len(scores)), key=scores.__getitem__)
        count[r["y"]] += 1
        hit[r["y"]] += pred == r["y"]
    return sum(hit[c] / count[c] for c in count) / len(count)


def per_condition_uar(rows, bias):
    """Mean over conditions of each condition's UAR (what EVAL.md's phone mean is)."""
    by = defaultdict(list)
    for r in rows:
        by[r["condition"]].append(r)
    return sum(uar(v, bias) for v in by.values()) / len(by)


def fit(rows, sweeps=3):
    bias = [0.0] * len(LABELS)
    present = {r["y"] for r in rows}
    best = per_condition_uar(rows, bias)
    for _ in range(sweeps):
        for c in sorted(present):
            for v in GRID:
                trial = bias[:c] + [v] + bias[c + 1 :]
                score = per_condition_uar(rows, trial)
                # Strictly better only, and ties to the smaller offset: no drift on noise.
                if score > best + 1e-9 or (abs(score - best) < 1e-9 and abs(v) < abs(bias[c])):
                    best, bias = score, trial
    return bias, best


def select(rows, group, corpus=None):
    return [
        r
        for r in rows
        if r["condition"] in GROUPS[group] and (corpus is None or r["corpus"] == corpus)
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("val")
    ap.add_argument("test")
    ap.add_argument("--out")
    ap.add_argument("--crossfit", action="store_true")
    args = ap.parse_args()
    val, test = load(args.val), load(args.test)
    zero = [0.0] * len(LABELS)
    fitted = {}
    for group in GROUPS:
        v = select(val, group)
        bias, score = fit(v)
        fitted[group] = bias
        print(f"## {group}: offsets " + ", ".join(f"{l} {b:+.1f}" for l, b in zip(LABELS, bias)))
        print(f"validation (fitted on it) {per_condition_uar(v, zero):.3f} -> {score:.3f}")
        if args.crossfit:
            speakers = sorted({r["speaker"] for r in v})
            random.Random(1).shuffle(speakers)
            halves = [set(speakers[::2]), set(speakers[1::2])]
            before = after = 0.0
            for a, b in [(0, 1), (1, 0)]:
                fit_rows = [r for r in v if r["speaker"] in halves[a]]
                score_rows = [r for r in v if r["speaker"] in halves[b]]
                half_bias, _ = fit(fit_rows)
                before += per_condition_uar(score_rows, zero) / 2
                after += per_condition_uar(score_rows, half_bias) / 2
            print(f"validation cross-fitted over speaker halves {before:.3f} -> {after:.3f}")
        corpora = sorted({r["corpus"] for r in test})
        line = [f"test all {per_condition_uar(select(test, group), zero):.3f} -> "
                f"{per_condition_uar(select(test, group), bias):.3f}"]
        for c in corpora:
            t = select(test, group, c)
            line.append(f"{c} {per_condition_uar(t, zero):.3f} -> {per_condition_uar(t, bias):.3f}")
        print("; ".join(line))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(fitted, f, indent=2)


if __name__ == "__main__":
    main()
