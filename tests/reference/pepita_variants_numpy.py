"""PEPITA's variants (Srinivasan et al., ICLR 2024) in plain NumPy.

Independent of pepita_keras: Keras layouts (dense kernels (in, out)), ReLU
hidden layers, softmax output, inputs flattened row-major; F has shape
(prod(input_shape), C).
"""

import numpy as np

from tests.reference.pepita_numpy import relu, softmax


def forward(x, kernels, biases=None, normalize=False):
    """Returns (layer inputs, layer outputs); hidden outputs optionally /‖h‖_F."""
    inputs, outputs = [], []
    h = x.reshape(x.shape[0], -1)
    for index, kernel in enumerate(kernels):
        inputs.append(h)
        a = h @ kernel + (biases[index] if biases is not None else 0.0)
        if index == len(kernels) - 1:
            h = softmax(a)
        else:
            h = relu(a)
            if normalize:
                h = h / np.sqrt(np.sum(h**2))  # norm of the whole batch tensor
        outputs.append(h)
    return inputs, outputs


def _update(pre, post, batch, use_bias):
    out = [pre.T @ post / batch]
    if use_bias:
        out.append(post.sum(axis=0) / batch)
    return out


def variant_updates(
    x,
    onehot,
    kernels,
    biases,
    feedback,
    sign=1,
    normalize=False,
    form="difference",
    last_layer_error="modulated",
    halves=("clean", "modulated"),
):
    """PEPITA updates with the ICLR-2024 options.

    difference: G_l = x_mod-side pre^T (h − h_mod) / B; last e_* as in PEPITA.
    hebbian:    G_l = (pre^T h − pre_mod^T h_mod) / B, last (pre^T y − pre_mod^T t) / B
                (last_layer_error="clean"), or pre_mod^T (y_mod − t) / B ("modulated").
    `halves` keeps only the clean-pass (Hebbian) and/or modulated-pass terms.
    """
    batch = x.shape[0]
    use_bias = biases is not None
    ins, outs = forward(x, kernels, biases, normalize)
    error = outs[-1] - onehot
    x_mod = x + sign * (error @ feedback.T).reshape(x.shape)
    ins_m, outs_m = forward(x_mod, kernels, biases, normalize)
    updates = []
    last = len(kernels) - 1
    for l in range(len(kernels)):
        terms = []  # (half, pre, post)
        if l == last and last_layer_error == "modulated":
            terms.append(("modulated", ins_m[l], outs_m[l] - onehot))
        elif l == last and form == "difference":
            terms.append(("modulated", ins_m[l], error))
        elif l == last:
            terms += [("clean", ins[l], outs[l]), ("modulated", ins_m[l], -onehot)]
        elif form == "difference":
            terms.append(("modulated", ins_m[l], outs[l] - outs_m[l]))
        else:
            terms += [("clean", ins[l], outs[l]), ("modulated", ins_m[l], -outs_m[l])]
        total = [np.zeros_like(kernels[l])] + (
            [np.zeros_like(biases[l])] if use_bias else []
        )
        for half, pre, post in terms:
            if half in halves:
                total = [t + u for t, u in zip(total, _update(pre, post, batch, use_bias))]
        updates += total
    return updates


def time_local_sgd_step(x, onehot, kernels, feedback, lr, sign=1, last_layer_error="clean"):
    """Time-local Hebbian PEPITA, plain SGD, no biases: two sequential steps.

    1. clean pass at W; W' = W − lr·(Hebbian half) / B.
    2. modulated pass at W' with x_mod = x + sign·F e (e from step 1);
       W'' = W' − lr·(anti-Hebbian half).
    """
    batch = x.shape[0]
    ins, outs = forward(x, kernels)
    error = outs[-1] - onehot
    last = len(kernels) - 1
    first = []
    for l in range(len(kernels)):
        if l == last and last_layer_error == "modulated":
            first.append(np.zeros_like(kernels[l]))
        else:
            first.append(ins[l].T @ outs[l] / batch)
    kernels = [w - lr * g for w, g in zip(kernels, first)]
    x_mod = x + sign * (error @ feedback.T).reshape(x.shape)
    ins_m, outs_m = forward(x_mod, kernels)
    second = []
    for l in range(len(kernels)):
        if l == last:
            post = (outs_m[l] - onehot) if last_layer_error == "modulated" else -onehot
        else:
            post = -outs_m[l]
        second.append(ins_m[l].T @ post / batch)
    return [w - lr * g for w, g in zip(kernels, second)]


def mirrored_feedback(feedback, noise, response, lr, direction, target_std):
    """F' = F + direction·lr·ξᵀ r / N, rescaled to population std target_std."""
    noise = noise.reshape(noise.shape[0], -1)
    updated = feedback + direction * lr * noise.T @ response / noise.shape[0]
    return updated * target_std / updated.std()


def angle_degrees(a, b):
    a, b = np.ravel(a), np.ravel(b)
    cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return np.degrees(np.arccos(np.clip(cosine, -1, 1)))
