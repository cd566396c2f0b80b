#!/usr/bin/env python3
"""Runs xgrad's and ONNX Runtime's halves of the inference benchmark (bench/bench_inference.cpp,
tools/ort/bench.js) on the files `bench_inference export DIR` wrote, in alternating order, round
after round, so that drift of the machine hits both alike, and prints the medians and the ratios as
a Markdown table. Each half checks its output against xgrad's before timing. Usage:
  compare_ort.py XGRAD_BINARY DIR [--rounds R] [--threads T] [--seconds S]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

MODELS = [("twolayer", "TwoLayerNet 3072-100-10"),
          ("convnet", "ThreeLayerConvNet"),
          ("vgg", "VGG 32-32-64-64-128-128 (`--model vgg`)")]


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("xgrad")
    p.add_argument("dir")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3)
    a = p.parse_args()
    flags = ["--threads", str(a.threads), "--seconds", str(a.seconds)]
    bench_js = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "ort", "bench.js")
    sides = {
        "xgrad": lambda m: [a.xgrad, "time", a.dir, m] + flags,
        "ort": lambda m: ["node", bench_js, a.dir, m] + flags,
        "ort_basic": lambda m: ["node", bench_js, a.dir, m, "--optimization", "disabled"] + flags,
    }
    results = {s: {m: [] for m, _ in MODELS} for s in sides}
    for r in range(a.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for m, _ in MODELS:
            for side in order:
                results[side][m].append(run(sides[side](m)))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

    def med(side, m, key):
        return statistics.median(x[key] for x in results[side][m])

    version = results["ort"][MODELS[0][0]][0]["version"]
    print(f"batch 128, {a.threads} threads (ONNX Runtime {version}: intra-op threads, CPU provider), median of "
          f"{a.rounds} alternating runs of {a.seconds:g} s each; ratio > 1: xgrad is faster\n")
    print("| model | xgrad img/s | xgrad fused img/s | ONNX Runtime img/s | ratio | fused ratio "
          "| ONNX Runtime, graph optimizations off |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m, title in MODELS:
        u, f = med("xgrad", m, "unfused_ips"), med("xgrad", m, "fused_ips")
        o, b = med("ort", m, "ips"), med("ort_basic", m, "ips")
        print(f"| {title} | {u:,.0f} | {f:,.0f} | {o:,.0f} | **{u / o:.2f}** | **{f / o:.2f}** | {b:,.0f} |")
    diffs = ", ".join(f"{m} {max(x['rel_diff'] for s in sides if s != 'xgrad' for x in results[s][m]):.1e}"
                      for m, _ in MODELS)
    fused = ", ".join(f"{m} {max(x['fused_rel_diff'] for x in results['xgrad'][m]):.1e}" for m, _ in MODELS)
    print(f"\nlargest output difference from xgrad's, relative to its largest output: ONNX Runtime {diffs}; "
          f"xgrad fused {fused}")


if __name__ == "__main__":
    main()
