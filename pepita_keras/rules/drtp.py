"""DRTP: Direct Random Target Projection.

Frenkel, Lefebvre & Bol, "Learning Without Feedback: Fixed Random Learning
Signals Allow for Feedforward Training of Deep Neural Networks", Frontiers in
Neuroscience 15:629892 (2021), https://doi.org/10.3389/fnins.2021.629892
(official code https://github.com/ChFrenkel/DirectRandomTargetProjection).

DRTP is DFA with the one-hot *target* projected instead of the error, so the
hidden layers need neither the output nor a backward pass:

    delta_l = reshape(onehot(t) D_l, shape(h_l)) ⊙ σ'_l(a_l) ⊙ m_l   (l < L)
    delta_L = e = y − onehot(t)              (the output layer's local error)
    G_l     = h_{l-1}ᵀ delta_l / B,   w ← w − lr·G

Sign convention: `+onehot(t)` takes the place of `e` with the *same* sign as
in DFA (`delta_l` is used like a gradient, `w ← w − lr·G`). This is the
paper's `δy_k = (B_kᵀ y*) ⊙ f'(y_k)` and what the official code feeds to
autograd as the estimated gradient (`labels.mm(fixed_fb_weights)` where DFA
has `(y − labels).mm(...)`). Why the target stands in for the error: with a
softmax output `e = y − onehot(t)`, whose label-dependent part is exactly
`−onehot(t)` (its sign is known from the target alone: `e_t < 0`, all other
`e_j > 0`). Projecting `+onehot(t)` instead of `−onehot(t)` is the same as
using `−D_l`, which has the same (symmetric) distribution as `D_l`; so the
sign is a convention, and we keep the paper's. The output layer, trained on
its own error `e`, adapts to the features the projected targets shape.

With ReLU hidden units the projected target never vanishes (unlike DFA's
error), so a hidden unit keeps growing along the inputs of the classes that
drive it: keep `lr · feedback_scale` small (tests/test_baselines_mnist.py
states the measured settings and accuracies). The DRTP paper and its code use tanh
hidden units (`paper_fc(hidden_activation="tanh")`), which saturate: a unit
driven to `tanh(a) = ±1` stops learning (`1 − tanh² → 0`).

The official code (`main.py` defaults: `--hidden-act tanh --output-act
sigmoid --loss BCE --optimizer NAG --batch-size 100 --lr 1e-4`) trains the
output layer on the mean binary cross-entropy over the `B × C` outputs
(PyTorch's `F.binary_cross_entropy`), i.e. with `(y − t) / (B·C)`, while its
hidden-layer hook hands autograd `onehot(t) D_l` per example, so the hidden
gradient is a *sum* over the batch. Here every `G_l` is a batch mean; so
the code's step at learning rate `η` is this rule's with a sigmoid output
and

    learning_rate = η / C,      feedback_scale = B · C

(`D_l` at `feedback_scale = 1` is the code's `kaiming_uniform_` draw). The
only differences left are the optimizer's momentum form (the code's default
is Nesterov), the code's biases and PyTorch's default weight init
(`U(±1/sqrt(fan_in))`), and where dropout acts (the code drops each FC
layer's input, here the hidden activations).

Closed forms (tested): the hidden updates do not depend on the output
layer's weights, and they equal DFA's hidden updates with `e` replaced by
`onehot(t)`; DRTP and DFA share the `D_l` shape, initialisation and
attributes.
"""

import numbers

import keras

from pepita_keras.rules.dfa import DirectFeedbackAlignment
from pepita_keras.registry import register_rule

# The official DRTP code's defaults (its `main.py` arguments), for networks
# built with `paper_networks.paper_fc` / `paper_networks.paper_conv`.
OFFICIAL_CODE_ACTIVATIONS = {"hidden_activation": "tanh", "output_activation": "sigmoid"}


def official_code_step(eta, batch_size, num_classes):
    """This rule's settings that take the official DRTP code's step.

    The code averages the output layer's binary cross-entropy over the
    `B × C` outputs but sums the hidden updates over the batch; this rule
    averages every update over the batch (module doc). With a sigmoid output
    (`OFFICIAL_CODE_ACTIVATIONS`) and the returned settings, `lr · G` here is
    the code's `η · gradient`, for every layer.

    Args:
        eta: the code's learning rate (`--lr`).
        batch_size: the training batch size `B`.
        num_classes: the number of outputs `C`.

    Returns:
        A dict `{"learning_rate": eta / C, "feedback_scale": B · C}`.

    Example:

    >>> official_code_step(0.1, 64, 10)
    {'learning_rate': 0.01, 'feedback_scale': 640.0}
    """
    for name, value in (("eta", eta), ("batch_size", batch_size), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            raise ValueError(f"{name} must be a positive number. Received: {name}={value!r}.")
    return {
        "learning_rate": float(eta) / num_classes,
        "feedback_scale": float(batch_size * num_classes),
    }


@register_rule("drtp", label="DRTP", order=3)
class DRTP(DirectFeedbackAlignment):
    """Trains a network with Direct Random Target Projection through `fit`.

    Args:
        network: a built Sequential-style `keras.Model` ending in a softmax
            or a sigmoid (same layers and activations as
            `DirectFeedbackAlignment`).
        feedback_scale: `s` in `D_l ~ U(−s·sqrt(6/n_l), s·sqrt(6/n_l))`,
            `n_l = prod(shape(h_l))`. Defaults to 1.0 (official code's
            `kaiming_uniform_`; its per-batch *sum* of hidden updates is
            `feedback_scale = B·C`, see module doc).
        seed: optional integer seeding the feedback matrices (the one of
            block i, counted from 0, uses `seed + i`) and the dropout masks.
        **kwargs: passed to `keras.Model`.

    Attributes:
        feedback_matrices: list of the non-trainable `D_l`, aligned with
            `blocks[:-1]`, each of shape `(num_classes, prod(shape(h_l)))`.

    Example:

    ```python
    network = pepita_keras.paper_networks.paper_fc(seed=0)
    model = pepita_keras.DRTP(network, feedback_scale=0.01, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2)
    ```

    The official code's default setting (tanh hidden units, sigmoid output
    with binary cross-entropy) at its learning rate `eta` and batch size 64:

    ```python
    network = pepita_keras.paper_networks.paper_fc(
        seed=0, hidden_activation="tanh", output_activation="sigmoid")
    model = pepita_keras.DRTP(network, feedback_scale=64 * 10, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(eta / 10, momentum=0.9,
                                                 nesterov=True))
    ```
    """

    def projected_signal(self, error, targets):
        """DRTP projects the one-hot target `+onehot(t)` (see module doc)."""
        del error
        return targets
