#!/usr/bin/env python3
"""Fits the polynomials of xgrad's vectorised f32 erf and exp (ops/normal.hpp) and checks them in
float32 arithmetic against Python's double-precision math.erf / math.exp. Prints the coefficients as
C++ arrays and the worst errors. Run with Debian's python3 (numpy): /usr/bin/python3 scripts/fit_erf.py

erf(x), |x| <= 1: x * P(x^2), P of degree 5, least squares on Chebyshev nodes for relative error.
erf(x), 1 < |x| < 4: Q((x - 2.5) / 1.5), Q of degree 12 (a Chebyshev fit, as monomials).
erf(x), |x| >= 4: 1 to float precision (erf(3.92) rounds to 1 in f32).
exp(r), |r| <= ln2 / 2: R(r) of degree 6, for exp(x) = 2^k exp(x - k ln2).
"""
import math

import numpy as np

erf = np.vectorize(math.erf)
N = 4000
nodes = np.cos(np.pi * (np.arange(N) + 0.5) / N)  # Chebyshev nodes on [-1, 1]


def horner32(c, t):
    r = np.float32(c[-1])
    for ci in c[-2::-1]:
        r = r * t + np.float32(ci)
    return r


# Inner: erf(x) / x as a polynomial in x^2 on (0, 1].
x = 0.5 + 0.5 * nodes
A = np.stack([x ** (2 * i) for i in range(6)], 1)
inner = np.linalg.lstsq(A, erf(x) / x, rcond=None)[0].astype(np.float32)
# Outer: erf on [1, 4] in t = (x - 2.5) / 1.5.
outer = np.polynomial.chebyshev.cheb2poly(np.polynomial.chebyshev.chebfit(nodes, erf(2.5 + 1.5 * nodes), 12))
outer = outer.astype(np.float32)
# exp on [-ln2/2, ln2/2], relative error.
h = math.log(2) / 2
r = h * nodes
E = np.stack([r ** i for i in range(7)], 1)
expc = np.linalg.lstsq(E / np.exp(r)[:, None], np.ones_like(r), rcond=None)[0].astype(np.float32)

xs = np.linspace(1e-4, 1, 200001).astype(np.float32)
e_in = np.max(np.abs(xs * horner32(inner, xs * xs) - erf(xs.astype(np.float64))) / erf(xs.astype(np.float64)))
xs = np.linspace(1, 4, 200001).astype(np.float32)
e_out = np.max(np.abs(horner32(outer, (xs - np.float32(2.5)) / np.float32(1.5)) - erf(xs.astype(np.float64))))
rs = np.linspace(-h, h, 200001).astype(np.float32)
e_exp = np.max(np.abs(horner32(expc, rs) - np.exp(rs.astype(np.float64))) / np.exp(rs.astype(np.float64)))


def cpp(name, c):
    return f"constexpr float {name}[] = {{" + ", ".join(f"{v:.9e}f" for v in c) + "};"


print(cpp("kErfInner", inner))
print(cpp("kErfOuter", outer))
print(cpp("kExp", expc))
print(f"worst: erf |x|<=1 relative {e_in:.2e}, erf 1<|x|<4 absolute {e_out:.2e}, exp relative {e_exp:.2e}")
