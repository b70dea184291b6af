"""Plots and tables for docs/benchmarks.md from `benchmarks/run.py --json` output.

    python benchmarks/plots.py RESULTS.json [OUT_DIR]      (what `make bench-plots` runs)

Writes OUT_DIR/bench-replay.png (replay time per workload, relative to eager, for eager,
autoconv's backends, TorchScript and torch.compile), OUT_DIR/bench-conversion.png (conversion
time against function length, autoconv and diastatic-malt), and the generated tables between
the `<!-- bench:begin -->` / `<!-- bench:end -->` markers of OUT_DIR/benchmarks.md. Every plot
says the machine, torch version and load average it was made on. Needs matplotlib (the `bench`
extra).
"""

from __future__ import annotations

import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

VARIANTS = ["eager", "autoconv", "autoconv backend=fx", "autoconv backend=inductor_cpp",
            "TorchScript", "torch.compile"]
COLORS = {"eager": "#555555", "autoconv": "#1f77b4", "autoconv backend=fx": "#9ecae1",
          "TorchScript": "#ff7f0e", "torch.compile": "#2ca02c",
          "autoconv backend=inductor": "#c5b0d5", "autoconv backend=inductor_cpp": "#9467bd"}


def _where(meta: dict) -> str:
    load = meta.get("load", [float("nan")])[0]
    end = meta.get("load_end", [load])[0]
    return (f"{meta.get('machine', str(meta.get('cpus')) + ' CPUs')}, torch {meta['torch']}, "
            f"Python {meta.get('python', '?')}, {meta.get('threads', '?')} torch thread(s);\n"
            f"load average {load:.1f} at start, "
            f"{end:.1f} at end")


def workloads(results: dict) -> dict:
    """label -> {variant: row} for the loop workloads and the seed model."""
    rows = dict(results.get("loops", {}).get("workloads", {}))
    seed = results.get("staged", {}).get("seed_model")
    if seed and "seed model" not in rows:
        rows["seed model"] = {
            name: {"time": value[0], "unit": "ms", "x_eager": value[1]}
            for name, value in seed.items()}
    return rows


def plot_replay(results: dict, path: str) -> None:
    rows = workloads(results)
    labels = list(rows)
    variants = [v for v in VARIANTS + ["autoconv backend=inductor"]
                if any(v in rows[label] for label in labels)]
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.75 * len(labels)))
    height = 0.8 / len(variants)
    for k, variant in enumerate(variants):
        ys, xs = [], []
        for i, label in enumerate(labels):
            row = rows[label].get(variant, {})
            if "x_eager" in row:
                ys.append(i + (k - len(variants) / 2 + 0.5) * height)
                xs.append(row["x_eager"])
        ax.barh(ys, xs, height=height, color=COLORS.get(variant), label=variant)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("replay time relative to eager (log scale; left of 1 = faster than eager)")
    ax.set_title("Replay time per workload, CPU\n" + _where(results["meta"]), fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_conversion(results: dict, path: str) -> None:
    rows = results.get("conversion", {}).get("rows", [])
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.scatter([r["lines"] for r in rows], [r["autoconv_ms"] for r in rows], label="autoconv",
               color=COLORS["autoconv"])
    malt = [r for r in rows if r.get("malt_ms")]
    if malt:
        ax.scatter([r["lines"] for r in malt], [r["malt_ms"] for r in malt],
                   label="diastatic-malt (AutoGraph)", color="#d62728", marker="s")
    ax.set_yscale("log")
    ax.set_xlabel("function length (source lines)")
    ax.set_ylabel("conversion time, ms (min of 25; log scale)")
    ax.set_title("Conversion time per function\n" + _where(results["meta"]), fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def tables(results: dict) -> str:
    """The markdown tables of docs/benchmarks.md's generated part."""
    meta = results["meta"]
    out = [f"Measured on {_where(meta)}.".replace(";\n", "; "), ""]
    rows = workloads(results)
    out.append("| workload | " + " | ".join(VARIANTS) + " |")
    out.append("|---|" + "---|" * len(VARIANTS))
    for label, cells in rows.items():
        line = [label]
        for variant in VARIANTS:
            row = cells.get(variant)
            if row is None:
                line.append("")
            elif "x_eager" in row:
                line.append(f"{_number(row['time'])} {row['unit']} ({row['x_eager']:.2f}x)")
            else:
                line.append("fails: " + row["error"].split(":")[0])
        out.append("| " + " | ".join(line) + " |")
    out += ["", "(time per call, min of interleaved timing loops; in brackets: relative to eager, "
            "below 1 is faster)", ""]
    per_iteration = results.get("loops", {}).get("per_iteration_us")
    if per_iteration:
        names = list(dict.fromkeys(n for row in per_iteration.values() for n in row))
        out.append("| µs per iteration, `while i < n: i += 1` | " + " | ".join(names) + " |")
        out.append("|---|" + "---|" * len(names))
        for label, row in per_iteration.items():
            out.append(f"| {label} | " + " | ".join(
                f"{row[n]:.2f}" if n in row else "fails" for n in names) + " |")
        out.append("")
    conv = results.get("conversion")
    if conv:
        out.append("| function | lines | autoconv ms | diastatic-malt ms | malt / autoconv |")
        out.append("|---|---|---|---|---|")
        for r in conv["rows"]:
            malt = r.get("malt_ms")
            out.append(f"| {r['function']} | {r['lines']} | {r['autoconv_ms']:.2f} | "
                       + (f"{malt:.2f} | {malt / r['autoconv_ms']:.1f}x |" if malt else "n/a | |"))
        line = f"Median autoconv {conv['autoconv_median_ms']:.2f} ms"
        if "malt_median_ms" in conv:
            line += (f", diastatic-malt {conv['malt_median_ms']:.2f} ms (median ratio "
                     f"{1 / conv['median_ratio']:.1f}x)")
        if "import_autoconv_s" in conv:
            line += (f"; `import autoconv` {conv['import_autoconv_s'] * 1e3:.0f} ms after "
                     f"{conv['import_torch_s'] * 1e3:.0f} ms of `import torch`")
        out += ["", line + "."]
    return "\n".join(out)


def main(argv) -> int:
    source = argv[0]
    out_dir = argv[1] if len(argv) > 1 else "docs"
    with open(source) as f:
        results = json.load(f)
    plot_replay(results, os.path.join(out_dir, "bench-replay.png"))
    plot_conversion(results, os.path.join(out_dir, "bench-conversion.png"))
    page = os.path.join(out_dir, "benchmarks.md")
    if os.path.exists(page):
        with open(page) as f:
            text = f.read()
        generated = f"<!-- bench:begin -->\n{tables(results)}\n<!-- bench:end -->"
        text, count = re.subn(r"<!-- bench:begin -->.*?<!-- bench:end -->",
                              lambda _: generated, text, flags=re.S)
        if count:
            with open(page, "w") as f:
                f.write(text)
    print(f"wrote {out_dir}/bench-replay.png, {out_dir}/bench-conversion.png"
          + (f", tables in {page}" if os.path.exists(page) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
