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
