"""Markdown tables of two ``surrogate-pallas inspect`` reports side by side (before -> after).

    python benchmarks/inspect_diff.py BEFORE.json AFTER.json > table.md
"""
from __future__ import annotations

import json
import sys


def main(before_path, after_path):
    before = {r["key"]: r for r in json.load(open(before_path))["results"]}
    doc = json.load(open(after_path))
    after = {r["key"]: r for r in doc["results"]}
    m = doc["meta"]
    fmt = lambda r, f, spec: "-" if r is None or r.get(f) is None else format(r[f], spec)
    out = [f"jax {m['jax']}, jaxlib {m['jaxlib']}, libtpu {m['libtpu']}, triton {m['triton']}, Python {m['python']}", "",
           "| program | v5e before | v5e after | v6e before | v6e after | moves before -> after (v5e) |",
           "|---|---|---|---|---|---|"]
    for k, r in after.items():
        if k.endswith("|tpu-v5e"):
            b, k6 = before.get(k), k.replace("tpu-v5e", "tpu-v6e")
            out.append(f"| {r['id']} | {fmt(b, 'bytes_ratio', '.2f')}x | {fmt(r, 'bytes_ratio', '.2f')}x | "
                       f"{fmt(before.get(k6), 'bytes_ratio', '.2f')}x | {fmt(after.get(k6), 'bytes_ratio', '.2f')}x | "
                       f"{fmt(b, 'moves', 'd')} -> {fmt(r, 'moves', 'd')} |")
    out += ["", "| program | sm_90 registers before | after | shared memory before -> after (B) | spills after |",
            "|---|---|---|---|---|"]
    for k, r in after.items():
        if k.endswith("|cuda-sm90"):
            b = before.get(k)
            out.append(f"| {r['id']} | {fmt(b, 'registers', 'd')} | {fmt(r, 'registers', 'd')} | "
                       f"{fmt(b, 'shared_bytes', 'd')} -> {fmt(r, 'shared_bytes', 'd')} | {fmt(r, 'spill_bytes', 'd')} |")
    failed = sum(not r["compiled"] for r in after.values())
    out += ["", f"Programs x targets that failed to compile after: {failed} of {len(after)}."]
    print("\n".join(out))


if __name__ == "__main__":
    main(*sys.argv[1:3])
