#!/usr/bin/env python3
"""airbench94's network and recipe in PyTorch, written from the recipe as the README states it
("--model airbench: airbench94's recipe"): the independent reference for xgrad's `train_cifar10
--model airbench` (train/airbench.cpp, train/models.cpp). Run it with /usr/bin/python3 (Debian's torch).
  airbench_torch.py --mode throughput [--widths 64 256 256] [--batch 1024] [--steps K] [--no-step]
      K training steps on random images after one warm-up step; the last line is one JSON object with
      the medians of the whole step, of zero_grad + forward + summed loss + backward (what
      bench/bench_airbench.cpp's "whole network" line times) and of the optimizer step alone.
  airbench_torch.py --mode train [--widths A B C] [--epochs 9.9] [--seed S] [--json PATH]
      the whole recipe on the 50,000 training images, then the test accuracy with the recipe's
      test-time views on the 10,000 test images. Reads CIFAR-10's binary files from --data
      (default $CIFAR10_DIR).
  --optimizer muon: airbench94_muon's recipe instead, as the README states it (train/airbench.hpp's
      AirbenchMuonRecipe): batch 2000, 8 epochs, Muon on the 3x3 filters (written here from
      torch.optim.Muon's documented update; this torch has none), Nesterov SGD on the rest, every lr
      linear to 0, no lookahead, logits / last width with the head at unit std.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

# The recipe (README; train/airbench.hpp's AirbenchRecipe holds xgrad's copy of the same numbers).
BATCH = 1024
EPOCHS = 9.9
LR, MOMENTUM, WEIGHT_DECAY = 11.5, 0.85, 0.0153  # lr and decay per 1024 examples
BIAS_SCALER = 64           # the batch-norm shifts' lr factor
LABEL_SMOOTHING = 0.2
WHITEN_BIAS_EPOCHS = 3
TRANSLATE = 2
WARMUP, LR_START, LR_END = 0.23, 0.2, 0.07
LOOKAHEAD_K, LOOKAHEAD_DECAY = 5, 0.95 ** 5
WHITEN_IMAGES, WHITEN_EPS = 5000, 5e-4
BN_EPS, BN_MOMENTUM = 1e-12, 0.4   # torch's momentum convention
LOGIT_SCALE = 1 / 9
# airbench94_muon's recipe
MUON_BATCH, MUON_EPOCHS = 2000, 8
FILTER_LR, FILTER_MOMENTUM, NS_STEPS = 0.24, 0.6, 3
MUON_BIAS_LR, MUON_HEAD_LR, MUON_WD_PER_EXAMPLE = 0.053, 0.67, 2e-6


def conv3x3(c_in, c_out):
    """Same-padded 3x3 conv without bias: torch's default init, then the first c_in filters the identity."""
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:c_in])  # a view: at most min(c_in, c_out) filters
    return conv


def norm(c):
    bn = nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)
    bn.weight.requires_grad_(False)  # the scale stays 1; only the shift learns
    return bn


class Group(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1, self.pool, self.norm1 = conv3x3(c_in, c_out), nn.MaxPool2d(2), norm(c_out)
        self.conv2, self.norm2 = conv3x3(c_out, c_out), norm(c_out)

    def forward(self, x):
        x = F.gelu(self.norm1(self.pool(self.conv1(x))))
        return F.gelu(self.norm2(self.conv2(x)))


class Airbench(nn.Module):
    def __init__(self, widths, logit_scale=LOGIT_SCALE, head_std=0.0):
        super().__init__()
        self.logit_scale = logit_scale
        self.whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)  # 32x32 -> 31x31
        self.whiten.weight.requires_grad_(False)  # set by set_whitening, never trained
        self.group1 = Group(24, widths[0])
        self.group2 = Group(widths[0], widths[1])
        self.group3 = Group(widths[1], widths[2])
        self.head = nn.Linear(widths[2], 10, bias=False)
        if head_std > 0:
            with torch.no_grad():
                self.head.weight.mul_(head_std / self.head.weight.std())

    def forward(self, x):
        x = F.gelu(self.whiten(x))
        x = self.group3(self.group2(self.group1(x)))           # 31 -> 15 -> 7 -> 3
        return self.head(torch.flatten(F.max_pool2d(x, 3), 1)) * self.logit_scale

    def set_whitening(self, images):
        """images [N, 3, H, W], normalised. The 12 eigenvectors of the 2x2x3 patches' second-moment
        matrix (largest eigenvalue first), each over sqrt(eigenvalue + eps), then their negations."""
        d = 3 * 2 * 2
        s = torch.zeros(d, d, dtype=torch.float64)
        count = 0
        for chunk in images.split(500):
            # [n, 3, 31, 31, 2, 2] -> rows (n, y, x), columns (c, i, j): the conv weight's layout.
            p = chunk.double().unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, d)
            s += p.T @ p
            count += p.shape[0]
        eigenvalues, vectors = torch.linalg.eigh(s / count)  # ascending
        eigenvalues, vectors = eigenvalues.flip(0), vectors.flip(1)
        w = (vectors / torch.sqrt(eigenvalues.clamp(min=0) + WHITEN_EPS)).T.reshape(d, 3, 2, 2)
        with torch.no_grad():
            self.whiten.weight.copy_(torch.cat([w, -w]).float())
            self.whiten.bias.zero_()


