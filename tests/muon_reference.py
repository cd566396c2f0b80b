#!/usr/bin/python3
"""Reference values for tests/test_muon.cpp: torch.optim.Muon's update rule (PyTorch 2.9,
torch/optim/_muon.py, as documented) restated in numpy float64, plus airbench94_muon's weight
normalisation, on the fixed problems the C++ test builds. Run: /usr/bin/python3 tests/muon_reference.py"""
import numpy as np

ABC = (3.4445, -4.775, 2.0315)


def newton_schulz(g, steps=5, abc=ABC, eps=1e-7):
    a, b, c = abc
    x = g.T.copy() if g.shape[0] > g.shape[1] else g.copy()
    x = x / max(np.linalg.norm(x), eps)
    for _ in range(steps):
        A = x @ x.T
        x = a * x + (b * A + c * A @ A) @ x
    return x.T if g.shape[0] > g.shape[1] else x


def muon(w, a, steps, lr, momentum, nesterov, wd, adjust, normalize):
    """loss = 0.5 * sum(a * w^2), g = a * w; returns w after each step."""
    rows, cols = w.shape[0], w.size // w.shape[0]
    factor = {"original": max(1, rows / cols) ** 0.5, "match_rms_adamw": 0.2 * max(rows, cols) ** 0.5,
              "none": 1.0}[adjust]
    buf = np.zeros_like(w)
    out = []
    for _ in range(steps):
        g = a * w
        buf = momentum * buf + g
        u = g + momentum * buf if nesterov else buf
        o = newton_schulz(u.reshape(rows, cols)).reshape(w.shape)
        if normalize:
            w = w * (rows ** 0.5 / np.linalg.norm(w))
        w = w * (1 - lr * wd)
        w = w - lr * factor * o
        out.append(w.copy())
    return out


def show(name, rows):
    print(name)
    for r in rows:
        print("  {" + ", ".join("%.17g" % v for v in np.ravel(r)) + "},")


G = np.arange(1, 16, dtype=np.float64).reshape(3, 5) ** 1.5 * np.array([1, -1, 1, -1, 1]) / 10
show("newton_schulz(G 3x5)", [newton_schulz(G)])
show("newton_schulz(G^T 5x3), 3 steps", [newton_schulz(G.T, steps=3)])

W = np.array([[1.0, -2, 3], [0.5, 1.5, -1]])
A = np.array([[1.0, 2, 0.5], [3, 0.25, 1]])
show("muon wide, nesterov, wd", muon(W, A, 3, 0.1, 0.9, True, 0.1, "original", False))
show("muon tall, heavy ball, normalize", muon(W.T.copy(), A.T.copy(), 3, 0.05, 0.8, False, 0.0, "original", True))
show("muon wide, match_rms_adamw", muon(W, A, 2, 0.02, 0.95, True, 0.0, "match_rms_adamw", False))
