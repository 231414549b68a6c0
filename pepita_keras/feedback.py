"""Fixed random feedback matrices shared by PEPITA, FA, DFA and DRTP."""

import math

import keras


def uniform_feedback_initializer(fan_in, scale, seed=None):
    """`U(-scale * sqrt(6 / fan_in), +scale * sqrt(6 / fan_in))`.

    This is the PEPITA paper's initialisation of F (official code:
    `sd = sqrt(6 / input_size); F = (rand * 2 * sd - sd) * 0.05`), i.e. a
    He-uniform draw scaled by `scale`.

    Args:
        fan_in: the dimension the limit is computed from (`d` for PEPITA's F).
        scale: multiplicative factor `s` (PEPITA's `feedback_scale`).
        seed: optional integer seed.

    Returns:
        A `keras.initializers.RandomUniform`.
    """
    if fan_in <= 0:
        raise ValueError(f"fan_in must be positive; received fan_in={fan_in}.")
    limit = scale * math.sqrt(6.0 / fan_in)
    return keras.initializers.RandomUniform(-limit, limit, seed=seed)


def add_feedback_weight(model, name, shape, initializer):
    """Adds a non-trainable feedback matrix to `model` (saved with it)."""
    return model.add_weight(
        name=name,
        shape=shape,
        initializer=initializer,
        trainable=False,
        dtype="float32",
    )