def kilostep_scale():
    return 1024 * (1 + 1 / (1 - MOMENTUM))


def make_optimizer(model):
    """Nesterov SGD: the batch-norm shifts at 64x the lr, everything else that trains at the base lr; both
    with the same absolute decay, written as torch's coupled weight_decay = wd / lr of the group."""
    lr = LR / kilostep_scale()
    wd = WEIGHT_DECAY * BATCH / kilostep_scale()
    shifts = [m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    shift_ids = {id(p) for p in shifts}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in shift_ids]
    lr_shift = lr * BIAS_SCALER
    groups = [dict(params=rest, lr=lr, weight_decay=wd / lr, base_lr=lr),
              dict(params=shifts, lr=lr_shift, weight_decay=wd / lr_shift, base_lr=lr_shift)]
    return torch.optim.SGD(groups, lr=lr, momentum=MOMENTUM, nesterov=True)


def orthogonalise(g, steps):
    """The quintic Newton-Schulz iteration on the wide orientation of g, from g / |g|_F."""
    a, b, c = 3.4445, -4.775, 2.0315
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / max(x.norm().item(), 1e-7)
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return x.T if g.shape[0] > g.shape[1] else x


class Muon(torch.optim.Optimizer):
    """Momentum b = m b + g, Nesterov u = g + m b, each filter bank rescaled to norm sqrt(filters), then
    w -= lr * orthogonalise(u as [filters, rest])."""
    def __init__(self, params, lr, momentum, ns_steps):
        super().__init__(params, dict(lr=lr, momentum=momentum, ns_steps=ns_steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad)
                u = p.grad + group["momentum"] * buf
                p.mul_(p.shape[0] ** 0.5 / p.norm())
                p.sub_(group["lr"] * orthogonalise(u.reshape(p.shape[0], -1), group["ns_steps"]).view_as(p))


def make_muon_optimizers(model):
    """Muon on the 3x3 filters; Nesterov SGD on the whitening bias and the batch-norm shifts (bias lr) and
    on the head (head lr), each with the same absolute decay written as weight_decay = wd / lr."""
    wd = MUON_WD_PER_EXAMPLE * MUON_BATCH
    filters = [p for p in model.parameters() if p.requires_grad and p.dim() == 4]
    shifts = [m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    sgd = torch.optim.SGD([dict(params=[model.whiten.bias], lr=MUON_BIAS_LR, weight_decay=wd / MUON_BIAS_LR, whiten=True),
                           dict(params=shifts, lr=MUON_BIAS_LR, weight_decay=wd / MUON_BIAS_LR, whiten=False),
                           dict(params=[model.head.weight], lr=MUON_HEAD_LR, weight_decay=wd / MUON_HEAD_LR, whiten=False)],
                          lr=MUON_BIAS_LR, momentum=MOMENTUM, nesterov=True)
    muon = Muon(filters, lr=FILTER_LR, momentum=FILTER_MOMENTUM, ns_steps=NS_STEPS)
    for opt in (sgd, muon):
        for g in opt.param_groups:
            g["base_lr"] = g["lr"]
    return [sgd, muon]


def lr_multiplier(step, total):
    warm = int(WARMUP * total)
    return float(np.interp(step, [0, warm, total], [LR_START, 1.0, LR_END]))


def loss_fn(logits, labels):
    return F.cross_entropy(logits, labels, reduction="sum", label_smoothing=LABEL_SMOOTHING)


# ---------------------------------------------------------------------------------------------- data

def read_cifar_bin(path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073 != 0:
        sys.exit(f"airbench_torch: {path} is {raw.size} bytes, not a whole number of 3073-byte records")
    raw = raw.reshape(-1, 3073)
    if raw[:, 0].max() > 9:
        sys.exit(f"airbench_torch: {path} has a label {raw[:, 0].max()}, CIFAR-10's are 0..9")
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def load_cifar(directory):
    names = [f"data_batch_{i}.bin" for i in range(1, 6)]
    for n in names + ["test_batch.bin"]:
        if not os.path.isfile(os.path.join(directory, n)):
            sys.exit(f"airbench_torch: {os.path.join(directory, n)} not found (CIFAR-10 binary version; set --data)")
    parts = [read_cifar_bin(os.path.join(directory, n)) for n in names]
    train_x, train_y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    test_x, test_y = read_cifar_bin(os.path.join(directory, "test_batch.bin"))
    # Per-channel mean and (population) std of the training pixels, in [0, 1] units.
    px = train_x.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64) / 255
    mean, std = px.mean(1), px.std(1)

    def normalise(x):
        x = torch.from_numpy(x).float() / 255
        return (x - torch.tensor(mean).float().view(1, 3, 1, 1)) / torch.tensor(std).float().view(1, 3, 1, 1)

    return (normalise(train_x), torch.from_numpy(train_y), normalise(test_x), torch.from_numpy(test_y))


def translate_reflect(x, dy, dx):
    """x shifted by (dy, dx) pixels (content moves down/right for positive values), borders reflected."""
    p = max(abs(dy), abs(dx))
    if p == 0:
        return x
    h, w = x.shape[2:]
    padded = F.pad(x, (p, p, p, p), mode="reflect")
    return padded[:, :, p - dy:p - dy + h, p - dx:p - dx + w]


def augment(x, flip, gen):
    """Per image: mirrored where flip is set, then shifted by a uniform (dy, dx) in [-2, 2]^2, reflect-padded."""
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    n, h, w, p = x.shape[0], x.shape[2], x.shape[3], TRANSLATE
    padded = F.pad(x, (p, p, p, p), mode="reflect")
    offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=gen)
    out = torch.empty_like(x)
    for oy in range(2 * p + 1):
        for ox in range(2 * p + 1):
            idx = ((offsets[:, 0] == oy) & (offsets[:, 1] == ox)).nonzero().flatten()
            if idx.numel():
                out[idx] = padded[idx, :, oy:oy + h, ox:ox + w]
    return out


@torch.no_grad()
def predict(model, x, tta):
    """Logits; with tta, airbench's views: 0.5 x mirror-averaged logits of the image, 0.25 x those of its
    1-pixel reflect shifts up-left and down-right."""
    def mirrored(v):
        return 0.5 * (model(v) + model(v.flip(3)))
    if not tta:
        return model(x)
    return 0.5 * mirrored(x) + 0.25 * mirrored(translate_reflect(x, -1, -1)) + 0.25 * mirrored(translate_reflect(x, 1, 1))


def accuracy(model, x, y, tta, batch=500):
    model.eval()
    correct = sum((predict(model, x[i:i + batch], tta).argmax(1) == y[i:i + batch]).sum().item()
                  for i in range(0, len(x), batch))
    model.train()
    return correct / len(x)


# ------------------------------------------------------------------------------------------ training

def train(a):
    data_dir = a.data or os.environ.get("CIFAR10_DIR")
    if not data_dir:
        sys.exit("airbench_torch: --mode train needs --data DIR or CIFAR10_DIR")
    t0 = time.perf_counter()
    train_x, train_y, test_x, test_y = load_cifar(data_dir)
    n = len(train_x)
    torch.manual_seed(a.seed)  # the initial weights
    muon = a.optimizer == "muon"
    batch = MUON_BATCH if muon else BATCH
    a.epochs = a.epochs if a.epochs is not None else (MUON_EPOCHS if muon else EPOCHS)
    model = Airbench(a.widths, 1 / a.widths[2], 1.0) if muon else Airbench(a.widths)
    model.set_whitening(train_x[:WHITEN_IMAGES])
    opts = make_muon_optimizers(model) if muon else [make_optimizer(model)]
    per_epoch = n // batch  # whole batches only
    total = math.ceil(a.epochs * per_epoch)
    whiten_steps = WHITEN_BIAS_EPOCHS * per_epoch
    epochs = math.ceil(a.epochs)
    gen = torch.Generator().manual_seed(a.seed + 1)  # data order, flips, shifts
    first_flips = torch.rand(n, generator=gen) < 0.5
    # Lookahead's average over every float tensor of the state (parameters and batch-norm statistics).
    live = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    ema = {k: v.detach().clone() for k, v in live.items()}
    print(f"airbench_torch: {n} train / {len(test_x)} test images, widths {a.widths}, {total} steps of {batch} "
          f"({a.epochs:g} epochs of {per_epoch}), {a.optimizer}, seed {a.seed}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}", flush=True)
    step, log = 0, []
    for epoch in range(epochs):
        if step >= total:
            break
        model.whiten.bias.requires_grad_(epoch < WHITEN_BIAS_EPOCHS)
        flips = first_flips ^ bool(epoch % 2)
        order = torch.randperm(n, generator=gen)
        start, losses = time.perf_counter(), []
        for b in range(per_epoch):
            if step >= total:
                break
            idx = order[b * batch:(b + 1) * batch]
            x = augment(train_x[idx], flips[idx], gen)
            for opt in opts:
                for g in opt.param_groups:
                    if muon:
                        g["lr"] = g["base_lr"] * max(0.0, 1 - step / (whiten_steps if g.get("whiten") else total))
                    else:
                        g["lr"] = g["base_lr"] * lr_multiplier(step, total)
            loss = loss_fn(model(x), train_y[idx])
            for opt in opts:
                opt.zero_grad(set_to_none=True)  # a frozen whitening bias gets no update at all
            loss.backward()
            for opt in opts:
                opt.step()
            step += 1
            losses.append(loss.item())
            if not muon and (step % LOOKAHEAD_K == 0 or step == total):
                decay = 1.0 if step == total else LOOKAHEAD_DECAY * (step / total) ** 3
                with torch.no_grad():
                    for k, v in live.items():
                        ema[k].lerp_(v, 1 - decay)
                        v.copy_(ema[k])
        seconds = time.perf_counter() - start
        train_acc = accuracy(model, train_x[:1000], train_y[:1000], tta=False)
        row = dict(epoch=epoch + 1, steps=len(losses), loss=statistics.fmean(losses), train_acc=train_acc,
                   seconds=seconds, img_per_s=len(losses) * batch / seconds)
        log.append(row)
        print(f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.1f} (summed over {batch}), train acc "
              f"{100 * train_acc:.1f}% (first 1000, no augmentation), {seconds:.0f} s, {row['img_per_s']:.0f} img/s",
              flush=True)
    test_acc = accuracy(model, test_x, test_y, tta=True)
    train_seconds = sum(r["seconds"] for r in log)
    summary = dict(widths=a.widths, optimizer=a.optimizer, seed=a.seed, epochs=a.epochs, steps=step, test_acc=test_acc,
                   test_acc_plain=accuracy(model, test_x, test_y, tta=False), train_seconds=train_seconds,
                   wall_seconds=time.perf_counter() - t0, threads=torch.get_num_threads(),
                   torch=torch.__version__, per_epoch=log)
    print(f"test accuracy {100 * test_acc:.2f}% (test-time views; {100 * summary['test_acc_plain']:.2f}% without), "
          f"{step * batch / train_seconds:.0f} img/s over {train_seconds:.0f} s of training", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "per_epoch"}))


