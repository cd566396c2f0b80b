#!/usr/bin/env python3
"""PyTorch's half of the side-by-side benchmark (bench/vs_torch.cpp is xgrad's half; the models and
the measurements are the same). Prints one JSON object per invocation:
  vs_torch.py model NAME [--threads T] [--seconds S]   training and inference images/s, peak RSS
  vs_torch.py ops [--threads T] [--seconds S]          forward + backward ms of single ops
"""
import argparse
import json
import resource
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def median_seconds(f, seconds):
    f()
    f()
    t = []
    start = time.perf_counter()
    while len(t) < 5 or time.perf_counter() - start < seconds:
        s = time.perf_counter()
        f()
        t.append(time.perf_counter() - s)
    return statistics.median_high(t)


def fc_net(hidden, dropout):
    layers, d = [nn.Flatten()], 3072
    for h in hidden:
        layers += [nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)]
        d = h
    return nn.Sequential(*layers, nn.Linear(d, 10))


def vgg(channels=(32, 32, 64, 64, 128, 128)):
    layers, c, size = [], 3, 32
    for i, out in enumerate(channels):
        layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        c = out
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * size * size, 10))


def make(name):
    if name == "twolayer":
        return nn.Sequential(nn.Flatten(), nn.Linear(3072, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "fc":
        return fc_net([100] * 4, 0.5)
    if name == "convnet":
        return nn.Sequential(nn.Conv2d(3, 32, 7, padding=3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(32 * 16 * 16, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "vgg":
        return vgg()
    raise SystemExit(f"vs_torch.py: unknown model '{name}'; choose twolayer, fc, convnet or vgg")


def bench_model(name, seconds, bf16=False):
    batch = 128
    base_rss = peak_rss_mb()
    model = make(name)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()

    train = median_seconds(step, seconds)
    rss = peak_rss_mb()
    model.eval()

    def infer():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)

    return {"train_ips": batch / train, "infer_ips": batch / median_seconds(infer, seconds),
            "peak_rss_mb": rss, "base_rss_mb": base_rss}


def fwd_bwd_ms(f, inputs, seconds):
    for t in inputs:
        t.requires_grad_()

    def run():
        for t in inputs:
            t.grad = None
        out = f(*inputs)
        out.backward(torch.ones_like(out))

    return 1e3 * median_seconds(run, seconds)


def bench_ops(seconds):
    n, ms = 128, {}

    def conv(key, c, f, k, hw):
        ms[key] = fwd_bwd_ms(lambda x, w, b: F.conv2d(x, w, b, padding=k // 2),
                             [torch.randn(n, c, hw, hw), torch.randn(f, c, k, k) * 0.05, torch.zeros(f)], seconds)

    conv("conv2d 3->32 7x7 pad 3, 32x32", 3, 32, 7, 32)
    conv("conv2d 64->64 3x3 pad 1, 16x16", 64, 64, 3, 16)
    conv("conv2d 128->128 3x3 pad 1, 8x8", 128, 128, 3, 8)
    ms["max_pool2d 2x2, 32x32x32"] = fwd_bwd_ms(lambda x: F.max_pool2d(x, 2), [torch.randn(n, 32, 32, 32)], seconds)
    rm, rv = torch.zeros(64), torch.ones(64)
    ms["batch_norm 2-D train, 64x16x16"] = fwd_bwd_ms(
        lambda x, g, b: F.batch_norm(x, rm, rv, g, b, training=True),
        [torch.randn(n, 64, 16, 16), torch.ones(64), torch.zeros(64)], seconds)
    ms["matmul 1024x1024x1024"] = fwd_bwd_ms(torch.matmul, [torch.randn(1024, 1024), torch.randn(1024, 1024)],
                                             seconds)
    return ms


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["model", "ops"])
    p.add_argument("name", nargs="?")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--bf16", action="store_true", help="model: under torch.autocast('cpu', bfloat16)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.what == "model":
        if not a.name:
            raise SystemExit("vs_torch.py model: missing the model name")
        print(json.dumps(bench_model(a.name, a.seconds, a.bf16)))
    else:
        print(json.dumps(bench_ops(a.seconds)))


if __name__ == "__main__":
    main()
