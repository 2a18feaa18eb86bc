#!/usr/bin/env python3
"""Per-corpus mean and spread over the folds of `sentio-train --protocol folds`.

    python3 training/fold_table.py runs/folds     # reads runs/folds/*-folds-*/EVAL.md

Each fold's EVAL.md has an 8-class table (the first) and a 7-class one (the second); this
averages each row's UAR over the folds that have it, separately for corpora the fold trained
on (new speakers) and corpora it did not, as its card's `training.data` says (with k = 5,
TESS's two speakers sometimes fall in the test and validation folds together, so that fold
never heard TESS).
"""
import glob
import json
import os
import re
import statistics
import sys
from collections import defaultdict


def tables(path):
    """The markdown tables of one EVAL.md, as lists of (set name, UAR)."""
    found, current = [], None
    for line in open(path, encoding="utf-8"):
        if line.startswith("| set |"):
            current = []
            found.append(current)
        elif current is not None and line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            current.append((cells[0], float(cells[3].strip("*"))))
        elif current is not None and not line.startswith("|"):
            current = None
    return found


def main(root):
    paths = sorted(glob.glob(f"{root}/*-folds-*/EVAL.md"))
    for index, title in [(0, "8 classes"), (1, "7 classes (calm merged into neutral)")]:
        rows = defaultdict(list)
        for path in paths:
            fold = int(re.search(r"-folds-(\d+)", path).group(1))
            table = tables(path)[index]
            card = os.path.join(os.path.dirname(path), "model.json")
            trained = set(json.load(open(card, encoding="utf-8"))["training"]["data"])
            for name, uar in table:
                corpus, condition = name.rsplit(", ", 1)
                if corpus in ("all speakers", "seen corpora", "seen corpora, new speakers"):
                    corpus = "all trained corpora, new speakers"
                elif corpus == "unseen corpora":
                    continue
                elif corpus not in trained:
                    corpus = f"{corpus} (not trained on)"
                rows[(corpus, condition)].append((fold, uar))
        print(f"### {title}: {len(paths)} folds\n")
        conditions = ["clean", "8 kHz mu-law", "phone mu-law", "phone A-law"]
        print("| test speakers | " + " | ".join(conditions) + " |")
        print("|---|" + "---:|" * len(conditions))
        corpora = []
        for corpus, _ in rows:
            if corpus not in corpora:
                corpora.append(corpus)
        for corpus in corpora:
            cells = []
            for condition in conditions:
                values = [u for _, u in rows.get((corpus, condition), [])]
                if not values:
                    cells.append("-")
                    continue
                sd = statistics.pstdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.3f} ± {sd:.3f} (n={len(values)})")
            print(f"| {corpus} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/folds")
