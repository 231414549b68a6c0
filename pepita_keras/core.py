"""`LearningRuleModel`: the `train_step` plumbing shared by every rule.

A learning rule in this package only answers one question: *given this batch,
what update does each trainable variable get?* (`updates_and_predictions`).
Everything else lives here, once:

- input validation (shape, dtype, NaN/Inf, label range; integer or one-hot
  labels; weight regularizers the rule cannot apply): the checks and their
  messages are in `pepita_keras.validation`,
- dropout masks drawn once per step and shared by every forward pass of that
  step (`DropoutMasks`),
- the layer-local update `G = h_in^T delta / B` for Dense and its correlation
  analogue for Conv2D (`local_updates`),
- scaling for `tf.distribute` (divide by the number of replicas, as Keras
  scales losses) and for mixed precision (multiply by the loss scale so that
  `LossScaleOptimizer` un-scales back to the true update),
- `optimizer.apply`, the monitored cross-entropy `loss` and compiled metrics,
- `get_config` / `from_config` for `.keras` saving.

Divergence. `loss` in the logs is computed from the clean pass's softmax
logits, so it becomes NaN/Inf as soon as the weights do (a too-large
learning rate or feedback scale). Keras's own `keras.callbacks.TerminateOnNaN`
therefore stops `fit` at the first such batch for every rule:

```python
model.fit(x, y, epochs=100, callbacks=[keras.callbacks.TerminateOnNaN()])
```

(`pepita reproduce` has its own divergence handling.)
"""

import dataclasses
import random

import keras
from keras import ops

from pepita_keras import validation
from pepita_keras import ops as backend_ops
from pepita_keras.backend import RuleTrainer
from pepita_keras.blocks import network_blocks


@dataclasses.dataclass
class ForwardPass:
    """Activations recorded by `LearningRuleModel.forward`.

    Args:
        inputs: per block, the tensor its learnable layer received (`h_{l-1}`).
        outputs: per block, its activation after element-wise layers (`h_l`);
            `outputs[-1]` is the network output.
    """

    inputs: list
    outputs: list

    @property
    def prediction(self):
        return self.outputs[-1]


class DropoutMasks:
    """Draws one mask per `Dropout` layer per step and reuses it.

    Local rules run the network several times per step; the paper requires
    each pass of a step to see the *same* dropout mask. The first pass that
    reaches a dropout layer draws its mask (stateless, from the step seed and
    the layer's position); later passes reuse it.

    Args:
        seed: integer tensor of shape (2,), fresh for every step.
    """

    def __init__(self, seed):
        self.seed = seed
        self.masks = {}

    def __call__(self, layer, position, inputs):
        if layer.rate == 0:
            return inputs
        if layer.name not in self.masks:
            self.masks[layer.name] = backend_ops.dropout_mask(
                ops.shape(inputs),
                layer.rate,
                backend_ops.fold_seed(self.seed, position),
                inputs.dtype,
            )
        return inputs * self.masks[layer.name]


def local_updates(blocks, inputs, deltas, sample_weight=None):
    """Layer-local updates `G = h_in^T delta / B` for every block.

    Dense kernels get `inputs^T @ delta / B`; Conv2D kernels get the
    correlation of input patches with `delta` (`ops.conv2d_kernel_correlation`)
    divided by B; biases get the batch mean of `delta` (summed over spatial
    positions for Conv2D). With `sample_weight`, each example's delta is
    multiplied by its weight (B stays the batch size, as in Keras losses).

    Args:
        blocks: the network's `Block`s.
        inputs: per block, the input its layer saw (`h_{l-1}`).
        deltas: per block, the signal shaped like its output (e.g. `h - h_mod`).
        sample_weight: optional per-example weights, shape (B,).

    Returns:
        A flat list of tensors aligned with `[b.variables for b in blocks]`,
        each in its variable's dtype.
    """
    updates = []
    for block, layer_input, delta in zip(blocks, inputs, deltas):
        layer = block.layer
        dtype = layer.compute_dtype
        layer_input = ops.cast(layer_input, dtype)
        delta = ops.cast(delta, dtype)
        if sample_weight is not None:
            weight = ops.cast(sample_weight, dtype)
            delta = delta * ops.reshape(weight, (-1,) + (1,) * (len(delta.shape) - 1))
        # Divide in the variable dtype (float32 under mixed precision) and
        # by max(B, 1): an empty replica shard must give 0, not NaN.
        variable_dtype = layer.kernel.dtype
        batch = ops.cast(ops.maximum(ops.shape(delta)[0], 1), variable_dtype)
        # Dense in full precision: divide delta (B × out) rather than the
        # kernel-sized product (in × out), saving one kernel-sized pass per
        # step (measured ~0.7 ms of a ~10 ms step at B=64 on the paper FC
        # net). Same maths; bit-identical when B is a power of two.
        divide_delta = dtype == variable_dtype and isinstance(
            layer, keras.layers.Dense
        )
        if divide_delta:
            delta = delta / batch
        if isinstance(layer, keras.layers.Dense):
            kernel = ops.matmul(ops.transpose(layer_input), delta)
        else:
            kernel = backend_ops.conv2d_kernel_correlation(layer, layer_input, delta)
        kernel = ops.cast(kernel, variable_dtype)
        updates.append(kernel if divide_delta else kernel / batch)
        if layer.use_bias:
            axes = tuple(range(len(delta.shape) - 1))
            bias = ops.cast(ops.sum(delta, axis=axes), variable_dtype)
            updates.append(bias if divide_delta else bias / batch)
    return updates


