"""Backprop, Feedback Alignment, DFA and DRTP in plain NumPy.

A network is a list of layer dicts, in call order:

- `{"kind": "dense", "kernel": (in, out), "bias": (out,) or None,
  "activation": name, "mask": None or array}`
- `{"kind": "conv", "kernel": (kh, kw, in, out), ...}` (stride 1, valid,
  channels-last, cross-correlation as in Keras),
- `{"kind": "pool"}` (2×2 max pooling, stride 2, floor), `{"kind": "flatten"}`
  (row-major over (H, W, C)).

`mask` is an inverted-dropout mask multiplying the layer's activation. The
last layer's activation is "softmax" (categorical cross-entropy) or, for DFA
and DRTP, "sigmoid" (binary cross-entropy summed over the classes): both give
the output error e = y − onehot at the pre-activation. Every function returns the list
`[G_kernel, (G_bias), ...]` of what the optimizer receives (`w ← w − lr·G`),
with `G = Σ_b w_b h_{l-1,b}ᵀ delta_{l,b} / B`.

Equations (a_l pre-activation, h_l = σ(a_l)·m_l, e = y − onehot):
- BP:   delta_L = e; delta_{l-1} = back(delta_l W_lᵀ) ⊙ σ'(a_{l-1}) ⊙ m_{l-1}
- FA:   the same with a fixed B_l (kernel-shaped) in place of W_l
- DFA:  delta_l = reshape(e D_l) ⊙ σ'(a_l) ⊙ m_l
- DRTP: delta_l = reshape(onehot D_l) ⊙ σ'(a_l) ⊙ m_l
where back(·) undoes flatten (reshape) and max pooling (to the arg-max).
"""

import numpy as np

# The same correlations as PEPITA's reference: Σ_b Σ_(i,j) patch ⊗ delta, and 2×2 max pooling.
from tests.reference.pepita_numpy import conv2d_kernel_update as conv2d_kernel_gradient
from tests.reference.pepita_numpy import max_pool_2x2 as max_pool

ACTIVATIONS = {
    "linear": (lambda a: a, lambda a: np.ones_like(a)),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a: (a > 0).astype(a.dtype)),
    "tanh": (np.tanh, lambda a: 1.0 - np.tanh(a) ** 2),
    "sigmoid": (
        lambda a: 1.0 / (1.0 + np.exp(-a)),
        lambda a: np.exp(-a) / (1.0 + np.exp(-a)) ** 2,
    ),
}


def softmax(a):
    z = a - a.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def conv2d(x, kernel):
    """Valid cross-correlation, stride 1: (B,H,W,C) → (B,H',W',O)."""
    kh, kw, _, out = kernel.shape
    batch, height, width, _ = x.shape
    result = np.zeros((batch, height - kh + 1, width - kw + 1, out))
    for i in range(height - kh + 1):
        for j in range(width - kw + 1):
            patch = x[:, i : i + kh, j : j + kw, :]
            result[:, i, j, :] = np.einsum("bhwc,hwco->bo", patch, kernel)
    return result


def conv2d_transpose(delta, kernel, input_shape):
    """Sends an output-shaped signal to the input: Σ_o delta[i,j,o] K[p,q,c,o]."""
    kh, kw, _, _ = kernel.shape
    result = np.zeros(input_shape)
    for i in range(delta.shape[1]):
        for j in range(delta.shape[2]):
            result[:, i : i + kh, j : j + kw, :] += np.einsum(
                "bo,hwco->bhwc", delta[:, i, j, :], kernel
            )
    return result


def max_pool_backward(x, signal):
    """Routes each pooled signal to its window's (first) arg-max in x."""
    result = np.zeros_like(x)
    for i in range(signal.shape[1]):
        for j in range(signal.shape[2]):
            window = x[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, :]
            flat = window.reshape(x.shape[0], 4, x.shape[3])
            winner = flat.argmax(axis=1)  # (B, C)
            for b in range(x.shape[0]):
                for c in range(x.shape[3]):
                    p, q = divmod(winner[b, c], 2)
                    result[b, 2 * i + p, 2 * j + q, c] += signal[b, i, j, c]
    return result


def forward(x, layers):
    """Returns (records, y): per layer its input and, if learnable, a and h."""
    records = []
    h = x
    for layer in layers:
        record = {"input": h}
        if layer["kind"] in ("dense", "conv"):
            if layer["kind"] == "dense":
                a = h @ layer["kernel"]
            else:
                a = conv2d(h, layer["kernel"])
            if layer["bias"] is not None:
                a = a + layer["bias"]
            if layer["activation"] == "softmax":
                h = softmax(a)
            else:
                h = ACTIVATIONS[layer["activation"]][0](a)
            if layer.get("mask") is not None:
                h = h * layer["mask"]
            record["a"] = a
        elif layer["kind"] == "pool":
            h = max_pool(h)
        elif layer["kind"] == "flatten":
            h = h.reshape(h.shape[0], -1)
        else:
            raise ValueError(layer["kind"])
        record["output"] = h
        records.append(record)
    return records, h


