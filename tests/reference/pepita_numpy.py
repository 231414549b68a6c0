"""PEPITA (Dellaferrera & Kreiman, ICML 2022) in plain NumPy.

Conventions (chosen to match Keras layouts, not derived from pepita_keras):
dense kernels are (in, out); conv kernels (kh, kw, in, out), channels-last,
stride 1, "valid" padding; flattening is row-major over (H, W, C); the input
modulation reshapes `e @ F.T` (F: (prod(input_shape), C)) row-major back to
the input's shape.
"""

import numpy as np


def relu(a):
    return np.maximum(a, 0.0)


def softmax(a):
    z = a - a.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def conv2d_valid(x, kernel, bias=None):
    """Cross-correlation, stride 1, valid padding: (B,H,W,C)→(B,H',W',O)."""
    kh, kw, _, out = kernel.shape
    batch, height, width, _ = x.shape
    result = np.zeros((batch, height - kh + 1, width - kw + 1, out))
    for i in range(height - kh + 1):
        for j in range(width - kw + 1):
            patch = x[:, i : i + kh, j : j + kw, :]  # (B, kh, kw, C)
            result[:, i, j, :] = np.einsum("bhwc,hwco->bo", patch, kernel)
    if bias is not None:
        result = result + bias
    return result


def conv2d_kernel_update(x, delta, kernel_shape):
    """sum_b sum_(i,j) patch_b(i,j) ⊗ delta_b(i,j): shape (kh, kw, C, O)."""
    kh, kw, _, _ = kernel_shape
    grad = np.zeros(kernel_shape)
    for i in range(delta.shape[1]):
        for j in range(delta.shape[2]):
            patch = x[:, i : i + kh, j : j + kw, :]
            grad += np.einsum("bhwc,bo->hwco", patch, delta[:, i, j, :])
    return grad


def max_pool_2x2(x):
    batch, height, width, channels = x.shape
    h2, w2 = height // 2, width // 2
    x = x[:, : 2 * h2, : 2 * w2, :].reshape(batch, h2, 2, w2, 2, channels)
    return x.max(axis=(2, 4))


def _mlp_forward(x, kernels, biases, masks):
    """Returns per-layer inputs and outputs; masks[l] multiplies hidden h_l."""
    inputs, outputs = [], []
    h = x.reshape(x.shape[0], -1)
    for index, kernel in enumerate(kernels):
        inputs.append(h)
        a = h @ kernel + (biases[index] if biases is not None else 0.0)
        last = index == len(kernels) - 1
        h = softmax(a) if last else relu(a)
        if not last and masks is not None and index in masks:
            h = h * masks[index]
        outputs.append(h)
    return inputs, outputs


def pepita_mlp_updates(
    x, onehot, kernels, biases, feedback, last_layer_error="modulated", masks=None
):
    """PEPITA updates of a ReLU MLP with softmax output.

    Args:
        x: inputs (B, ...), flattened row-major for the first layer.
        onehot: targets (B, C).
        kernels: list of (in, out) arrays.
        biases: list of (out,) arrays or None.
        feedback: F, shape (prod(x.shape[1:]), C).
        last_layer_error: "modulated" (e_mod) or "clean" (e).
        masks: optional {hidden layer index: inverted-dropout mask}, the same
            in both passes.

    Returns:
        List of updates [G_W1, (G_b1), G_W2, ...] as the optimizer receives
        them (w ← w − lr·G).
    """
    batch = x.shape[0]
    _, clean = _mlp_forward(x, kernels, biases, masks)
    error = clean[-1] - onehot
    x_mod = x + (error @ feedback.T).reshape(x.shape)
    mod_inputs, modulated = _mlp_forward(x_mod, kernels, biases, masks)
    mod_error = modulated[-1] - onehot
    updates = []
    for index in range(len(kernels)):
        if index == len(kernels) - 1:
            delta = mod_error if last_layer_error == "modulated" else error
        else:
            delta = clean[index] - modulated[index]
        updates.append(mod_inputs[index].T @ delta / batch)
        if biases is not None:
            updates.append(delta.sum(axis=0) / batch)
    return updates


def _conv_forward(x, conv_kernel, dense_kernel):
    conv_out = relu(conv2d_valid(x, conv_kernel))
    flat = max_pool_2x2(conv_out).reshape(x.shape[0], -1)
    return conv_out, flat, softmax(flat @ dense_kernel)


def pepita_conv_updates(
    x, onehot, conv_kernel, dense_kernel, feedback, last_layer_error="modulated"
):
    """PEPITA for Conv(valid, relu) → MaxPool 2 → Flatten → Dense softmax.

    The conv kernel update is the correlation of the modulated input's
    patches with (h − h_mod), divided by B once (PEPITA sign; not the
    official conv script's flipped sign and double batch division).
    """
    batch = x.shape[0]
    conv_clean, _, y = _conv_forward(x, conv_kernel, dense_kernel)
    error = y - onehot
    x_mod = x + (error @ feedback.T).reshape(x.shape)
    conv_mod, flat_mod, y_mod = _conv_forward(x_mod, conv_kernel, dense_kernel)
    delta_last = (y_mod - onehot) if last_layer_error == "modulated" else error
    return [
        conv2d_kernel_update(x_mod, conv_clean - conv_mod, conv_kernel.shape) / batch,
        flat_mod.T @ delta_last / batch,
    ]


