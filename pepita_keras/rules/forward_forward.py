"""Forward-Forward: each layer learns to tell real data from negative data by its goodness.

Hinton, "The Forward-Forward Algorithm: Some Preliminary Investigations"
(2022), https://arxiv.org/abs/2212.13345; the setup here follows the keras-io
example "Using the Forward-Forward Algorithm for Image Classification"
(Mukherjee, 2023: 784-500-500 ReLU layers, MNIST, the label written into the
first pixels, threshold 1.5, one Adam(0.03) shared by the layers, 50 local
steps per layer per batch), which is Keras 2 code that current TensorFlow /
Keras no longer run (keras-io issues #1191, #1241).

Symbols, for one layer `l` with `U` units and a batch of `B` examples:

    x⁺ = embed(x, t),   x⁻ = embed(x, t')        (positive / negative data)
    embed(x, c): the first C pixels of x set to max(x)·onehot(c)
    t' = (t + k) mod C,  k ~ U{1, …, C−1}        (a wrong label, drawn per step)
    d = h_{l-1} / (‖h_{l-1}‖₂ + 1e-4)            (the layer sees directions only)
    h_l = m ⊙ relu(W_l d + b_l),  g = mean_j h_{l,j}² (goodness; m: the step's
          dropout mask when a Dropout follows the layer, shared by all passes; else 1)
    ℓ⁺ = softplus(θ − g⁺),   ℓ⁻ = softplus(g⁻ − θ),   L_l = mean over the 2B of ℓ
    ∂ℓ/∂z = s·σ(s·(g − θ))·2h⊙m/U,   s = −1 for positive, +1 for negative data
    G_W = dᵀ ∂ℓ/∂z / 2B,   G_b = mean ∂ℓ/∂z,   w ← optimizer(w, G)

Nothing crosses layers: layer `l` learns on the outputs of layer `l−1`
(after its own updates for this batch), never on a gradient from above.
Each batch trains the layers in order, each for `local_steps` updates
(keras-io: 50), through the model's one optimizer applied to that layer's
variables only: the keras-io example's one Adam shared by its layers.

Prediction: for every label c, `embed(x, c)` runs through the layers; the
label whose goodness summed over the layers is highest wins. The model's
output is the softmax of those summed goodnesses (B, C), so Keras accuracy
metrics apply; the reported `loss` is its cross-entropy, a monitor only.

Closed forms (tested): one step equals a NumPy implementation of the
equations above; the hidden updates of layer `l` depend only on layers
`≤ l`; a layer whose goodness is far above θ on positive and below on
negative data gets (almost) no update.
"""

import keras
from keras import ops

from pepita_keras import ops as backend_ops
from pepita_keras.core import LearningRuleModel, local_updates
from pepita_keras.registry import register_rule

# keras-io's normalisation guard: d = h / (‖h‖ + 1e-4).
NORM_EPSILON = 1e-4


def embed_labels(x, labels, num_classes):
    """`x` with its first `num_classes` values replaced by `max(x)·onehot(label)`, per example.

    Args:
        x: a batch of any shape (B, …); its flattened first values carry the label.
        labels: integer labels, shape (B,).
        num_classes: C.

    Returns:
        A tensor shaped like `x`.
    """
    flat = ops.reshape(x, (ops.shape(x)[0], -1))
    peak = ops.max(flat, axis=1, keepdims=True)
    onehot = ops.one_hot(ops.cast(labels, "int32"), num_classes, dtype=flat.dtype)
    flat = ops.concatenate([onehot * peak, flat[:, num_classes:]], axis=1)
    return ops.reshape(flat, ops.shape(x))


