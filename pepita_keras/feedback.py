"""Feedback matrices shared by PEPITA, FA, DFA and DRTP.

Their initialisation and seeding, PEPITA's weight mirroring of F, and the
alignment protocol (`AlignmentPair`) the diagnostics callback reads.
"""

import dataclasses
import math
import numbers

import keras
from keras import ops

from pepita_keras import ops as backend_ops


def check_feedback_scale(scale):
    """Returns `scale` as a float; ValueError unless a positive finite number.

    A zero, negative, NaN or infinite scale gives a useless F (no
    modulation, a sign flip, or NaN updates from the first step), so every
    rule refuses it when its feedback matrices are drawn.
    """
    if (
        isinstance(scale, bool)
        or not isinstance(scale, numbers.Real)
        or not math.isfinite(scale)
        or not scale > 0
    ):
        raise ValueError(
            "feedback_scale must be a positive finite number (the defaults: "
            "0.05 for PEPITA, 1.0 for FA, DFA and DRTP). Received: "
            f"feedback_scale={scale!r}."
        )
    return float(scale)


def uniform_feedback_initializer(fan_in, scale, seed=None):
    """`U(-scale * sqrt(6 / fan_in), +scale * sqrt(6 / fan_in))`.

    This is the PEPITA paper's initialisation of F (official code:
    `sd = sqrt(6 / input_size); F = (rand * 2 * sd - sd) * 0.05`), i.e. a
    He-uniform draw scaled by `scale`. Every rule's feedback matrices are
    drawn here, so the `scale` check (`check_feedback_scale`) covers them
    all.

    Args:
        fan_in: the dimension the limit is computed from (`d` for PEPITA's F).
        scale: multiplicative factor `s` (PEPITA's `feedback_scale`), a
            positive finite number.
        seed: optional integer seed.

    Returns:
        A `keras.initializers.RandomUniform`.

    Raises:
        ValueError: if `fan_in` is not positive or `scale` is not a positive
            finite number.
    """
    if fan_in <= 0:
        raise ValueError(f"fan_in must be positive; received fan_in={fan_in}.")
    limit = check_feedback_scale(scale) * math.sqrt(6.0 / fan_in)
    return keras.initializers.RandomUniform(-limit, limit, seed=seed)


def add_feedback_matrix(model, name, shape, fan_in, scale, seed=None):
    """Adds a non-trainable feedback matrix to `model` (saved with it).

    Drawn by `uniform_feedback_initializer(fan_in, scale, seed)`, in the
    model's variable dtype (float32 under mixed precision).

    Args:
        model: the rule the matrix belongs to.
        name: the weight's name (unique within the model).
        shape: the matrix's shape.
        fan_in: the dimension its limit is computed from.
        scale: the rule's `feedback_scale`.
        seed: optional integer seed (see `feedback_seed`).

    Returns:
        The new variable.
    """
    return model.add_weight(
        name=name,
        shape=shape,
        initializer=uniform_feedback_initializer(fan_in, scale, seed),
        trainable=False,
    )


def feedback_seed(seed, index):
    """Seed of the `index`-th feedback matrix: `seed + index` (None stays None).

    A Keras initializer with an integer seed draws the same values on every
    call, so each matrix needs its own seed.
    """
    return None if seed is None else seed + index


