#!/usr/bin/env python3
"""airbench94's training throughput, xgrad against PyTorch, side by side: runs xgrad's
bench/bench_airbench.cpp ("whole network" line: zero_grad, forward, summed cross-entropy, backward) and
bench/airbench_torch.py --mode throughput (the same, plus the optimizer step timed apart) in alternating
order, round after round, and prints the medians and the ratio as a Markdown table. Usage:
  compare_airbench_torch.py BENCH_AIRBENCH [--rounds R] [--reps N] [--torch-steps K] [--batch B]
                            [--widths A B C] [--threads T] [--bf16]
--bf16 takes xgrad's step at set_float32_matmul_precision("medium") (bench_airbench's alternated line)
and adds PyTorch under torch.autocast('cpu', bfloat16), beside PyTorch in f32.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

WHOLE = re.compile(r"^whole network, summed cross-entropy\s+([0-9.]+)", re.M)
MEDIUM = re.compile(r"^  alternated: precision medium \(bf16, AMX\)\s+([0-9.]+)", re.M)


def xgrad_side(binary, batch, reps, widths, bf16):
    out = subprocess.run([binary, str(batch), str(reps)] + [str(w) for w in widths], check=True, capture_output=True,
                         text=True).stdout
    m = (MEDIUM if bf16 else WHOLE).search(out)
    if not m:
        sys.exit(f"compare_airbench_torch: no 'whole network' line in {binary}'s output:\n{out}")
    return float(m.group(1)) / 1e3


def torch_side(batch, steps, widths, threads, bf16=False):
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "airbench_torch.py")
    cmd = [sys.executable, script, "--mode", "throughput", "--batch", str(batch), "--steps", str(steps),
           "--threads", str(threads), "--widths"] + [str(w) for w in widths] + (["--bf16"] if bf16 else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("xgrad", help="path of build/bench/bench_airbench")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reps", type=int, default=3, help="xgrad: timed repetitions per run (after one warm-up)")
    p.add_argument("--torch-steps", type=int, default=3, help="PyTorch: timed steps per run (after one warm-up)")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--widths", type=int, nargs=3, default=[64, 256, 256])
    p.add_argument("--threads", type=int, default=2, help="PyTorch's threads (xgrad uses all cores)")
    p.add_argument("--bf16", action="store_true", help="xgrad at precision medium; PyTorch also under bf16 autocast")
    a = p.parse_args()
    if not os.access(a.xgrad, os.X_OK):
        sys.exit(f"compare_airbench_torch: {a.xgrad} is not an executable (build it: scripts/build.sh build)")
    xs, ts, bs = [], [], []
    sides = ["xgrad", "torch"] + (["torch_bf16"] if a.bf16 else [])
    for r in range(a.rounds):
        order = sides if r % 2 == 0 else list(reversed(sides))
        for side in order:
            start = time.perf_counter()
            if side == "xgrad":
                xs.append(xgrad_side(a.xgrad, a.batch, a.reps, a.widths, a.bf16))
                got = f"{xs[-1] * 1e3:.0f} ms"
            elif side == "torch_bf16":
                bs.append(torch_side(a.batch, a.torch_steps, a.widths, a.threads, True))
                got = f"{bs[-1]['fwd_bwd_s'] * 1e3:.0f} ms forward + backward (bf16 autocast)"
            else:
                ts.append(torch_side(a.batch, a.torch_steps, a.widths, a.threads))
                got = f"{ts[-1]['fwd_bwd_s'] * 1e3:.0f} ms forward + backward, {ts[-1]['opt_step_s'] * 1e3:.1f} ms step"
            print(f"round {r + 1}/{a.rounds} {side}: {got} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)

    x = statistics.median(xs)
    t_fb = statistics.median(t["fwd_bwd_s"] for t in ts)
    t_step = statistics.median(t["step_s"] for t in ts)
    t_opt = statistics.median(t["opt_step_s"] for t in ts)
    b = a.batch
    print(f"airbench94 widths {'-'.join(map(str, a.widths))}, batch {b}; median of {a.rounds} alternated runs "
          f"(xgrad: median of {a.reps} reps each, PyTorch {ts[0]['threads']} threads: median of {a.torch_steps} steps "
          f"each); ratio > 1: xgrad is faster\n")
    print("| measure | xgrad ms | PyTorch ms | xgrad img/s | PyTorch img/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    what = "zero_grad + forward + summed loss + backward"
    if a.bf16:
        what += ", xgrad at precision medium (bf16 on AMX), PyTorch in f32"
    print(f"| {what} | {x * 1e3:.0f} | {t_fb * 1e3:.0f} | {b / x:.0f} | {b / t_fb:.0f} | **{t_fb / x:.2f}** |")
    if a.bf16:
        b_fb = statistics.median(t["fwd_bwd_s"] for t in bs)
        print(f"| the same, PyTorch under bf16 autocast | {x * 1e3:.0f} | {b_fb * 1e3:.0f} | {b / x:.0f} "
              f"| {b / b_fb:.0f} | **{b_fb / x:.2f}** |")
    print(f"\nPyTorch's whole training step with Nesterov SGD: {t_step * 1e3:.0f} ms ({b / t_step:.0f} img/s); "
          f"the optimizer step alone {t_opt * 1e3:.1f} ms ({100 * t_opt / t_step:.2f}% of it)")
    runs_x = ", ".join(f"{v * 1e3:.0f}" for v in xs)
    runs_t = ", ".join(f"{v['fwd_bwd_s'] * 1e3:.0f}" for v in ts)
    print(f"per run: xgrad {runs_x} ms; PyTorch {runs_t} ms (forward + backward)")


if __name__ == "__main__":
    main()
