"""What the rules refuse, and the messages that say how to fix it.

`LearningRuleModel` calls these before anything is learned:

- `check_network_regularizers`: weight penalties a rule cannot apply
  (every rule but Backprop) and activity regularizers (no rule);
- `check_compile_arguments` / `categorical_metrics`: `compile` without a
  `loss` and without sparse metrics (metrics always receive one-hot
  targets);
- `validated_batch`: the input batch (shape, floating dtype, finite
  values), the labels (integer ids or one-hot rows that are class
  distributions, in range) and `sample_weight` (finite), with matching
  batch sizes;
- `warn_if_far_from_unit_range`: a warning for array inputs far outside
  [0, 1] (e.g. ×255 pixels).

The value checks are graph-safe and backend-neutral (`pepita_keras.ops`):
TensorFlow raises `InvalidArgumentError`, also inside `fit`; JAX a
`ValueError` when not traced.
"""

import math
import warnings

import keras
import numpy as np
from keras import ops

from pepita_keras import ops as backend_ops

# Array inputs to `fit` whose values leave [-LIMIT, LIMIT] get a warning: the
# rules (PEPITA's F, whose scale is set for pixels in [0, 1], above all) are
# calibrated for inputs of order one; ×255 pixels train to huge losses.
INPUT_RANGE_WARNING_LIMIT = 10.0

# One-hot rows must sum to 1 within this tolerance (computed in float32 or
# wider): scaled (e.g. ×2) or all-zero rows are refused, soft labels that are
# probability distributions (label smoothing) are accepted.
ONE_HOT_SUM_TOLERANCE = 1e-3


# ----------------------------------------------------------------------
# The network.
# ----------------------------------------------------------------------
# Weight regularizer attributes of the layers the rules learn (graph rules included).
WEIGHT_REGULARIZERS = ("kernel_regularizer", "bias_regularizer", "depthwise_regularizer",
                       "pointwise_regularizer", "gamma_regularizer", "beta_regularizer")


def check_network_regularizers(rule_name, layers, network, applies_weight_regularizers):
    """ValueError for a regularizer the rule would silently ignore.

    Args:
        rule_name: the rule's class name, for the message.
        layers: the network's learnable layers (`block.layer` of each block, or
            a graph's parameterised layers).
        network: the network (for its name).
        applies_weight_regularizers: whether the rule adds weight penalties
            (`kernel_regularizer`, …) to its updates (only a rule that
            differentiates a loss can).
    """
    for layer in layers:
        if getattr(layer, "activity_regularizer", None) is not None:
            raise ValueError(
                f"{rule_name} does not apply activity regularizers; layer "
                f"{layer.name!r} of network {network.name!r} has "
                "activity_regularizer="
                f"{_describe(layer.activity_regularizer)}. "
                "Remove it (set activity_regularizer=None)."
            )
        if applies_weight_regularizers:
            continue
        for attribute in WEIGHT_REGULARIZERS:
            regularizer = getattr(layer, attribute, None)
            if regularizer is not None:
                raise ValueError(
                    f"{rule_name}'s updates are not loss gradients, so a weight "
                    f"penalty cannot enter them: layer {layer.name!r} of "
                    f"network {network.name!r} has {attribute}="
                    f"{_describe(regularizer)}. Remove it and use the optimizer's "
                    "decoupled weight decay instead, e.g. "
                    "keras.optimizers.SGD(0.1, momentum=0.9, "
                    "weight_decay=1e-4) (with plain SGD, "
                    "regularizers.L2(l2) equals weight_decay=2*l2), or "
                    "train with pepita_keras.Backprop, which applies it."
                )


def _describe(obj):
    """`L2(l2=0.01)` for a Keras object with a config, else its repr."""
    try:
        config = obj.get_config()
    except (AttributeError, NotImplementedError):
        return repr(obj)
    arguments = ", ".join(f"{key}={value!r}" for key, value in config.items())
    return f"{type(obj).__name__}({arguments})"


# ----------------------------------------------------------------------
# compile().
# ----------------------------------------------------------------------
def check_compile_arguments(rule_name, loss=None, metrics=None, weighted_metrics=None):
    """ValueError for a `loss` or a sparse metric passed to `compile`.

    The rule defines the updates (the clean pass's categorical
    cross-entropy is only reported as `loss`), and metrics receive one-hot
    targets whatever the label format, which sparse metrics cannot read.
    """
    for argument, given in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
        if isinstance(given, (list, tuple)) and any(map(_is_sparse_metric, given)):
            raise ValueError(
                f"{rule_name} hands metrics one-hot targets "
                "(labels may be integers or one-hot), which sparse metrics "
                "cannot read (they would fail with 'Dimensions must be "
                "equal'). Use the categorical form: \"accuracy\" or "
                "CategoricalAccuracy for SparseCategoricalAccuracy, "
                "TopKCategoricalAccuracy for SparseTopKCategoricalAccuracy, "
                "CategoricalCrossentropy for SparseCategoricalCrossentropy. "
                f"Received: {argument}={given!r}."
            )
    if loss is not None:
        raise ValueError(
            f"{rule_name} learns with its own rule and reports "
            "the clean-pass categorical cross-entropy as `loss`; do not "
            f"pass `loss` to compile(). Received: loss={loss!r}."
        )


