"""In-memory training data for the reproductions: one order per (seed, epoch).

`load_config_arrays(config)` gives the arrays of a config's dataset (or
`synthetic_arrays` for smoke runs); `EpochData` feeds them to `fit` with
the training order of epoch `e` drawn from `numpy.random.default_rng([seed,
e])`, so an interrupted run that resumes at epoch `e` sees exactly the
batches an uninterrupted one would. The batches are `tf.data` pipelines under
the TensorFlow backend and `datasets.ArrayBatches` (a `keras.utils.PyDataset`,
no TensorFlow needed) under JAX: the same batches in the same order on both.

Example:

```python
arrays = input_pipeline.load_config_arrays(config, data_dir="/data")
data = input_pipeline.EpochData(arrays, config.batch_size, config.eval_batch_size)
model.fit(data.train(seed=0, epoch=0), validation_data=data.test, shuffle=False)
```
"""

import numpy as np

from pepita_keras import datasets
from pepita_keras.build import steps_per_epoch


def synthetic_arrays(config, num_train=None, num_test=None, seed=1234):
    """Learnable random data shaped like `config.dataset` (for smoke runs).

    Each class has a random prototype image in [0, 1]; examples are the
    prototype blended with uniform noise, so a network can learn them.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, float32 images in [0, 1]
        and int32 labels.
    """
    rng = np.random.default_rng(seed)
    shape, classes = config.input_shape, config.num_classes
    prototypes = rng.uniform(size=(classes,) + tuple(shape)).astype(np.float32)

    def draw(count):
        labels = rng.integers(0, classes, size=count).astype(np.int32)
        noise = rng.uniform(size=(count,) + tuple(shape)).astype(np.float32)
        return 0.5 * prototypes[labels] + 0.5 * noise, labels

    return draw(num_train or config.train_examples or 2000), draw(
        num_test or config.test_examples or 500
    )


def load_config_arrays(config, data_dir=None, synthetic=False, verify=True):
    """Loads the arrays of `config.dataset`, cut to the config's subset sizes.

    Args:
        config: an `ExperimentConfig`.
        data_dir: folder with the dataset (see `pepita_keras.datasets`);
            None uses `PEPITA_DATA_DIR`, then TFDS.
        synthetic: use `synthetic_arrays` instead of real data.
        verify: check the SHA256 of known dataset files.

    Returns:
        `((x_train, y_train), (x_test, y_test))`.
    """
    if synthetic:
        return synthetic_arrays(config)
    (x, y), (x_test, y_test) = datasets.load_arrays(
        config.dataset, data_dir, verify=verify
    )
    n_train, n_test = config.train_examples, config.test_examples
    for split, wanted, available in (("train", n_train, len(x)), ("test", n_test, len(x_test))):
        if wanted is not None and wanted > available:
            raise ValueError(
                f"{split}_examples={wanted} (--{split}-examples) but the {config.dataset} "
                f"{split} split found has {available} examples; ask for at most {available}.")
    return (x[:n_train], y[:n_train]), (x_test[:n_test], y_test[:n_test])


def with_data_sizes(config, arrays):
    """`config` with the split sizes the arrays actually have, where the config left them open.

    A data folder holding fewer examples than the dataset's full splits
    (`experiment_config.FULL_SPLITS`) then trains a custom run (`<cell>-custom-…`),
    never one that counts as the paper cell.
    """
    from pepita_keras.experiment_config import FULL_SPLITS

    full = FULL_SPLITS.get(config.dataset)
    if full is None:
        return config
    (x, _), (x_test, _) = arrays
    changes = {}
    if config.train_examples is None and len(x) != full[0]:
        changes["train_examples"] = len(x)
    if config.test_examples is None and len(x_test) != full[1]:
        changes["test_examples"] = len(x_test)
    return config.replace(**changes) if changes else config


def epoch_order(seed, epoch, num_examples):
    """Training order of `epoch`: depends only on (seed, epoch), so resumes are exact."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(num_examples)


class EpochData:
    """Batches over in-memory arrays with a per-epoch order.

    Epoch `e` of seed `s` is the batches of `epoch_order(s, e)` in order, the
    last partial batch kept. Under the TensorFlow backend the arrays are
    turned into tensors once and each epoch gathers batches by those indices
    (batch-before-map, as in `pepita_keras.datasets.make_pipeline`, autotune
    off); under JAX each epoch is a `datasets.ArrayBatches` over the NumPy
    arrays with that order. Pass `shuffle=False` to `fit` (Keras would
    otherwise permute a PyDataset's batches).

    Args:
        arrays: `((x_train, y_train), (x_test, y_test))`.
        batch_size: training batch size (last partial batch kept).
        eval_batch_size: test batch size.
    """

    def __init__(self, arrays, batch_size, eval_batch_size):
        (x, y), (x_test, y_test) = arrays
        self._arrays = arrays
        self.values_checked = False  # `check_values` sets it
        self.num_train, self.num_test = len(y), len(y_test)
        self.batch_size = batch_size
        self._tf_data = datasets.uses_tf_data()
        if self._tf_data:
            import tensorflow as tf

            self._options = datasets.pipeline_options()
            self._x, self._y = tf.constant(x), tf.constant(y)
        else:
            self._x, self._y = x, y
        self.test = datasets.make_pipeline(x_test, y_test, eval_batch_size)
        # A fixed batch for the alignment diagnostics' update norms.
        self.probe = (x[:256], y[:256])

    def check_values(self, num_classes):
        """Checks every example once: finite inputs, integer labels in [0, num_classes).

        What `LearningRuleModel` otherwise checks inside every step
        (`check_batch_values`); after this call the model can skip those
        per-step ops (their cost: `benchmarks/epoch_costs.py`, `benchmarks/RESULTS.md`).

        Raises:
            ValueError: naming the split and the first offending example.
        """
        for split, (x, y) in (("train", self._arrays[0]), ("test", self._arrays[1])):
            x, y = np.asarray(x), np.asarray(y)
            finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
            if not finite.all():
                raise ValueError(f"the {split} split's example {int(np.argmin(finite))} holds "
                                 "NaN or Inf values.")
            if not np.issubdtype(y.dtype, np.integer):
                raise ValueError(f"the {split} split's labels must be integers; received "
                                 f"dtype {y.dtype}.")
            bad = (y < 0) | (y >= num_classes)
            if bad.any():
                index = int(np.argmax(bad))
                raise ValueError(f"the {split} split's label {int(y[index])} (example {index}) "
                                 f"is outside [0, {num_classes}).")
        self.values_checked = True

    @property
    def steps_per_epoch(self):
        return steps_per_epoch(self.num_train, self.batch_size)

    def train(self, seed, epoch):
        """The batches of epoch `epoch` for `seed` (one pass; `fit` one epoch on it)."""
        x, y = self._x, self._y
        order = epoch_order(seed, epoch, self.num_train)
        if not self._tf_data:
            return datasets.ArrayBatches(x, y, self.batch_size, order=order)
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size)
        dataset = dataset.map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
        return dataset.prefetch(2).with_options(self._options)


