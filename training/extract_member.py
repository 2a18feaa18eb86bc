#!/usr/bin/env python3
"""Write one member of an assembled model (`--by-band` or `--ensemble`) back out as a model
directory of its own, so it can be assembled again with other members.

    python3 training/extract_member.py models/default wideband runs/default-wideband
    python3 training/extract_member.py models/crema-d member0 runs/crema-member0

The member's card is the assembled card with the member's architecture, statistics, id and
training record (as `sentio-train` wrote them when it assembled the model); its weights are
the tensors under `<member>.`, renamed back. Reads and writes safetensors directly (8-byte
header length, JSON header, raw data), so it needs nothing beyond Python's standard library.
"""
import json
import os
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    header.pop("__metadata__", None)
    return header, data


def write_safetensors(path, tensors):
    """tensors: name -> (dtype, shape, bytes)."""
    header, offset, chunks = {}, 0, []
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the format pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for raw in chunks:
            f.write(raw)


def write_model_dir(out, card, tensors):
    """A model directory as `sentio-train` writes one: model.safetensors and model.json."""
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump(card, f, indent=2)


def main(src, member, out):
    card = json.load(open(os.path.join(src, "model.json")))
    arch = card["architecture"]
    if arch["kind"] == "by_band" and member in ("wideband", "narrowband"):
        spec, index = arch[member], ("wideband", "narrowband").index(member)
    elif arch["kind"] == "ensemble" and member.startswith("member"):
        index = int(member[len("member"):])
        spec = arch["members"][index]
    else:
        sys.exit(f"{src} ({arch['kind']}) has no member {member}")
    record = card["training"]["members"][index]
    card.update(
        architecture=spec["architecture"],
        normalization=spec.get("normalization", {}),
        id=record["id"],
        training=record["training"],
        metrics=None,
    )
    header, data = read_safetensors(os.path.join(src, "model.safetensors"))
    prefix = member + "."
    tensors = {
        name[len(prefix):]: (t["dtype"], t["shape"], data[t["data_offsets"][0]:t["data_offsets"][1]])
        for name, t in header.items()
        if name.startswith(prefix)
    }
    if not tensors:
        sys.exit(f"no tensors under {prefix} in {src}")
    write_model_dir(out, card, tensors)
    print(f"{card['id']}: {len(tensors)} tensors -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