def _is_sparse_metric(metric):
    """True for `"sparse_..."` names and `keras.metrics.Sparse...` objects."""
    if isinstance(metric, str):
        return metric.startswith("sparse_")
    return type(metric).__name__.startswith("Sparse")


def categorical_metrics(metrics):
    """`metrics` with `"accuracy"` / `"acc"` as `CategoricalAccuracy`.

    Resolved from what metrics see (one-hot targets), not from the labels
    Keras's JAX trainer builds metrics with. Anything but a list or tuple
    is returned unchanged.
    """
    if not isinstance(metrics, (list, tuple)):
        return metrics
    return [
        keras.metrics.CategoricalAccuracy(name=metric)
        if metric in ("accuracy", "acc")
        else metric
        for metric in metrics
    ]


# ----------------------------------------------------------------------
# A batch.
# ----------------------------------------------------------------------
def validated_batch(x, y, sample_weight, *, input_shape, num_classes, dtype, network_name,
                    check_values=True):
    """`(x, one-hot targets, sample_weight)`, each checked.

    Args:
        x: the input batch.
        y: integer class ids (B,) / (B, 1) or one-hot (B, C).
        sample_weight: optional per-example weights, shape (B,).
        input_shape: the network's input shape, without the batch axis.
        num_classes: C.
        dtype: the dtype x is cast to (the model's variable dtype).
        network_name: for the messages.
        check_values: also check the values in the step (NaN/Inf, label
            range, one-hot rows): ops that run at every step. False for
            data whose values were checked once beforehand
            (`input_pipeline.EpochData.check_values`); shapes and dtypes are
            checked either way (they cost nothing at run time).
    """
    x = validated_inputs(x, input_shape, dtype, network_name, check_values)
    y = ops.convert_to_tensor(y)
    if sample_weight is not None:
        sample_weight = ops.convert_to_tensor(sample_weight)
    check_batch_sizes(x, y, sample_weight)
    return (x, one_hot_targets(y, num_classes, check_values),
            checked_sample_weight(sample_weight, check_values))


def validated_inputs(x, input_shape, dtype, network_name, check_values=True):
    """Checks the input batch's shape, dtype and values; returns it in `dtype`."""
    x = ops.convert_to_tensor(x)
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"Input batch has shape {tuple(x.shape)}, but network "
            f"{network_name!r} expects (batch, "
            f"{', '.join(map(str, input_shape))})."
        )
    check_input_dtype(x)
    # Rules add small perturbations to x (PEPITA's F e): keep it in the
    # variable dtype; layers cast to their compute dtype themselves.
    x = ops.cast(x, dtype)
    if not check_values:
        return x
    return backend_ops.check_finite(x, "Input batch contains NaN or Inf values.")


def check_input_dtype(x):
    """ValueError unless `x` is floating point (integer pixels are refused)."""
    dtype = keras.backend.standardize_dtype(x.dtype)
    if "float" not in dtype:
        raise ValueError(
            f"Inputs must be floating point (e.g. images scaled to "
            f"[0, 1]); received dtype {dtype}. Use "
            "pepita_keras.datasets.load(...) or divide by 255 "
            "(`x / 255`)."
        )


def check_batch_sizes(x, y, sample_weight=None):
    """ValueError when x, y (and sample_weight) hold different batch sizes."""
    sizes = []
    for name, value in (("x", x), ("y", y), ("sample_weight", sample_weight)):
        try:
            size = value.shape[0]
        except (AttributeError, IndexError, TypeError, ValueError):
            continue  # None, a scalar, or unknown rank inside a graph
        if size is not None:
            sizes.append((name, size))
    if len({size for _, size in sizes}) > 1:
        received = ", ".join(f"{name} has {size}" for name, size in sizes)
        raise ValueError(
            "x, y and sample_weight must hold the same number of examples "
            f"(one label per input); received: {received}. Pass matching "
            "slices, e.g. x[:64], y[:64]."
        )