def _derivative(layer, record):
    factor = ACTIVATIONS[layer["activation"]][1](record["a"])
    if layer.get("mask") is not None:
        factor = factor * layer["mask"]
    return factor


def _learnable(layers):
    return [i for i, layer in enumerate(layers) if layer["kind"] in ("dense", "conv")]


def _updates(layers, records, deltas, sample_weight):
    """G = Σ_b w_b in_bᵀ delta_b / B for every learnable layer, in order."""
    updates = []
    for index in _learnable(layers):
        layer, delta = layers[index], deltas[index]
        batch = delta.shape[0]
        if sample_weight is not None:
            delta = delta * sample_weight.reshape((-1,) + (1,) * (delta.ndim - 1))
        layer_input = records[index]["input"]
        if layer["kind"] == "dense":
            updates.append(layer_input.T @ delta / batch)
        else:
            updates.append(
                conv2d_kernel_gradient(layer_input, delta, layer["kernel"].shape) / batch
            )
        if layer["bias"] is not None:
            updates.append(delta.reshape(-1, delta.shape[-1]).sum(axis=0) / batch)
    return updates


def feedback_alignment_updates(x, onehot, layers, feedback, sample_weight=None):
    """FA updates; `feedback[k]` is the kernel-shaped B of learnable layer k.

    `feedback[0]` is ignored (nothing is sent below the first layer). Pass
    the forward kernels as `feedback` to get backpropagation.
    """
    records, y = forward(x, layers)
    learnable = _learnable(layers)
    deltas = {learnable[-1]: y - onehot}
    for k in range(len(learnable) - 1, 0, -1):
        index, below = learnable[k], learnable[k - 1]
        layer, delta = layers[index], deltas[index]
        if layer["kind"] == "dense":
            signal = delta @ feedback[k].T
        else:
            signal = conv2d_transpose(delta, feedback[k], records[index]["input"].shape)
        for carry in range(index - 1, below, -1):  # layers between, reversed
            carried_input = records[carry]["input"]
            if layers[carry]["kind"] == "flatten":
                signal = signal.reshape(carried_input.shape)
            else:
                signal = max_pool_backward(carried_input, signal)
        deltas[below] = signal * _derivative(layers[below], records[below])
    return _updates(layers, records, deltas, sample_weight)


def backprop_updates(x, onehot, layers, sample_weight=None):
    """Gradients of mean_b w_b CE_b: FA with B_l = W_l."""
    kernels = [layers[i]["kernel"] for i in _learnable(layers)]
    return feedback_alignment_updates(x, onehot, layers, kernels, sample_weight)


def direct_feedback_updates(
    x, onehot, layers, feedback, signal="error", sample_weight=None
):
    """DFA (`signal="error"`) or DRTP (`signal="target"`) updates.

    `feedback[k]` is D of hidden learnable layer k, shape (C, prod(h_k)).
    """
    if layers[-1]["activation"] not in ("softmax", "sigmoid"):
        raise ValueError("the output activation must be softmax or sigmoid")
    records, y = forward(x, layers)
    error = y - onehot
    projected_signal = error if signal == "error" else onehot
    learnable = _learnable(layers)
    deltas = {learnable[-1]: error}
    for k, index in enumerate(learnable[:-1]):
        a = records[index]["a"]
        projected = (projected_signal @ feedback[k]).reshape(a.shape)
        deltas[index] = projected * _derivative(layers[index], records[index])
    return _updates(layers, records, deltas, sample_weight)


def drtp_official_code_gradients(x, onehot, kernels, biases, feedback):
    """What the official DRTP code hands its optimizer for one batch.

    The code's default network (https://github.com/ChFrenkel/
    DirectRandomTargetProjection, `main.py`: tanh hidden layers, sigmoid
    output, `F.binary_cross_entropy` loss with its default mean over all
    B×C outputs), dense layers only, no dropout. Its hidden hook replaces
    the gradient at h_l by `onehot D_l` for every example, and PyTorch sums
    a Linear layer's weight gradient over the batch; the output layer gets
    the gradient of the mean BCE, d/da [−t log σ(a) − (1−t) log(1−σ(a))]
    / (B·C) = (σ(a) − t) / (B·C). Returns `[dW_1, (db_1), ...]`, biases
    included where `biases[k]` is not None.
    """
    batch, classes = onehot.shape
    h = x
    grads = []
    for k, (kernel, bias) in enumerate(zip(kernels, biases)):
        a = h @ kernel + (0.0 if bias is None else bias)
        if k < len(kernels) - 1:
            out = np.tanh(a)
            delta = (onehot @ feedback[k]) * (1.0 - out**2)
        else:
            out = 1.0 / (1.0 + np.exp(-a))
            delta = (out - onehot) / (batch * classes)
        grads.append(h.T @ delta)
        if bias is not None:
            grads.append(delta.sum(axis=0))
        h = out
    return grads
