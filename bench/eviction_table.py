"""Formats bench/eviction_table.sh's replay rows (JSON lines with a "trace" member) as the
Markdown tables of docs/eviction.md, and applies the default rule: the most money saved over all
runs among the policies never more than 2 points of hit rate behind the best at any size."""
import json
import sys

POLICIES = ["lru", "sieve", "gdsf", "cost-sieve"]
SHARES = ["0.05x", "0.1x", "0.25x", "0.5x"]
rows = [json.loads(line) for line in sys.stdin]


def best_hit(r):
    return max(x["hit_rate"] for x in rows
               if x["trace"] == r["trace"] and x["disk_bytes"] == r["disk_bytes"])


for t in sorted({r["trace"] for r in rows}):
    rs = [r for r in rows if r["trace"] == t]
    sizes = sorted({r["disk_bytes"] for r in rs})
    total = rs[0]["cost_total"]
    print(f"\nTrace {t}: {rs[0]['requests']} requests, ${total:.2f} if nothing were cached; "
          f"memory {rs[0]['memory_bytes'] / 2**20:.1f} MiB. Each cell: hit rate / $ saved "
          "(✗: more than 2 points of hit rate behind the best at that size).\n")
    print("| policy | " + " | ".join(f"disk {s} ({d / 2**20:.1f} MiB)"
                                     for s, d in zip(SHARES, sizes)) + " |")
    print("|---|" + "---|" * len(sizes))
    for p in POLICIES:
        cells = []
        for d in sizes:
            r = next(r for r in rs if r["memory_policy"] == p and r["disk_bytes"] == d)
            mark = "" if best_hit(r) - r["hit_rate"] <= 0.02 else " ✗"
            cells.append(f"{100 * r['hit_rate']:.2f}%{mark} / ${r['cost_saved']:.2f}")
        print(f"| `{p}` | " + " | ".join(cells) + " |")

total = {p: sum(r["cost_saved"] for r in rows if r["memory_policy"] == p) for p in POLICIES}
ok = [p for p in POLICIES
      if all(best_hit(r) - r["hit_rate"] <= 0.02 for r in rows if r["memory_policy"] == p)]
print("\nMoney saved over all runs: " + ", ".join(
    f"`{p}` ${total[p]:.2f}" + ("" if p in ok else " (more than 2 points behind somewhere)")
    for p in POLICIES) + ".")
print("Default by the rule: `" + max(ok, key=lambda p: total[p]) + "`.")
