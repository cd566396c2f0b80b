#!/usr/bin/env python3
"""Runs xgrad's and PyTorch's halves of the benchmark (bench/vs_torch.cpp, bench/vs_torch.py) in
alternating order, round after round, so that drift of the machine hits both alike, and prints the
medians and the ratios as a Markdown table. Usage:
  compare_torch.py XGRAD_BINARY [--rounds R] [--threads T] [--seconds S] [--openblas]
--openblas adds a third side, xgrad with its f32 GEMMs on OpenBLAS instead of oneDNN, in the same
rotation, and a column with xgrad's speed-up over it.
--bf16 runs xgrad at --matmul-precision medium (bf16 products on AMX) and adds a side, PyTorch under
torch.autocast('cpu', bfloat16), with a column of xgrad's ratio to it (models only).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

MODELS = [("twolayer", "TwoLayerNet 3072-100-10"),
          ("fc", "FullyConnectedNet 3072-[100]x4-10, batchnorm, dropout"),
          ("convnet", "ThreeLayerConvNet"),
          ("vgg", "VGG 32-32-64-64-128-128 (`--model vgg`)")]


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("xgrad")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--openblas", action="store_true")
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args()
    flags = ["--threads", str(a.threads), "--seconds", str(a.seconds)]
    torch_half = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vs_torch.py")]
    sides = {"xgrad": [a.xgrad], "torch": torch_half}
    if a.openblas:
        sides["openblas"] = [a.xgrad]
    if a.bf16:
        sides["torch_bf16"] = torch_half
    results = {s: {} for s in sides}  # side -> job -> list of JSON objects

    jobs = [["model", m] for m, _ in MODELS] + [["ops"]]
    for r in range(a.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for job in jobs:
            for side in order:
                extra = ["--sgemm", "openblas"] if side == "openblas" else []
                if side == "xgrad" and a.bf16:
                    extra = ["--matmul-precision", "medium"]
                if side == "torch_bf16":
                    if job[0] != "model":
                        continue
                    extra = ["--bf16"]
                results[side].setdefault(" ".join(job), []).append(run(sides[side] + job + flags + extra))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

    def med(side, job, key):
        return statistics.median(x[key] for x in results[side][job])

    print(f"threads {a.threads}, batch 128, median of {a.rounds} interleaved runs; ratio > 1: xgrad is faster\n")
    ob, bf = "openblas" in sides, "torch_bf16" in sides
    if bf:
        print("xgrad at --matmul-precision medium; PyTorch in f32 (and, last column, under bf16 autocast)\n")
    print("| model | train img/s xgrad | PyTorch | ratio | inference img/s xgrad | PyTorch | ratio "
          "| peak RSS MB xgrad | PyTorch |" + (" train, inference: oneDNN / OpenBLAS |" if ob else "")
          + (" PyTorch bf16 train, inference img/s | ratios |" if bf else ""))
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if ob else "") + ("---:|---:|" if bf else ""))
    for m, title in MODELS:
        job = f"model {m}"
        tx, tt = med("xgrad", job, "train_ips"), med("torch", job, "train_ips")
        ix, it = med("xgrad", job, "infer_ips"), med("torch", job, "infer_ips")
        rx, rt = med("xgrad", job, "peak_rss_mb"), med("torch", job, "peak_rss_mb")
        bx, bt = med("xgrad", job, "base_rss_mb"), med("torch", job, "base_rss_mb")
        print(f"| {title} | {tx:.0f} | {tt:.0f} | **{tx / tt:.2f}** | {ix:.0f} | {it:.0f} | **{ix / it:.2f}** "
              f"| {rx:.0f} (+{rx - bx:.0f}) | {rt:.0f} (+{rt - bt:.0f}) |", end="")
        if ob:
            print(f" {tx / med('openblas', job, 'train_ips'):.2f}, {ix / med('openblas', job, 'infer_ips'):.2f} |",
                  end="")
        if bf:
            bt_, bi_ = med("torch_bf16", job, "train_ips"), med("torch_bf16", job, "infer_ips")
            print(f" {bt_:.0f}, {bi_:.0f} | **{tx / bt_:.2f}**, **{ix / bi_:.2f}** |", end="")
        print()
    print("\n(peak RSS while training; in brackets, the growth above the process's size before the model was built)\n")
    print("| op, batch 128, forward + backward | xgrad ms | PyTorch ms | ratio |" + (" OpenBLAS ms |" if ob else ""))
    print("|---|---:|---:|---:|" + ("---:|" if ob else ""))
    for key in results["xgrad"]["ops"][0]:
        x, t = med("xgrad", "ops", key), med("torch", "ops", key)
        extra = f" {med('openblas', 'ops', key):.2f} |" if ob else ""
        print(f"| {key} | {x:.2f} | {t:.2f} | **{t / x:.2f}** |{extra}")


if __name__ == "__main__":
    main()