def one_hot_targets(y, num_classes, check_values=True):
    """Integer class ids (B,) / (B, 1) or one-hot (B, C) → one-hot float.

    Refused (the rules would otherwise train on something else than the
    user meant): float labels with a fractional part (3.9 would become
    3), NaN/Inf labels, labels outside [0, C), and one-hot rows that are
    not class distributions (negative entries, or not summing to 1: a
    scaled or all-zero row). Soft labels summing to 1 are accepted.
    """
    y = ops.convert_to_tensor(y)
    if len(y.shape) == 2 and y.shape[-1] == num_classes and num_classes > 1:
        if not check_values:
            return ops.cast(y, keras.config.floatx())
        return _checked_one_hot(y, num_classes)
    if len(y.shape) == 2 and y.shape[-1] == 1:
        y = ops.squeeze(y, axis=-1)
    if len(y.shape) != 1:
        raise ValueError(
            "Labels must be integer class ids of shape (batch,) or "
            f"(batch, 1), or one-hot of shape (batch, {num_classes}). "
            f"Received labels of shape {tuple(y.shape)}."
        )
    if "float" in str(y.dtype) and not check_values:
        y = ops.cast(y, "int32")
    elif "float" in str(y.dtype):
        # Checked before the cast: NaN casts to a (negative) integer.
        y = backend_ops.check_finite(
            y,
            f"Labels contain NaN or Inf; every label must be a class id "
            f"in [0, {num_classes}).",
        )
        y = _assert_all(
            ops.equal(y, ops.floor(y)),
            "Float labels must be whole numbers (class ids); found a "
            "label with a fractional part (e.g. 3.9), which would "
            "silently be truncated. Pass integer class ids (e.g. "
            "y.astype('int64') once the values are whole) or one-hot "
            f"rows of length {num_classes}.",
            y,
        )
        y = ops.cast(y, "int32")
    elif "int" not in str(y.dtype):
        raise ValueError(f"Labels must be integers; received dtype {y.dtype}.")
    if check_values:
        backend_ops.assert_labels_in_range(y, num_classes)
    return ops.one_hot(y, num_classes, dtype=keras.config.floatx())


def _checked_one_hot(y, num_classes):
    y = ops.cast(y, keras.config.floatx())
    y = backend_ops.check_finite(y, "One-hot labels contain NaN or Inf.")
    wide = ops.cast(y, keras.backend.result_type(y.dtype, "float32"))
    row_sum = ops.sum(wide, axis=-1)
    valid = ops.logical_and(
        ops.all(wide >= 0, axis=-1),
        ops.abs(row_sum - 1.0) <= ONE_HOT_SUM_TOLERANCE,
    )
    return _assert_all(
        valid,
        f"One-hot labels of shape (batch, {num_classes}) must be rows of "
        "non-negative class probabilities summing to 1; found a row that "
        "is scaled, all zero or negative. Pass one-hot rows "
        "(keras.utils.to_categorical(ids, num_classes)) or integer class "
        "ids.",
        y,
    )


def checked_sample_weight(sample_weight, check_values=True):
    """`sample_weight` as a float tensor; refused if it holds NaN/Inf (with `check_values`)."""
    if sample_weight is None:
        return None
    sample_weight = ops.convert_to_tensor(sample_weight)
    if "float" not in str(sample_weight.dtype):
        sample_weight = ops.cast(sample_weight, keras.config.floatx())
    if not check_values:
        return sample_weight
    return backend_ops.check_finite(
        sample_weight,
        "sample_weight contains NaN or Inf; every example's weight must "
        "be a finite number (use 0 to leave an example out).",
    )


def _assert_all(condition, message, carrier):
    """Returns `carrier`, raising `message` unless `condition` holds everywhere.

    The flag is NaN exactly where `condition` fails and `check_finite`
    tests it, ordered before `carrier` is used.
    """
    flag = ops.where(condition, 0.0, float("nan"))
    flag = backend_ops.check_finite(ops.cast(flag, "float32"), message)
    return backend_ops.after(carrier, flag)


# ----------------------------------------------------------------------
# fit()'s array inputs.
# ----------------------------------------------------------------------
def warn_if_far_from_unit_range(x, name="x"):
    """Warns when float array inputs leave `[-10, 10]` (e.g. ×255 pixels).

    One NumPy min/max pass over the array (tens of ms for all of MNIST);
    `tf.data` datasets and generators are not scanned. NaN inputs are left
    to the train step, which refuses them.

    Args:
        x: the inputs given to `fit` (an array or eager tensor; anything else
            is ignored).
        name: how the message refers to them (e.g. `"validation_data x"`).
    """
    found = _value_range(x)
    if found is None:
        return
    low, high = found
    limit = INPUT_RANGE_WARNING_LIMIT
    if not (low < -limit or high > limit):  # also False for NaN
        return
    warnings.warn(
        f"Inputs {name} range over [{low:g}, {high:g}], far outside [0, 1]. "
        "The learning rules are calibrated for inputs of order one (PEPITA's "
        "feedback matrix F for pixels in [0, 1]); inputs this large train "
        "to huge losses or diverge. For 8-bit images divide by 255 "
        "(`x / 255`), or load data with pepita_keras.datasets.load(...). If "
        "the scale is intended, silence this warning with "
        "warnings.filterwarnings('ignore', 'Inputs .* range over').",
        UserWarning,
        stacklevel=3,
    )


def _value_range(x):
    """`(min, max)` of a floating-point array or eager tensor, else None."""
    if isinstance(x, np.ndarray):
        if x.size == 0 or not np.issubdtype(x.dtype, np.floating):
            return None
        return float(np.min(x)), float(np.max(x))
    if ops.is_tensor(x) and "float" in keras.backend.standardize_dtype(x.dtype):
        if math.prod(x.shape) == 0:
            return None
        return float(ops.min(x)), float(ops.max(x))
    return None  # datasets, generators, PyDatasets: not scanned