class LearningRuleModel(RuleTrainer, keras.Model):
    """Base class of every learning rule: a Keras model around a network.

    Subclasses implement `updates_and_predictions`, the update each
    trainable variable gets from one batch: a local rule's layer-wise
    update (PEPITA, FA, DFA, DRTP) or the loss gradient (`Backprop`, the
    reference the others are compared with). This class turns those updates
    into a normal Keras training step, so `fit`, `evaluate`, callbacks,
    optimizers, LR schedules, `tf.distribute` and mixed precision behave as
    for any Keras model.

    Stopping on divergence: pass `keras.callbacks.TerminateOnNaN()` to
    `fit`; the logged `loss` turns NaN/Inf as soon as the weights do, so
    training stops at that batch (see the module docstring).

    Args:
        network: a built Sequential-style `keras.Model` (Dense, Conv2D,
            pooling, Flatten, Dropout, Activation/ReLU) ending in a softmax
            (activation or `keras.layers.Softmax()`).
        seed: optional integer; seeds the rule's random state (feedback
            matrices, dropout masks). Same seed, same network weights and
            same data give identical training.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Raises:
        ValueError: for an unsupported network (see
            `pepita_keras.blocks.network_blocks`), or a layer with a
            `kernel_regularizer` / `bias_regularizer` (only `Backprop`
            applies them) or an `activity_regularizer` (no rule does).
    """

    # Whether `kernel_regularizer` / `bias_regularizer` penalties enter the
    # updates. Only a rule that differentiates a loss (Backprop) can add
    # them; the others refuse such networks instead of ignoring them.
    applies_weight_regularizers = False

    def __init__(self, network, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.seed = seed
        self.has_dropout = self._read_network(network)
        self.input_spec_shape = tuple(network.inputs[0].shape[1:])
        self.num_classes = int(network.outputs[0].shape[-1])
        # Dropout seeds: (base seed, step counter), saved with the model so a
        # resumed run draws the masks an uninterrupted run would have drawn.
        # Only the first replica advances the counter.
        self.dropout_seed_state = self.add_weight(
            name="dropout_seed_state",
            shape=(2,),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        base_seed = seed if seed is not None else random.SystemRandom().getrandbits(31)
        self.dropout_seed_state.assign([base_seed, 0])
        self.last_dropout_masks = None
        # Check each batch's values (NaN/Inf, label range) inside the step. A
        # caller that checked its whole dataset once (`pepita reproduce`:
        # `EpochData.check_values`) sets it False before the first `fit`.
        self.check_batch_values = True
        self.built = True

    def _read_network(self, network):
        """Checks `network` and keeps its structure; returns whether it has dropout.

        The paper's chain rules split it into `Block`s (`blocks.network_blocks`);
        the graph rules (`graph_model.GraphRuleModel`) override this.
        """
        self.blocks = network_blocks(network)
        validation.check_network_regularizers(
            type(self).__name__, [block.layer for block in self.blocks], network,
            self.applies_weight_regularizers
        )
        return any(
            isinstance(layer, keras.layers.Dropout)
            for block in self.blocks
            for layer in block.pre + block.post
        )

    def build(self, input_shape=None):
        # Everything is created in __init__ from the already-built network;
        # keras-tuner (Hyperband) and `.keras` loading may call this again.
        self.built = True

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    # ------------------------------------------------------------------
    # What a rule implements.
    # ------------------------------------------------------------------
    def updates_and_predictions(self, x, targets, sample_weight=None, masks=None):
        """Computes the rule's updates for one batch.

        Args:
            x: validated input batch.
            targets: one-hot targets, shape (B, num_classes), float.
            sample_weight: optional per-example weights, shape (B,).
            masks: a `DropoutMasks` for a training step, or None (no dropout).

        Returns:
            `(updates, predictions)`: updates aligned with
            `self.trainable_variables` (what the optimizer receives in place
            of gradients, before distribution/loss scaling), and the clean
            network output used for the loss and metrics.
        """
        raise NotImplementedError

    def feedback_alignment_pairs(self):
        """The rule's feedback tensors, each with the forward one it stands in for.

        `pepita_keras.callbacks.AlignmentDiagnostics` logs the angle of every
        pair. Rules with feedback matrices override this (PEPITA: F against
        `W_1⋯W_L`; FA: `B_l` against `W_l`; DFA, DRTP: `D_l` against
        `(W_{l+1}⋯W_L)ᵀ`).

        Returns:
            A list of `pepita_keras.feedback.AlignmentPair`; `[]` here, for a
            rule without feedback matrices (Backprop) or a network where no
            pair is defined.
        """
        return []

    # ------------------------------------------------------------------
    # Tools for rules.
    # ------------------------------------------------------------------
    def forward(self, x, masks=None):
        """Runs the network layer by layer, recording block inputs/outputs.

        Args:
            x: input batch.
            masks: `DropoutMasks` to apply (training), or None (inference).

        Returns:
            A `ForwardPass`.
        """
        inputs, outputs = [], []
        h = x
        for index in range(len(self.blocks)):
            layer_input, h = self.forward_block(index, h, masks)
            inputs.append(layer_input)
            outputs.append(h)
        return ForwardPass(inputs=inputs, outputs=outputs)

    def forward_block(self, index, h, masks=None):
        """Runs block `index` on the previous block's output `h`.

        `forward` is this, block after block. Rules that must not keep every
        activation (MEMPEPITA) step through the blocks themselves; rules that
        transform activations (PEPITA's normalisation) override it.

        Args:
            index: position of the block in `self.blocks`.
            h: the previous block's output (the network input for block 0).
            masks: `DropoutMasks` to apply (training), or None (inference).

        Returns:
            `(layer_input, output)`: what the learnable layer received
            (`h_{l-1}`) and the block's activation (`h_l`).
        """
        block = self.blocks[index]
        # Dropout layers are numbered in call order: the mask seed depends on it.
        position = sum(
            isinstance(layer, keras.layers.Dropout)
            for earlier in self.blocks[:index]
            for layer in earlier.pre + earlier.post
        )
        for layer in block.pre:
            h, position = self._apply_parameter_free(layer, h, masks, position)
        layer_input = h
        h = block.layer(h)
        for layer in block.post:
            h, position = self._apply_parameter_free(layer, h, masks, position)
        return layer_input, h

    @staticmethod
    def _apply_parameter_free(layer, h, masks, position):
        if isinstance(layer, keras.layers.Dropout):
            if masks is not None:
                h = masks(layer, position, h)
            return h, position + 1
        return layer(h), position

    def _validated_batch(self, x, y, sample_weight):
        """`(x, one-hot targets, sample_weight)`, each checked."""
        return validation.validated_batch(
            x,
            y,
            sample_weight,
            input_shape=self.input_spec_shape,
            num_classes=self.num_classes,
            dtype=self.variable_dtype,
            network_name=self.network.name,
            check_values=self.check_batch_values,
        )

    def _step_seed(self):
        seed = ops.convert_to_tensor(self.dropout_seed_state)
        self.dropout_seed_state.assign_add(ops.convert_to_tensor([0, 1], "int64"))
        _, replica_id = backend_ops.replica_info()
        # Fold the replica id in: otherwise every replica draws the same mask.
        return backend_ops.fold_seed(seed, replica_id)

    # ------------------------------------------------------------------
    # Public API.
    # ------------------------------------------------------------------
    def compute_updates(self, x, y, training=False, sample_weight=None):
        """Returns what `train_step` hands the optimizer for this batch.

        Args:
            x: input batch.
            y: integer class ids or one-hot targets.
            training: if True, dropout is active (fresh masks shared by all
                passes; in eager mode they are kept in
                `self.last_dropout_masks` for analysis).
            sample_weight: optional per-example weights.

        Returns:
            A list of tensors aligned with `self.trainable_variables`.

        Example:

        >>> updates = model.compute_updates(x[:64], y[:64])  # doctest: +SKIP
        >>> [u.shape for u in updates]  # doctest: +SKIP
        """
        x, targets, sample_weight = self._validated_batch(x, y, sample_weight)
        masks = self._masks(training)
        updates, _ = self.updates_and_predictions(x, targets, sample_weight, masks)
        if masks is not None:
            self.last_dropout_masks = dict(masks.masks)
        return self._select_trainable(updates)

    def _masks(self, training):
        if training and self.has_dropout:
            return DropoutMasks(self._step_seed())
        return None

    def _select_trainable(self, updates):
        # A frozen layer (`layer.trainable = False`) gets no update.
        selected = []
        index = 0
        for block in self.blocks:
            for _ in block.variables:
                if block.layer.trainable:
                    selected.append(updates[index])
                index += 1
        return selected

    def predict_step(self, *args):
        # Keras's TF trainer calls predict_step(data), its JAX trainer
        # predict_step(state, data). Integer pixels are refused as in fit.
        x, _, _ = keras.utils.unpack_x_y_sample_weight(args[-1])
        validation.check_input_dtype(x)
        return super().predict_step(*args)

    def fit(self, x=None, y=None, *args, **kwargs):
        """Trains the model; see `keras.Model.fit`.

        Before training, float array inputs (`x` and `validation_data`'s x)
        far outside [0, 1] draw a warning
        (`pepita_keras.validation.warn_if_far_from_unit_range`).
        To stop when training diverges, pass
        `callbacks=[keras.callbacks.TerminateOnNaN()]`.
        """
        validation.warn_if_far_from_unit_range(x, "x")
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, (tuple, list)) and validation_data:
            validation.warn_if_far_from_unit_range(validation_data[0], "validation_data x")
        return super().fit(x, y, *args, **kwargs)

    def stateful_train_step(self, data):
        """One training step that updates the variables in place.

        `train_step` on TensorFlow; on JAX, `jax_step` runs it inside a
        `keras.StatelessScope` to obtain Keras's stateless step.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, targets, sample_weight = self._validated_batch(x, y, sample_weight)
        predictions = self.learning_step(
            x, targets, sample_weight, self._masks(training=True)
        )
        return self._update_metrics(x, y, targets, predictions, sample_weight)

    def learning_step(self, x, targets, sample_weight=None, masks=None):
        """Computes this step's updates and applies them (inside `train_step`).

        The default applies `updates_and_predictions` once. A rule whose step
        is not one update (PEPITA's time-local variant applies two halves;
        feedback mirroring adapts F after the update) overrides this and calls
        `apply_updates` itself.

        Args:
            x, targets, sample_weight, masks: as for `updates_and_predictions`.

        Returns:
            The clean network output, for the loss and metrics.
        """
        updates, predictions = self.updates_and_predictions(
            x, targets, sample_weight, masks
        )
        self.apply_updates(updates)
        return predictions

    def apply_updates(self, updates):
        """Hands updates to the optimizer as gradients (`w ← w − lr·G`).

        Args:
            updates: tensors aligned with all block variables (kernel, bias
                per block), as `updates_and_predictions` returns them. Frozen
                layers are dropped; the distribution and loss scaling are
                applied here.
        """
        updates = self._select_trainable(updates)
        num_replicas, _ = backend_ops.replica_info()
        if num_replicas > 1:
            # Keras sums replica gradients; scale like Keras scales losses.
            updates = [u / num_replicas for u in updates]
        # LossScaleOptimizer divides by its scale: pre-multiply so the true
        # update reaches the variables (a no-op for other optimizers).
        updates = [self.optimizer.scale_loss(u) for u in updates]
        self.optimizer.apply(updates, self.trainable_variables)

    def stateful_test_step(self, data):
        """One evaluation step (updates only the metric variables)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, targets, sample_weight = self._validated_batch(x, y, sample_weight)
        predictions = self(x, training=False)
        return self._update_metrics(x, y, targets, predictions, sample_weight)

    def _update_metrics(self, x, y, targets, predictions, sample_weight):
        # The cross-entropy of the clean pass is monitored, never optimised.
        loss = keras.losses.categorical_crossentropy(targets, predictions)
        if sample_weight is not None:
            loss = loss * ops.cast(sample_weight, loss.dtype)
        batch = ops.shape(targets)[0]
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(ops.mean(loss), sample_weight=batch)
        # Metrics always see one-hot targets, so integer and one-hot labels
        # can be mixed freely between fit and evaluate.
        return self.compute_metrics(x, targets, predictions, sample_weight)

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Configures the model for training; see `keras.Model.compile`.

        `loss` must be left unset: the rule defines the updates, and the
        categorical cross-entropy of the clean pass is reported as `loss`.
        Metrics receive one-hot targets whatever the label format, so use
        "accuracy" / categorical metrics; `sparse_` names and
        `keras.metrics.Sparse*` objects are refused with the replacement.
        `jit_compile` defaults to Keras's `"auto"` (False on a CPU-only
        machine, where XLA was measured slower; see README).

        Under Keras-JAX, `steps_per_execution` above 1 runs that many steps
        as one jitted `jax.lax.scan` per dispatch (`jax_step.scanned_steps`),
        and its default is 128 on a GPU/TPU, 1 on a CPU
        (`jax_step.default_steps_per_execution`).
        """
        validation.check_compile_arguments(
            type(self).__name__, loss, metrics, kwargs.get("weighted_metrics")
        )
        kwargs = self._compile_defaults(kwargs)  # the backend's (RuleTrainer)
        super().compile(
            optimizer=optimizer, metrics=validation.categorical_metrics(metrics), **kwargs
        )

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        config.pop("loss", None)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        return {
            "name": self.name,
            "network": keras.saving.serialize_keras_object(self.network),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)

