#!/usr/bin/env python3
"""An independent NumPy run of CS231n assignment 1's linear classifiers, as the course's notebook
does them, on the CIFAR-10 binary files: a cross-check of `cs231n linear` that shares no code with it.

The course's pipeline, reproduced step by step:
  - splits: the first 49,000 training images train, the next 1,000 validate, the first 1,000 test
    images test; pixels as float64 0..255 minus the training mean image;
  - the bias trick: a column of ones appended, so the bias is a row of W (and is regularised);
  - W = 0.001 randn; loss = data loss + reg * sum(W^2); SVM: hinge with margin 1 summed over the
    wrong classes, averaged over the batch; softmax: mean cross-entropy;
  - 1,500 steps of plain SGD on batches of 200 drawn with replacement; the accuracy of the final W.
For the best setting it also prints the accuracy on all 10,000 test images and on each 1,000 of them:
how far a split of 1,000 (the course's validation and test sets) can sit from it.

--reencode Q passes every image through JPEG at quality Q (Pillow, 4:2:0 chroma) before all of this:
how much one more generation of the re-encoding that made the shared copy costs these classifiers.

Usage: /usr/bin/python3 scripts/cs231n_reference.py [--data DIR] [--grid course|wide] [--reencode Q]
"""
import argparse
import io
import json
import os
import sys
import time

import numpy as np


def load_batch(path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073 != 0:
        sys.exit(f"error: {path}: {raw.size} bytes is not a whole number of 3073-byte records")
    raw = raw.reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def reencode(images, quality):
    try:
        from PIL import Image
    except ImportError:
        sys.exit("error: --reencode needs Pillow (apt-get install python3-pil)")
    out = np.empty_like(images)
    for i, chw in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(chw.transpose(1, 2, 0)).save(buf, format="JPEG", quality=quality, subsampling=2)
        out[i] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).transpose(2, 0, 1)
    return out


def svm_loss_grad(W, X, y, reg):
    n = X.shape[0]
    scores = X @ W
    margins = np.maximum(0, scores - scores[np.arange(n), y][:, None] + 1)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n + reg * np.sum(W * W)
    coef = (margins > 0).astype(X.dtype)
    coef[np.arange(n), y] = -coef.sum(axis=1)
    return loss, X.T @ coef / n + 2 * reg * W


def softmax_loss_grad(W, X, y, reg):
    n = X.shape[0]
    scores = X @ W
    scores -= scores.max(axis=1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(n), y]).mean() + reg * np.sum(W * W)
    p[np.arange(n), y] -= 1
    return loss, X.T @ p / n + 2 * reg * W


def train(loss_grad, X, y, lr, reg, rng, steps=1500, batch=200):
    W = 0.001 * rng.standard_normal((X.shape[1], 10))
    for _ in range(steps):
        idx = rng.choice(X.shape[0], batch, replace=True)
        loss, grad = loss_grad(W, X[idx], y[idx], reg)
        W -= lr * grad
    return W, loss


def accuracy(W, X, y):
    return float(np.mean(np.argmax(X @ W, axis=1) == y))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR", "../shared/datasets/cifar-10-batches-bin"))
    ap.add_argument("--grid", choices=["course", "wide"], default="course",
                    help="course: lr {1e-7, 5e-7} x reg {2.5e4, 5e4}; wide: cs231n linear --wide-grid's 4 x 4")
    ap.add_argument("--reencode", type=int, default=0, help="JPEG quality for one more re-encoding (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    if a.reencode and not 1 <= a.reencode <= 95:
        sys.exit(f"error: --reencode must be a JPEG quality in 1..95, got {a.reencode}")
    files = [os.path.join(a.data, f"data_batch_{i}.bin") for i in range(1, 6)]
    for f in files + [os.path.join(a.data, "test_batch.bin")]:
        if not os.path.isfile(f):
            sys.exit(f"error: {f} not found (set CIFAR10_DIR or --data)")
    parts = [load_batch(f) for f in files]
    train_img = np.concatenate([p[0] for p in parts])
    train_lab = np.concatenate([p[1] for p in parts])
    test_img, test_lab = load_batch(os.path.join(a.data, "test_batch.bin"))
    if a.reencode:
        train_img, test_img = reencode(train_img, a.reencode), reencode(test_img, a.reencode)

    def flat(images):
        # The course flattens HWC images; the order of the features does not change a linear classifier.
        return images.transpose(0, 2, 3, 1).reshape(len(images), -1).astype(np.float64)

    Xtr, Xval, Xall = flat(train_img[:49000]), flat(train_img[49000:50000]), flat(test_img)
    ytr, yval, yall = train_lab[:49000], train_lab[49000:50000], test_lab
    mean = Xtr.mean(axis=0)
    Xtr, Xval, Xall = (np.hstack([X - mean, np.ones((len(X), 1))]) for X in (Xtr, Xval, Xall))
    Xte, yte = Xall[:1000], yall[:1000]  # the course's test split

    if a.grid == "course":
        lrs, regs = [1e-7, 5e-7], [2.5e4, 5e4]
    else:
        lrs, regs = [1e-7, 3e-7, 1e-6, 3e-6], [1e3, 5e3, 2.5e4, 5e4]
    results = {"reencode": a.reencode, "grid": a.grid, "seed": a.seed}
    for name, fn in (("softmax", softmax_loss_grad), ("svm", svm_loss_grad)):
        best = None
        for lr in lrs:
            for reg in regs:
                t = time.time()
                W, loss = train(fn, Xtr, ytr, lr, reg, np.random.default_rng(a.seed))
                tr, va = accuracy(W, Xtr, ytr), accuracy(W, Xval, yval)
                print(f"{name:7} lr {lr:.0e} reg {reg:.1e}: final loss {loss:.3f}, train {100 * tr:.1f}%, "
                      f"val {100 * va:.1f}% ({time.time() - t:.1f} s)", flush=True)
                if best is None or va > best[0]:
                    best = (va, lr, reg, accuracy(W, Xte, yte), W)
        va, lr, reg, te, W = best
        # How far a 1,000-image split can sit from the classifier's accuracy: the ten 1,000-image
        # chunks of the test set, and all 10,000 images.
        chunks = [accuracy(W, Xall[i:i + 1000], yall[i:i + 1000]) for i in range(0, len(Xall), 1000)]
        full = accuracy(W, Xall, yall)
        print(f"{name}: best lr {lr:.0e} reg {reg:.1e}: val {100 * va:.1f}%, test {100 * te:.1f}%; all 10,000 test "
              f"images {100 * full:.1f}%, their 1,000-image chunks {100 * min(chunks):.1f}-{100 * max(chunks):.1f}%")
        results[name] = {"val_acc": va, "test_acc": te, "lr": lr, "reg": reg, "test_all_acc": full,
                         "test_chunk_accs": chunks}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
