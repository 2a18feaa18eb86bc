#!/usr/bin/env python3
"""Average the weights of several fine-tunes of one parent into one model ("model soup").

    python3 training/average_weights.py OUT DIR1 DIR2 [...]

Fine-tunes of the same parent stay in one basin, so the element-wise mean of their weights
(batch-norm statistics included) is one network at one network's cost, unlike an ensemble.
The members must share architecture, labels, features and input statistics (`init_from`
keeps the parent's statistics, so fine-tunes of one parent do); the card is the first
member's, with the members recorded in `training.averaged`. F32 tensors only. Needs only
Python's standard library (see `extract_member.py` for the safetensors layout).
"""
import json
import os
import sys
from array import array

from extract_member import read_safetensors, write_model_dir

SHARED = ("architecture", "labels", "features", "normalization")


def main(out, dirs):
    cards = [json.load(open(os.path.join(d, "model.json"))) for d in dirs]
    for d, card in zip(dirs[1:], cards[1:]):
        for field in SHARED:
            if card[field] != cards[0][field]:
                sys.exit(f"{d} differs from {dirs[0]} in {field}: not fine-tunes of one parent")
    members = [read_safetensors(os.path.join(d, "model.safetensors")) for d in dirs]
    header0 = members[0][0]
    tensors = {}
    for name, t in header0.items():
        if t["dtype"] != "F32":
            sys.exit(f"{name} is {t['dtype']}: only F32 tensors are averaged")
        total = None
        for (header, data), d in zip(members, dirs):
            other = header.get(name)
            if other is None or other["shape"] != t["shape"]:
                sys.exit(f"{d}: {name} is missing or has another shape")
            values = array("f", data[other["data_offsets"][0]:other["data_offsets"][1]])
            total = values if total is None else array("f", map(float.__add__, total, values))
        mean = array("f", (v / len(dirs) for v in total))
        tensors[name] = (t["dtype"], t["shape"], mean.tobytes())
    if set().union(*(h.keys() for h, _ in members)) != set(header0):
        sys.exit("the members hold different tensors")
    card = dict(cards[0])
    card["id"] = cards[0]["id"] + "-averaged"
    card["training"] = dict(cards[0]["training"] or {})
    card["training"]["averaged"] = [{"id": c["id"], "training": c["training"]} for c in cards]
    card["metrics"] = None
    write_model_dir(out, card, tensors)
    print(f"{card['id']}: mean of {len(dirs)} members' {len(tensors)} tensors -> {out}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
