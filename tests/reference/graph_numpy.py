"""The graph rules on small residual / normalised / 1-D conv nets, in plain NumPy.

Written from the rules' equations (module docstrings of
`pepita_keras.rules.graph_pepita`, `graph_dfa`, `graph_feedback_alignment`),
not from the package: Keras layouts (kernels (in, out), channels-last),
float64, LayerNormalization / BatchNormalization with Keras's epsilon and the
biased variance. Every function returns the updates the optimizer receives
(`G`, what it subtracts), as a dict by parameter name.

The residual net (`residual_*`):

    a1 = x W1 + b1 ;  n = LN(a1; γ, β) ;  u = relu(n)
    r  = u W2 + b2 ;  s = relu(u + r)
    z  = s W3 + b3 ;  p = softmax(z)

Units (the graph rules' `h_l`): Dense1 → a1 (its consumer LN has weights),
LN → u (relu then a branch point), Dense2 → r (then Add), Dense3: the output layer.
"""

import numpy as np

from reference.pepita_numpy import relu, softmax

LN_EPSILON = 1e-3
BN_EPSILON = 1e-3


def layer_norm(a, gamma, beta):
    """`(output, normalised input, 1/σ)` over the last axis."""
    mean = a.mean(axis=-1, keepdims=True)
    inverse = 1.0 / np.sqrt(a.var(axis=-1, keepdims=True) + LN_EPSILON)
    normalised = (a - mean) * inverse
    return normalised * gamma + beta, normalised, inverse


def layer_norm_input_gradient(d_out, gamma, normalised, inverse):
    """∂L/∂a of LayerNormalization, given ∂L/∂output."""
    d_hat = d_out * gamma
    return inverse * (d_hat - d_hat.mean(-1, keepdims=True)
                      - normalised * (d_hat * normalised).mean(-1, keepdims=True))


def residual_forward(x, p):
    a1 = x @ p["W1"] + p["b1"]
    n, normalised, inverse = layer_norm(a1, p["gamma"], p["beta"])
    u = relu(n)
    r = u @ p["W2"] + p["b2"]
    s = relu(u + r)
    z = s @ p["W3"] + p["b3"]
    return dict(x=x, a1=a1, n=n, normalised=normalised, inverse=inverse, u=u, r=r, s=s, z=z,
                p=softmax(z))


def residual_pepita(x, targets, p, F, last_layer_error="modulated"):
    """PEPITA's updates on the residual net (no dropout)."""
    batch = len(x)
    clean = residual_forward(x, p)
    error = clean["p"] - targets
    mod = residual_forward(x + error @ F.T, p)
    out_error = mod["p"] - targets if last_layer_error == "modulated" else error
    d1 = clean["a1"] - mod["a1"]
    d_ln = clean["u"] - mod["u"]
    d2 = clean["r"] - mod["r"]
    return {
        "W1": mod["x"].T @ d1 / batch, "b1": d1.mean(0),
        "gamma": (d_ln * mod["normalised"]).sum(0) / batch, "beta": d_ln.mean(0),
        "W2": mod["u"].T @ d2 / batch, "b2": d2.mean(0),
        "W3": mod["s"].T @ out_error / batch, "b3": out_error.mean(0),
    }


def residual_feedback_alignment(x, targets, p, B2, B3):
    """FA's updates on the residual net: backprop with W2ᵀ, W3ᵀ replaced by B2ᵀ, B3ᵀ."""
    batch = len(x)
    f = residual_forward(x, p)
    dz = (f["p"] - targets) / batch
    ds = dz @ B3.T
    d_sum = ds * (f["u"] + f["r"] > 0)
    dr = d_sum
    du = d_sum + dr @ B2.T
    dn = du * (f["n"] > 0)
    da1 = layer_norm_input_gradient(dn, p["gamma"], f["normalised"], f["inverse"])
    return {
        "W1": x.T @ da1, "b1": da1.sum(0),
        "gamma": (dn * f["normalised"]).sum(0), "beta": dn.sum(0),
        "W2": f["u"].T @ dr, "b2": dr.sum(0),
        "W3": f["s"].T @ dz, "b3": dz.sum(0),
    }


def residual_dfa(x, targets, p, D1, D_ln, D2):
    """DFA's updates on the residual net: e projected to each hidden unit, times its derivative.

    Units: Dense1 → a1 (derivative 1), LN → relu(LN) (relu' and LN's own VJP for γ, β),
    Dense2 → r (derivative 1). The output layer gets e.
    """
    batch = len(x)
    f = residual_forward(x, p)
    error = f["p"] - targets
    d1 = error @ D1
    d_ln = (error @ D_ln) * (f["n"] > 0)
    d2 = error @ D2
    return {
        "W1": x.T @ d1 / batch, "b1": d1.mean(0),
        "gamma": (d_ln * f["normalised"]).sum(0) / batch, "beta": d_ln.mean(0),
        "W2": f["u"].T @ d2 / batch, "b2": d2.mean(0),
        "W3": f["s"].T @ error / batch, "b3": error.mean(0),
    }


def batch_norm_pepita(x, targets, p, F):
    """PEPITA on `x → Dense1 → BatchNorm → ReLU → Dense2 → softmax` (batch statistics).

    Returns:
        `(updates, clean batch mean of a1)`; BatchNorm's unit is relu(BN(a1)).
    """
    batch = len(x)

    def forward(inputs):
        a1 = inputs @ p["W1"] + p["b1"]
        mean, variance = a1.mean(0), a1.var(0)
        normalised = (a1 - mean) / np.sqrt(variance + BN_EPSILON)
        u = relu(normalised * p["gamma"] + p["beta"])
        return dict(a1=a1, mean=mean, normalised=normalised, u=u,
                    p=softmax(u @ p["W2"] + p["b2"]))

    clean = forward(x)
    error = clean["p"] - targets
    x_mod = x + error @ F.T
    mod = forward(x_mod)
    out_error = mod["p"] - targets
    d1 = clean["a1"] - mod["a1"]
    d_bn = clean["u"] - mod["u"]
    updates = {
        "W1": x_mod.T @ d1 / batch, "b1": d1.mean(0),
        "gamma": (d_bn * mod["normalised"]).sum(0) / batch, "beta": d_bn.mean(0),
        "W2": mod["u"].T @ out_error / batch, "b2": out_error.mean(0),
    }
    return updates, clean["mean"]


def conv1d_pepita(x, targets, p, F):
    """PEPITA on `x (B, L, c) → Conv1D(k, valid, relu) → Flatten → Dense → softmax`."""
    batch, length, _ = x.shape
    k = p["K"].shape[0]

    def forward(inputs):
        positions = length - k + 1
        windows = np.stack([inputs[:, i:i + k, :] for i in range(positions)], 1)  # B,P,k,c
        h = relu(np.einsum("bpkc,kcf->bpf", windows, p["K"]) + p["c"])
        return dict(windows=windows, h=h, p=softmax(h.reshape(batch, -1) @ p["W"] + p["b"]),
                    flat=h.reshape(batch, -1))

    clean = forward(x)
    error = clean["p"] - targets
    mod = forward(x + (error @ F.T).reshape(x.shape))
    out_error = mod["p"] - targets
    delta = clean["h"] - mod["h"]
    return {
        "K": np.einsum("bpkc,bpf->kcf", mod["windows"], delta) / batch,
        "c": delta.sum((0, 1)) / batch,
        "W": mod["flat"].T @ out_error / batch, "b": out_error.mean(0),
    }
