"""The allocation sites that hold the most memory in a dhat profile (`dhat-heap.json`, written by
a `--features heap-profile` server at exit; BENCHMARKS.md section 7b): at the heap's peak
(t-gmax) and at exit (t-end), each with the first frames of its stack that are Sentio's own.

    python3 benches/dhat_top.py dhat-heap.json [--top 15]
"""
import argparse
import json


def sentio_frames(frames, table, depth=3):
    """The first `depth` frames inside sentio (falling back to the first frames at all)."""
    names = [table[i] for i in frames]
    own = [n for n in names if "sentio" in n and "dhat" not in n]
    return (own or names)[:depth]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    with open(args.profile) as f:
        profile = json.load(f)
    table, sites = profile["ftbl"], profile["pps"]
    print(f"total allocated {sum(s['tb'] for s in sites) / 2**20:.0f} MiB in "
          f"{sum(s['tbk'] for s in sites)} blocks; live at the peak "
          f"{sum(s['gb'] for s in sites) / 2**20:.2f} MiB, at exit {sum(s['eb'] for s in sites) / 2**20:.2f} MiB")
    for key, label in (("gb", "at the peak"), ("eb", "at exit")):
        print(f"\nlargest {label}:")
        for site in sorted(sites, key=lambda s: -s[key])[: args.top]:
            if site[key] == 0:
                break
            blocks = site[key + "k"]
            print(f"{site[key] / 2**10:10.1f} KiB in {blocks:6d} blocks  "
                  + " <- ".join(sentio_frames(site["fs"], table)))


if __name__ == "__main__":
    main()