@register_rule("ff", label="FF", order=6, defaults={"threshold": 1.5, "local_steps": 1})
class ForwardForward(LearningRuleModel):
    """Trains a stack of ReLU Dense layers with Forward-Forward through `fit`.

    Args:
        network: a built Sequential-style `keras.Model` of `Dense` layers
            with ReLU activations (a `Flatten` first for images), without
            a classifier layer: e.g. `paper_networks.paper_fc(num_classes=None,
            hidden_units=(500, 500), use_bias=True, dropout=0)`.
        num_classes: C, the labels written into the first C input values
            (the input must have more than C values).
        threshold: θ, the goodness that separates positive from negative
            data (keras-io: 1.5, with goodness the mean of h²).
        local_steps: updates of each layer per batch before the next layer
            trains (keras-io: 50 on full-batch MNIST).
        seed: optional integer seeding the negative labels.
        **kwargs: passed to `keras.Model`.

    Example:

    ```python
    network = pepita_keras.paper_networks.paper_fc(num_classes=None, hidden_units=(500, 500),
                                                   use_bias=True, dropout=0, seed=0)
    model = pepita_keras.ForwardForward(network, num_classes=10, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.03), metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=60000, epochs=250)
    ```
    """

    # The network has no classifier layer: `pepita_keras.build` builds it
    # without one and passes the dataset's `num_classes`.
    classifier_layer = False

    def __init__(self, network, num_classes=10, threshold=1.5, local_steps=1, seed=None,
                 **kwargs):
        super().__init__(network, seed=seed, **kwargs)
        for block in self.blocks:
            layer = block.layer
            activation = getattr(getattr(layer, "activation", None), "__name__", None)
            others = [post for post in block.post if not isinstance(post, keras.layers.Dropout)]
            if not isinstance(layer, keras.layers.Dense) or activation != "relu" or others:
                raise ValueError(
                    f"ForwardForward trains Dense layers with activation='relu' (and at most "
                    f"a Dropout after them); layer {layer.name!r} of network {network.name!r} "
                    f"is a {type(layer).__name__} with activation {activation!r}"
                    + (f" followed by {others[0].name!r}" if others else "") + ".")
        inputs = 1
        for size in self.input_spec_shape:
            inputs *= int(size)
        if not isinstance(num_classes, int) or not 1 < num_classes < inputs:
            raise ValueError(f"num_classes must be an integer in [2, {inputs}) (the labels are "
                             f"written into the first values of each input). Received: "
                             f"num_classes={num_classes!r}.")
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0. Received: threshold={threshold!r}.")
        if not isinstance(local_steps, int) or local_steps < 1:
            raise ValueError(f"local_steps must be a positive integer. Received: "
                             f"local_steps={local_steps!r}.")
        self.num_classes = num_classes
        self.threshold = float(threshold)
        self.local_steps = local_steps

    # ------------------------------------------------------------------
    # The pieces of the rule.
    # ------------------------------------------------------------------
    def negative_labels(self, labels):
        """A wrong label per example, `(t + k) mod C` with `k ~ U{1, …, C−1}` (stateless)."""
        draw = backend_ops.stateless_uniform(ops.shape(labels), self._step_seed(), "float32")
        shift = ops.cast(ops.floor(draw * (self.num_classes - 1)), "int32") + 1
        return (ops.cast(labels, "int32") + shift) % self.num_classes

    def layer_pass(self, index, h, masks=None):
        """`(d, h_l, m)`: block `index`'s normalised input, its output and its dropout mask.

        `h_l = m ⊙ relu(W d + b)`; `m` is None without dropout (inference, or
        no Dropout layer), else the step's mask, shared by every pass of the step.
        """
        block = self.blocks[index]
        for layer in block.pre:
            h = layer(h)
        direction = h / (ops.norm(h, axis=-1, keepdims=True) + NORM_EPSILON)
        out, mask = block.layer(direction), None
        if masks is not None:
            # Numbered in call order, as `LearningRuleModel.forward_block` numbers them.
            position = sum(isinstance(layer, keras.layers.Dropout)
                           for earlier in self.blocks[:index]
                           for layer in earlier.pre + earlier.post)
            for layer in block.post:
                drop = masks(layer, position, ops.ones_like(out))
                mask = drop if mask is None else mask * drop
                position += 1
            if mask is not None:
                out = out * mask
        return direction, out, mask

    def goodness(self, h):
        """Mean of the squared activations per example."""
        return ops.mean(ops.square(h), axis=-1)

    def layer_updates(self, index, h_pos, h_neg, sample_weight=None, masks=None):
        """Block `index`'s `(G_W, G_b)` for inputs `h_pos`, `h_neg` (module doc's equations).

        With a dropout mask `m`, `h = m ⊙ relu(z)` and `∂g/∂z = 2·h·m/U`.
        """
        d_pos, out_pos, mask = self.layer_pass(index, h_pos, masks)
        d_neg, out_neg, _ = self.layer_pass(index, h_neg, masks)
        units = ops.cast(ops.shape(out_pos)[-1], out_pos.dtype)
        slope_pos = -ops.sigmoid(self.threshold - self.goodness(out_pos))
        slope_neg = ops.sigmoid(self.goodness(out_neg) - self.threshold)
        grad_pos, grad_neg = 2 * out_pos / units, 2 * out_neg / units
        if mask is not None:
            grad_pos, grad_neg = grad_pos * mask, grad_neg * mask
        delta = ops.concatenate([slope_pos[:, None] * grad_pos,
                                 slope_neg[:, None] * grad_neg], axis=0)
        directions = ops.concatenate([d_pos, d_neg], axis=0)
        if sample_weight is not None:
            sample_weight = ops.concatenate([sample_weight, sample_weight], axis=0)
        return local_updates([self.blocks[index]], [directions], [delta], sample_weight)

    def positive_and_negative(self, x, targets):
        labels = ops.argmax(targets, axis=-1)
        return (embed_labels(x, labels, self.num_classes),
                embed_labels(x, self.negative_labels(labels), self.num_classes))

    # ------------------------------------------------------------------
    # LearningRuleModel.
    # ------------------------------------------------------------------
    def call(self, inputs, training=False):
        scores = []
        for label in range(self.num_classes):
            labels = ops.full((ops.shape(inputs)[0],), label, "int32")
            h = embed_labels(inputs, labels, self.num_classes)
            total = 0.0
            for index in range(len(self.blocks)):
                h = self.layer_pass(index, h)[1]
                total = total + self.goodness(h)
            scores.append(total)
        return ops.softmax(ops.stack(scores, axis=-1), axis=-1)

    def updates_and_predictions(self, x, targets, sample_weight=None, masks=None):
        """Every layer's first local update at the current weights (no update applied)."""
        h_pos, h_neg = self.positive_and_negative(x, targets)
        updates = []
        for index in range(len(self.blocks)):
            updates += self.layer_updates(index, h_pos, h_neg, sample_weight, masks)
            h_pos = self.layer_pass(index, h_pos, masks)[1]
            h_neg = self.layer_pass(index, h_neg, masks)[1]
        return updates, self(x)

    def learning_step(self, x, targets, sample_weight=None, masks=None):
        """Trains the layers in order, `local_steps` updates each (module doc)."""
        h_pos, h_neg = self.positive_and_negative(x, targets)
        num_replicas, _ = backend_ops.replica_info()
        if not self.optimizer.built:
            # Built for every layer at once: each local step then updates one layer's share.
            self.optimizer.build(self.trainable_variables)
        for index, block in enumerate(self.blocks):
            variables = list(block.variables)
            for _ in range(self.local_steps):
                if not block.layer.trainable:
                    break
                updates = self.layer_updates(index, h_pos, h_neg, sample_weight, masks)
                if num_replicas > 1:
                    updates = [u / num_replicas for u in updates]
                updates = [self.optimizer.scale_loss(u) for u in updates]
                self.optimizer.apply(updates, variables)
            h_pos = ops.stop_gradient(self.layer_pass(index, h_pos, masks)[1])
            h_neg = ops.stop_gradient(self.layer_pass(index, h_neg, masks)[1])
        return self(x)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, threshold=self.threshold,
                      local_steps=self.local_steps)
        return config