def throughput(a):
    torch.manual_seed(a.seed)
    model = Airbench(a.widths)
    opt = make_optimizer(model)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))
    fwd_bwd, opt_step, whole = [], [], []
    for i in range(a.steps + 1):  # the first is the warm-up
        s = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = loss_fn(model(x).float(), y)
        loss.backward()
        m = time.perf_counter()
        if not a.no_step:
            opt.step()
        e = time.perf_counter()
        if i > 0:
            fwd_bwd.append(m - s)
            opt_step.append(e - m)
            whole.append(e - s)
    med = statistics.median(whole)
    print(json.dumps(dict(widths=a.widths, batch=a.batch, steps=a.steps, threads=torch.get_num_threads(),
                          optimizer_step=not a.no_step, bf16=a.bf16, step_s=med, img_per_s=a.batch / med,
                          fwd_bwd_s=statistics.median(fwd_bwd), fwd_bwd_img_per_s=a.batch / statistics.median(fwd_bwd),
                          opt_step_s=statistics.median(opt_step))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["throughput", "train"], required=True)
    p.add_argument("--widths", type=int, nargs=3, default=[64, 256, 256])
    p.add_argument("--batch", type=int, default=BATCH, help="throughput only (the recipe's batch is 1024)")
    p.add_argument("--steps", type=int, default=3, help="throughput: timed steps after one warm-up")
    p.add_argument("--no-step", action="store_true", help="throughput: skip the optimizer step")
    p.add_argument("--bf16", action="store_true",
                   help="throughput: forward under torch.autocast('cpu', bfloat16) (oneDNN's AMX kernels where the CPU has them)")
    p.add_argument("--epochs", type=float, default=None, help="train: default 9.9 (sgd) or 8 (muon)")
    p.add_argument("--optimizer", choices=["sgd", "muon"], default="sgd", help="train: airbench94 or airbench94_muon")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default=None, help="CIFAR-10 binary directory (default $CIFAR10_DIR)")
    p.add_argument("--json", default=None, help="train: write a JSON summary here")
    a = p.parse_args()
    if min(a.widths) <= 0 or a.batch <= 0 or a.steps <= 0 or a.threads <= 0 or not (a.epochs is None or 0 < a.epochs < 1000):
        p.error("widths, batch, steps and threads must be positive, epochs in (0, 1000)")
    torch.set_num_threads(a.threads)
    throughput(a) if a.mode == "throughput" else train(a)


if __name__ == "__main__":
    main()