# ----------------------------------------------------------------------
# Feedback mirroring (PEPITA variant; Srinivasan et al., ICLR 2024).
# ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FeedbackMirroring:
    """Settings of PEPITA's F weight mirroring.

    Every `period` training steps, after the weight update, the network is
    driven by input noise `ξ ~ N(0, noise_std²)` (`batch_size` samples, no
    dropout) and F moves along the correlation of that noise with the
    network's response `r` at the output, then is rescaled to its initial
    standard deviation (see `mirrored_feedback`).

    Args:
        learning_rate: `η` of `ΔF`. Defaults to 0.1 (ICLR code's `wmlr`).
        noise_std: standard deviation of `ξ`. Defaults to 0.1 (ICLR code's
            `noise_amplitude`).
        batch_size: number of noise samples per mirroring update.
        period: mirror every `period` training steps (1: every step).
    """

    learning_rate: float = 0.1
    noise_std: float = 0.1
    batch_size: int = 64
    period: int = 1

    def __post_init__(self):
        for name in ("learning_rate", "noise_std"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(
                    f"feedback_mirroring {name} must be a positive number. "
                    f"Received: {name}={value!r}."
                )
        for name in ("batch_size", "period"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"feedback_mirroring {name} must be a positive integer. "
                    f"Received: {name}={value!r}."
                )

    @classmethod
    def parse(cls, value):
        """None → None; a dict (as in `get_config`) or instance → instance."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(
                    "feedback_mirroring accepts the keys learning_rate, "
                    f"noise_std, batch_size, period. Received unknown keys "
                    f"{sorted(unknown)} in feedback_mirroring={value!r}."
                )
            return cls(**value)
        raise ValueError(
            "feedback_mirroring must be None, a dict or a FeedbackMirroring. "
            f"Received: feedback_mirroring={value!r}."
        )

    def get_config(self):
        return dataclasses.asdict(self)


def mirrored_feedback(feedback, noise, response, learning_rate, direction, target_std):
    """One weight-mirroring update of a feedback matrix.

        F' = F + direction · η · ξᵀ r / N,     F'' = F' · target_std / std(F')

    with `ξ` the input noise flattened to (N, d) and `r` the response (N, C).
    For a linear response `r = ξ W_1⋯W_L` and `E[ξᵀ ξ] / N = σ² I`, so the
    expected step is `direction · η σ² W_1⋯W_L`: F turns towards
    `direction · W_1⋯W_L` (Keras (in, out) layout; behind a softmax at small
    logits, the column-centred product), while the rescaling keeps its
    entries' standard deviation (population std) at `target_std`.

    Args:
        feedback: F, shape (d, C).
        noise: ξ, shape (N, ...) with prod(...) = d.
        response: r, shape (N, C).
        learning_rate: η.
        direction: +1 or −1.
        target_std: the standard deviation F'' is rescaled to.

    Returns:
        F'', shape (d, C), in F's dtype.
    """
    noise = ops.reshape(ops.cast(noise, feedback.dtype), (ops.shape(noise)[0], -1))
    response = ops.cast(response, feedback.dtype)
    count = ops.cast(ops.shape(noise)[0], feedback.dtype)
    updated = feedback + (direction * learning_rate) * ops.matmul(
        ops.transpose(noise), response
    ) / count
    return updated * (ops.cast(target_std, feedback.dtype) / ops.std(updated))


class MirroringState:
    """Weight mirroring of one feedback matrix: its state and its steps.

    Creates on `model` three non-trainable weights, saved with it so that a
    resumed run mirrors as an uninterrupted one would: F's initial standard
    deviation (the rescaling target), the training-step counter (for
    `period`) and the noise-draw counter (the noise seed).

    Args:
        model: the rule owning F (a `LearningRuleModel`).
        feedback: the feedback variable F, shape (d, C).
        settings: a `FeedbackMirroring`.
    """

    # Folded into the seed so the mirroring noise is not the dropout stream.
    STREAM = 0x6D6972

    def __init__(self, model, feedback, settings):
        self.feedback = feedback
        self.settings = settings
        self.target_std = model.add_weight(
            name="feedback_target_std", shape=(), initializer="zeros", trainable=False
        )
        # Assigned, not a Constant initializer (which rounds to float32).
        self.target_std.assign(ops.std(feedback))
        self.step, self.draws = (
            model.add_weight(
                name=name, shape=(), dtype="int64", initializer="zeros", trainable=False
            )
            for name in ("mirroring_step", "mirroring_draws")
        )

    def mirror(self, respond, direction, base_seed, input_shape, noise=None):
        """One `mirrored_feedback` update of F; returns the new F.

        Args:
            respond: function from a noise batch to the network output.
            direction: ±1, see `mirrored_feedback`.
            base_seed: integer scalar the noise seed derives from.
            input_shape: the network's input shape (without batch).
            noise: optional explicit `ξ` of shape (N, *input_shape).
        """
        if noise is None:
            draw = ops.convert_to_tensor(self.draws)
            self.draws.assign_add(ops.convert_to_tensor(1, "int64"))
            noise = backend_ops.stateless_normal(
                (self.settings.batch_size,) + tuple(input_shape),
                self.settings.noise_std,
                (base_seed + self.STREAM, draw),
                self.feedback.dtype,
            )
        feedback = mirrored_feedback(
            self.feedback,
            noise,
            respond(noise),
            self.settings.learning_rate,
            direction,
            self.target_std,
        )
        self.feedback.assign(feedback)
        return feedback

    def after_training_step(self, mirror):
        """Counts a training step; calls `mirror()` every `period` steps."""
        step = self.step.assign_add(ops.convert_to_tensor(1, "int64"))
        if self.settings.period == 1:
            mirror()
        else:
            backend_ops.run_if(ops.equal(step % self.settings.period, 0), mirror)


# ----------------------------------------------------------------------
# Alignment diagnostics protocol.
# ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AlignmentPair:
    """A feedback matrix and the forward quantity it stands in for.

    Rules expose these through `feedback_alignment_pairs()`;
    `pepita_keras.callbacks.AlignmentDiagnostics` logs the angle between the
    two (flattened) tensors, which must have the same shape.

    Args:
        name: short key, e.g. `"F"` or `"B_2"` (logged as
            `alignment_angle_<name>`).
        feedback: the feedback tensor (e.g. PEPITA's F, FA's B_l).
        forward: the forward tensor of the same shape it is compared with
            (e.g. the product of forward kernels, or W_l).
    """

    name: str
    feedback: object
    forward: object


def forward_kernel_product(blocks, start=0):
    """`W_{start+1} ⋯ W_L` in Keras (in, out) layout, or None.

    The linear map from the input of block `start` to the output, ignoring
    nonlinearities: defined only when every block from `start` on is a Dense
    layer (Flatten and Dropout in between are fine; pooling and Conv2D are
    not matrices, so None is returned).

    Args:
        blocks: the network's `Block`s.
        start: index of the first block of the product.

    Returns:
        A tensor of shape (fan_in of blocks[start], units of blocks[-1]),
        or None.
    """
    product = None
    for block in blocks[start:]:
        if not isinstance(block.layer, keras.layers.Dense) or any(
            not isinstance(layer, (keras.layers.Flatten, keras.layers.Dropout))
            for layer in block.pre
        ):
            return None
        kernel = ops.convert_to_tensor(block.layer.kernel)
        product = kernel if product is None else ops.matmul(product, kernel)
    return product


def angle_degrees(a, b):
    """Angle in degrees between two tensors flattened to vectors."""
    a = ops.reshape(ops.cast(a, "float64"), (-1,))
    b = ops.reshape(ops.cast(b, "float64"), (-1,))
    cosine = ops.sum(a * b) / (ops.norm(a) * ops.norm(b))
    return ops.arccos(ops.clip(cosine, -1.0, 1.0)) * (180.0 / math.pi)