# ---------------------------------------------------------------------------
# The official convolutional script (GiorgiaD/PEPITA main_pytorch.py with
# models.py's compute_delta_w_conv), restated from its loops for the net
# Conv(valid, relu, no bias) → MaxPool 2 → Flatten → Dense softmax (no bias).
# Its ΔW are applied as v ← γ v + η ΔW / B, w ← w + v (w += ΔW direction).
# ---------------------------------------------------------------------------
def official_conv_delta_w(inp, out_diff, kernel_shape, bias=False):
    """compute_delta_w_conv: Σ over output positions of the batch mean of
    out_diff(r, c) ⊗ input window(r, c), divided by the number of positions.

    Args:
        inp: the conv layer's input (B, H, W, C) (the script: mod_inputs).
        out_diff: h − h_mod, (B, H', W', O).
        kernel_shape: (kh, kw, C, O).
        bias: also return the bias's ΔW, the same statement with a constant
            window of ones (our extension; the official convs have no bias).

    Returns:
        ΔW of shape kernel_shape, or (ΔW, Δb) when `bias`.
    """
    kh, kw, _, out = kernel_shape
    delta_w = np.zeros(kernel_shape)
    delta_b = np.zeros(out)
    count = 0
    for r in range(out_diff.shape[1]):
        for c in range(out_diff.shape[2]):
            window = inp[:, r : r + kh, c : c + kw, :]  # (B, kh, kw, C)
            diff = out_diff[:, r, c, :]  # (B, O)
            product = window[:, :, :, :, None] * diff[:, None, None, None, :]
            delta_w += product.mean(axis=0)  # the script's mean over the batch
            delta_b += diff.mean(axis=0)
            count += 1
    delta_w /= count
    delta_b /= count
    return (delta_w, delta_b) if bias else delta_w


def _conv_net_forward(x, conv_kernel, dense_kernel, conv_bias=None, dense_bias=None):
    conv_out = relu(conv2d_valid(x, conv_kernel, conv_bias))
    flat = max_pool_2x2(conv_out).reshape(x.shape[0], -1)
    logits = flat @ dense_kernel + (dense_bias if dense_bias is not None else 0.0)
    return conv_out, flat, softmax(logits)


def official_conv_net_delta_ws(
    x, onehot, conv_kernel, dense_kernel, feedback,
    conv_bias=None, dense_bias=None, sample_weight=None,
):
    """The script's ΔW for one batch (`learn_type='ERIN'`, `-is_pool`).

    conv:  ΔW = compute_delta_w_conv(x_mod, h − h_mod)
    dense: ΔW = −e^T pool(h_mod) (clean error e, pooled modulated input),
           here in the (in, out) layout: −pool(h_mod)^T e.

    Our extensions, absent from the script (None: as the script): biases are
    weights on a constant input 1 (dense: −Σ_b e_b); `sample_weight` (B,)
    multiplies each example's h − h_mod and e.

    Returns:
        [ΔW_conv, (Δb_conv), ΔW_dense, (Δb_dense)].
    """
    conv_clean, _, y = _conv_net_forward(x, conv_kernel, dense_kernel, conv_bias, dense_bias)
    error = y - onehot
    x_mod = x + (error @ feedback.T).reshape(x.shape)
    conv_mod, flat_mod, _ = _conv_net_forward(
        x_mod, conv_kernel, dense_kernel, conv_bias, dense_bias
    )
    out_diff = conv_clean - conv_mod
    if sample_weight is not None:
        out_diff = out_diff * sample_weight[:, None, None, None]
        error = error * sample_weight[:, None]
    deltas = []
    if conv_bias is None:
        deltas.append(official_conv_delta_w(x_mod, out_diff, conv_kernel.shape))
    else:
        deltas.extend(official_conv_delta_w(x_mod, out_diff, conv_kernel.shape, bias=True))
    deltas.append(-(flat_mod.T @ error))
    if dense_bias is not None:
        deltas.append(-error.sum(axis=0))
    return deltas


def official_conv_net_training(
    x, onehot, conv_kernel, dense_kernel, feedback, eta, batch_size, gamma=0.9
):
    """The script's momentum loop over consecutive batches of x (in order).

    v ← γ v + η ΔW / batch_size;  w ← w + v   (update_type='mom').

    Returns:
        [conv_kernel, dense_kernel] after one pass over x.
    """
    weights = [conv_kernel.copy(), dense_kernel.copy()]
    velocity = [np.zeros_like(w) for w in weights]
    for start in range(0, len(x), batch_size):
        batch = slice(start, start + batch_size)
        deltas = official_conv_net_delta_ws(x[batch], onehot[batch], *weights, feedback)
        velocity = [gamma * v + eta * d / batch_size for v, d in zip(velocity, deltas)]
        weights = [w + v for w, v in zip(weights, velocity)]
    return weights
