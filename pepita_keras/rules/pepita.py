"""PEPITA: Present the Error to Perturb the Input To modulate Activity.

Dellaferrera & Kreiman, "Error-driven Input Modulation: Solving the Credit
Assignment Problem without a Backward Pass", ICML 2022
(https://proceedings.mlr.press/v162/dellaferrera22a.html; official code
https://github.com/GiorgiaD/PEPITA).

Per batch of size B, with `h_0 = x` and softmax output:

1. clean pass      h_l = σ_l(W_l h_{l-1}),     e = y − onehot(t)
2. modulation      x_mod = x + F e             (F: (prod(input_shape), C))
3. modulated pass  h_l^mod = σ_l(W_l h_{l-1}^mod),  e_mod = y_mod − onehot(t)
4. updates (Keras (in, out) layout; what the optimizer gets as "gradient")
       hidden:  G_l = (h_{l-1}^mod)^T (h_l − h_l^mod) / B
       last:    G_L = (h_{L-1}^mod)^T e_* / B
   with e_* = e_mod (`last_layer_error="modulated"`, the official tutorial
   code) or e (`"clean"`, Algorithm 1 of the
   paper and the ICLR-2024 code). Biases get the batch mean of the same
   difference. With `keras.optimizers.SGD(lr, momentum=0.9)` this is exactly
   the official `v ← 0.9 v + η ΔW / B, w ← w + v` (ΔW = −B·G).

Dropout uses one mask per step shared by both passes, and the masked
activations enter the updates. No gradient tape is involved anywhere.

Conv2D kernels, `conv_update` (p runs over the P = H'·W' output positions
of one example, `patch_p(h)` is the kh×kw×in input window under p):

- `"local"` (default): the dense rule's local analogue,
       G_l = Σ_b Σ_p patch_p(h_{l-1,b}^mod) ⊗ (h_l − h_l^mod)_{b,p} / B.
- `"official"`: what the official conv script computes
  (`compute_delta_w_conv` in models.py, applied in main_pytorch.py as
  `v ← 0.9 v + η ΔW/B, w ← w + v`):
       ΔW_l = (1/(B·P)) Σ_b Σ_p (h_l − h_l^mod)_{b,p} ⊗ patch_p(h_{l-1,b}^mod)
  — the mean over batch and positions, with the sign of `h − h_mod` (the
  script's dense layers use `−(h − h_mod)`), divided by B once more when
  applied. As what the optimizer subtracts:
       G_l = −ΔW_l / B = −G_l^local / (B·P),
  the opposite sign and 1/(B·P) of the local rule: 1/28,800 on MNIST
  (B = 50, P = 24·24), so the conv layer barely moves and the dense layer
  does the learning. The factor −1/(B·P) multiplies whatever the conv
  layer's update is (both halves under `time_local`); only with
  `update_form="difference"` is it the official script's. A conv bias (the
  official convs have none) is a kernel entry on a constant input 1 and gets
  the same factor: −Σ_{b,p} (h − h_mod)_{b,p} / (B²·P). Sample weights
  multiply each example's `h − h_mod`, as in every other update; B is the
  batch size (the global batch under `tf.distribute`, where replica updates
  are averaged). The official script trains the dense layer after the conv
  with the *clean* error and the pooled modulated activations,
  `ΔW = −e^T pool(h^mod)`: that is `last_layer_error="clean"`.

Variants (constructor flags; the defaults are the rule above):

- weight decay: through the optimizer, e.g.
  `keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=1e-4)` (Keras's
  decoupled decay `w ← w − lr·wd·w`, applied on every step).
- `modulation_sign=-1`: `x_mod = x − F e` (the ICLR-2024 code of Srinivasan
  et al., "Forward Learning with Top-Down Feedback"); +1 (default) is the
  paper's `x + F e`. `-1` equals `+1` with F negated.
- `normalize_activations=True`: every hidden block output (after its
  activation and dropout) is divided by the norm of the *whole batch
  tensor*, `h_l ← h_l / ‖h_l‖_F` over (batch, units), in every pass and at
  inference — exactly the ICLR code's `Normalization` layer
  (`X / torch.linalg.norm(X)`), so outputs depend on the batch they are in
  (under `tf.distribute`, on each replica's share of it).
  The updates then use the normalised activations.
- `update_form="hebbian"`: the ICLR code's "mixed" form, a Hebbian term from
  the clean pass minus an anti-Hebbian term from the modulated pass,
       hidden:  G_l = (h_{l-1}^T h_l − (h_{l-1}^mod)^T h_l^mod) / B
       last:    G_L = (h_{L-1}^T y − (h_{L-1}^mod)^T onehot(t)) / B
  (pre-synaptic `h_{l-1}` = the block's layer input, `h_0 = x`,
  `h_0^mod = x_mod`; post-synaptic `h_l` = its output; the last layer's
  modulated post-synaptic activity is clamped to the target). This is for
  `last_layer_error="clean"`; with `"modulated"` the last layer keeps
  `(h_{L-1}^mod)^T e_mod / B`, whose terms are both from the modulated pass.
  Biases get `mean(h_l) − mean(h_l^mod)` (last: `mean(y) − mean(onehot)`).
- `time_local=True` (needs `update_form="hebbian"`): the two terms are
  applied as two optimizer steps, the Hebbian half right after the clean
  pass and before the modulated pass (which therefore runs with the updated
  weights, with the error of the clean pass), the anti-Hebbian half after
  it (ICLR code's "mixed_tl"). Each half is one `optimizer.apply`, so
  momentum, weight decay, `optimizer.iterations` and learning-rate schedules
  see two steps per batch. `compute_updates` returns the sum of both halves
  at the current weights.
- `feedback_mirroring={...}` (`pepita_keras.feedback.FeedbackMirroring`):
  every `period` steps, after the update, noise `ξ ~ N(0, σ²)` is fed to the
  network (no dropout) and, with `r` its output,
       F ← F − s·η ξ^T r / N,   then F ← F · std(F_0) / std(F)
  (`s` = `modulation_sign`). For a network linear up to its softmax and
  small logits, `E[ξ^T r]/N ≈ (σ²/C) W_1⋯W_L (I − 11^T/C)` (tested):
  `s·F` is pulled towards `−W_1⋯W_L`, the anti-aligned feedback under which
  `h − h_mod` approximates the backpropagated signal (the ICLR code mirrors
  its per-layer factors of F towards `+W` and modulates with `x − F e`,
  i.e. the same effective feedback). F stays non-trainable (assigned); its
  initial standard deviation is saved with the model.
"""

import math

import keras
from keras import ops

from pepita_keras import ops as backend_ops
from pepita_keras.core import ForwardPass, LearningRuleModel, local_updates
from pepita_keras.feedback import (
    AlignmentPair,
    FeedbackMirroring,
    MirroringState,
    add_feedback_matrix,
    forward_kernel_product,
)
from pepita_keras.blocks import output_activation_name
from pepita_keras.registry import register_rule

LAST_LAYER_ERRORS = ("modulated", "clean")
CONV_UPDATES = ("local", "official")
UPDATE_FORMS = ("difference", "hebbian")
CLEAN, MODULATED = "clean", "modulated"


@register_rule("pepita", label="PEPITA", order=4, defaults={"feedback_scale": 0.05})
class PEPITA(LearningRuleModel):
    """Trains a feed-forward network with PEPITA through `model.fit`.

    Args:
        network: a built Sequential-style `keras.Model` ending in softmax
            (Dense, Conv2D, MaxPooling2D, AveragePooling2D, Flatten,
            Dropout, Activation/ReLU).
        feedback_scale: `s` in `F ~ U(−s·sqrt(6/d), s·sqrt(6/d))`,
            `d = prod(input_shape)`. Defaults to 0.05 (paper).
        last_layer_error: `"modulated"` (default, official code) or
            `"clean"` (paper's Algorithm 1): which error trains the last layer.
        modulation_sign: +1 (default, paper: `x + F e`) or −1 (ICLR code).
        normalize_activations: divide each hidden activation by the norm of
            the whole batch tensor (ICLR code). Defaults to False.
        update_form: `"difference"` (default) or `"hebbian"` (see above).
        time_local: apply the update in two halves, one after each pass
            (needs `update_form="hebbian"`). Defaults to False.
        feedback_mirroring: None (default), or a dict / `FeedbackMirroring`
            with `learning_rate`, `noise_std`, `batch_size`, `period`.
        seed: optional integer seeding F, the dropout masks and the
            mirroring noise.
        conv_update: `"local"` (default, the dense rule's conv analogue) or
            `"official"` (the official conv script's update: opposite sign,
            1/(B·P) of the size; see the module docstring). Dense layers
            are unaffected.
        **kwargs: passed to `keras.Model`.

    Example:

    ```python
    network = pepita_keras.paper_networks.paper_fc(input_shape=(28, 28, 1), num_classes=10)
    model = pepita_keras.PEPITA(network, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2)
    ```
    """

    def __init__(
        self,
        network,
        feedback_scale=0.05,
        last_layer_error="modulated",
        modulation_sign=1,
        normalize_activations=False,
        update_form="difference",
        time_local=False,
        feedback_mirroring=None,
        seed=None,
        conv_update="local",
        **kwargs,
    ):
        super().__init__(network, seed=seed, **kwargs)
        _check_choice("last_layer_error", last_layer_error, LAST_LAYER_ERRORS)
        _check_choice("update_form", update_form, UPDATE_FORMS)
        _check_choice("conv_update", conv_update, CONV_UPDATES)
        _check_choice("modulation_sign", modulation_sign, (1, -1))
        _check_choice("normalize_activations", normalize_activations, (False, True))
        _check_choice("time_local", time_local, (False, True))
        if time_local and update_form != "hebbian":
            raise ValueError(
                "time_local=True applies a clean-pass half before the "
                "modulated pass; the difference form has no such half "
                "(h_{l-1}^mod enters every term). Use update_form='hebbian'. "
                f"Received: update_form={update_form!r}."
            )
        activation = output_activation_name(self.blocks[-1])
        if activation != "softmax":
            raise ValueError(
                "PEPITA's error e = y − onehot(t) needs a softmax output; "
                f"network {network.name!r} ends with activation "
                f"{activation!r}. Use activation='softmax' on the last layer."
            )
        self.feedback_scale = feedback_scale
        self.last_layer_error = last_layer_error
        self.modulation_sign = int(modulation_sign)
        self.normalize_activations = bool(normalize_activations)
        self.update_form = update_form
        self.time_local = bool(time_local)
        self.conv_update = conv_update
        self.feedback_mirroring = FeedbackMirroring.parse(feedback_mirroring)
        fan_in = math.prod(self.input_spec_shape)
        self.feedback_matrix = add_feedback_matrix(
            self, "feedback_matrix", (fan_in, self.num_classes), fan_in, feedback_scale, seed
        )
        self.mirroring = None
        if self.feedback_mirroring is not None:
            self.mirroring = MirroringState(
                self, self.feedback_matrix, self.feedback_mirroring
            )

    def call(self, inputs, training=False):
        if self.normalize_activations:
            # The normalisation is part of the network function.
            return self.forward(inputs).prediction
        return super().call(inputs, training=training)

    def forward_block(self, index, h, masks=None):
        layer_input, h = super().forward_block(index, h, masks)
        return layer_input, self._normalized(index, h)

    def _normalized(self, index, h):
        """Block `index`'s output `h`, divided by its batch norm if asked.

        Only hidden blocks under `normalize_activations` (ICLR code:
        `X / torch.linalg.norm(X)`, the whole batch tensor).
        """
        if not self.normalize_activations or index == len(self.blocks) - 1:
            return h
        # At least float32: a float16 sum of B·units squares overflows.
        dtype = keras.backend.result_type(h.dtype, "float32")
        wide = ops.cast(h, dtype)
        norm = ops.sqrt(ops.sum(ops.square(wide)))
        return ops.cast(ops.divide_no_nan(wide, norm), h.dtype)

    def modulate(self, x, error):
        """`x + s·F e` (`s` = `modulation_sign`), reshaped to x's shape."""
        projected = ops.matmul(error, ops.transpose(self.feedback_matrix))
        if self.modulation_sign < 0:
            projected = -projected
        return x + ops.cast(ops.reshape(projected, ops.shape(x)), x.dtype)

    def update_terms(self, index, clean, modulated, targets):
        """The `(pass, layer_input, delta)` terms of block `index`'s update.

        Block `index`'s update is the sum of `local_updates` over its terms
        (`G = layer_input^T delta / B`); each term is computable right after
        `pass` (CLEAN or MODULATED).

        Args:
            index: block index.
            clean: `(h_{l-1}, h_l)` of the block in the clean pass.
            modulated: `(h_{l-1}^mod, h_l^mod)` in the modulated pass.
            targets: one-hot targets in F's dtype.
        """
        (h_in, h), (h_in_mod, h_mod) = clean, modulated
        if index == len(self.blocks) - 1:
            dtype = targets.dtype
            if self.last_layer_error == "modulated":
                return [(MODULATED, h_in_mod, ops.cast(h_mod, dtype) - targets)]
            if self.update_form == "difference":
                return [(MODULATED, h_in_mod, ops.cast(h, dtype) - targets)]
            return [(CLEAN, h_in, ops.cast(h, dtype)), (MODULATED, h_in_mod, -targets)]
        if self.update_form == "difference":
            return [(MODULATED, h_in_mod, h - h_mod)]
        return [(CLEAN, h_in, h), (MODULATED, h_in_mod, -h_mod)]

    def block_update(
        self, index, clean, modulated, targets, sample_weight=None, passes=None
    ):
        """Block `index`'s updates (kernel, bias) from its terms in `passes`."""
        block = self.blocks[index]
        total = None
        for pass_name, layer_input, delta in self.update_terms(
            index, clean, modulated, targets
        ):
            if passes is not None and pass_name not in passes:
                continue
            update = local_updates([block], [layer_input], [delta], sample_weight)
            total = update if total is None else [a + b for a, b in zip(total, update)]
        if total is None:
            total = [ops.zeros(v.shape, v.dtype) for v in block.variables]
        elif self.conv_update == "official" and isinstance(
            block.layer, keras.layers.Conv2D
        ):
            total = _official_conv_scaling(total, clean[1])
        return total

    def _updates(self, clean, modulated, targets, sample_weight, passes=None):
        updates = []
        for index in range(len(self.blocks)):
            updates += self.block_update(
                index,
                (clean.inputs[index], clean.outputs[index]),
                (modulated.inputs[index], modulated.outputs[index]),
                targets,
                sample_weight,
                passes,
            )
        return updates

    def updates_and_predictions(self, x, targets, sample_weight=None, masks=None):
        targets = ops.cast(targets, self.feedback_matrix.dtype)
        if self.first_layer_shortcut_applies(x):
            clean, modulated = self._passes_by_first_layer_linearity(x, targets, masks)
        else:
            clean = self.forward(x, masks)
            error = ops.cast(clean.prediction, targets.dtype) - targets
            modulated = self.forward(self.modulate(x, error), masks)
        updates = self._updates(clean, modulated, targets, sample_weight)
        return updates, clean.prediction

    def first_layer_shortcut_applies(self, x):
        """Whether the modulated pass can reuse the clean first-layer product.

        The first layer is linear in the input: `x_mod W = x W + s·e (Fᵀ W)`.
        When its input is just the flattened image (a Dense layer after at
        most Flatten: no input dropout, pooling or conv), the modulated pass
        gets its pre-activation as the clean one plus `s·e (Fᵀ W)` — a
        (C × d)·(d × H) product per step instead of (B × d)·(d × H), the
        same maths, one of PEPITA's three large matmuls saved when B > C.
        Skipped under mixed precision (float16 sums would differ more than
        rounding) and for LoRA / quantized layers.
        """
        block = self.blocks[0]
        layer = block.layer
        batch = x.shape[0]
        return (
            isinstance(layer, keras.layers.Dense)
            and all(isinstance(pre, keras.layers.Flatten) for pre in block.pre)
            and not getattr(layer, "lora_enabled", False)
            and getattr(layer, "quantization_mode", None) is None
            and layer.compute_dtype == layer.variable_dtype
            # The (C × d)(d × H) product only pays off when B > C.
            and (self.num_classes < batch if batch is not None else self.num_classes <= 16)
        )

    def _passes_by_first_layer_linearity(self, x, targets, masks):
        """The clean and modulated `ForwardPass`es, as two `forward` calls give.

        The modulated first pre-activation is the clean one plus the
        modulation's shift `s·e (Fᵀ W_1)` (`first_layer_shortcut_applies`
        says when this holds); the layer's `activation(h W + b)` is spelled
        out so that the clean pre-activation can be kept.
        """
        block = self.blocks[0]
        layer = block.layer
        h = x
        for pre in block.pre:  # Flatten only (first_layer_shortcut_applies)
            h = pre(h)
        preactivation = ops.matmul(h, layer.kernel)
        if layer.bias is not None:
            preactivation = ops.add(preactivation, layer.bias)
        clean = self._forward_from_first_preactivation(h, preactivation, masks)
        error = ops.cast(clean.prediction, targets.dtype) - targets
        h_mod = self.modulate(x, error)
        for pre in block.pre:
            h_mod = pre(h_mod)
        modulated = self._forward_from_first_preactivation(
            h_mod, preactivation + self._modulation_shift(error), masks
        )
        return clean, modulated

    def _modulation_shift(self, error):
        """`s·e (Fᵀ W_1)`: what modulation adds to the first pre-activation."""
        kernel = self.blocks[0].layer.kernel
        feedback = ops.cast(self.feedback_matrix, kernel.dtype)
        through = ops.matmul(ops.transpose(feedback), kernel)
        shift = ops.matmul(ops.cast(error, kernel.dtype), through)
        return -shift if self.modulation_sign < 0 else shift

    def _forward_from_first_preactivation(self, layer_input, preactivation, masks):
        """`forward`, given block 0's layer input and Dense pre-activation."""
        block = self.blocks[0]
        activation = block.layer.activation
        h = activation(preactivation) if activation is not None else preactivation
        position = 0  # dropout layers are numbered from the first block
        for post in block.post:
            h, position = self._apply_parameter_free(post, h, masks, position)
        inputs, outputs = [layer_input], [self._normalized(0, h)]
        for index in range(1, len(self.blocks)):
            layer_input, h = self.forward_block(index, outputs[-1], masks)
            inputs.append(layer_input)
            outputs.append(h)
        return ForwardPass(inputs=inputs, outputs=outputs)

    def learning_step(self, x, targets, sample_weight=None, masks=None):
        if self.time_local:
            dtype = self.feedback_matrix.dtype
            targets = ops.cast(targets, dtype)
            clean = self.forward(x, masks)
            error = ops.cast(clean.prediction, dtype) - targets
            # Only clean-pass terms: `clean` stands in for the unused pass.
            self.apply_updates(
                self._updates(clean, clean, targets, sample_weight, (CLEAN,))
            )
            modulated = self.forward(self.modulate(x, error), masks)
            self.apply_updates(
                self._updates(clean, modulated, targets, sample_weight, (MODULATED,))
            )
            predictions = clean.prediction
        else:
            predictions = super().learning_step(x, targets, sample_weight, masks)
        if self.mirroring is not None:
            self.mirroring.after_training_step(self.mirror_feedback)
        return predictions

    def mirror_feedback(self, noise=None):
        """One weight-mirroring update of F (see the module docstring).

        Args:
            noise: optional `ξ` of shape (N, *input_shape); by default
                `batch_size` samples of N(0, noise_std²) are drawn.

        Returns:
            The new F.
        """
        if self.mirroring is None:
            raise ValueError(
                "mirror_feedback() needs feedback_mirroring settings; build "
                "the model with e.g. feedback_mirroring={'learning_rate': 0.1}."
            )
        return self.mirroring.mirror(
            lambda xi: self.forward(ops.cast(xi, self.variable_dtype)).prediction,
            -self.modulation_sign,
            self.dropout_seed_state[0],
            self.input_spec_shape,
            noise,
        )

    def feedback_alignment_pairs(self):
        """`[AlignmentPair("F", F, W_1⋯W_L)]` for dense chains, else `[]`."""
        product = forward_kernel_product(self.blocks)
        if product is None:
            return []
        return [AlignmentPair("F", self.feedback_matrix, product)]

    def get_config(self):
        config = super().get_config()
        config.update(
            feedback_scale=self.feedback_scale,
            last_layer_error=self.last_layer_error,
            modulation_sign=self.modulation_sign,
            normalize_activations=self.normalize_activations,
            update_form=self.update_form,
            time_local=self.time_local,
            conv_update=self.conv_update,
            feedback_mirroring=None
            if self.feedback_mirroring is None
            else self.feedback_mirroring.get_config(),
        )
        return config


def _official_conv_scaling(updates, block_output):
    """`−1/(B·P)` times a conv block's local updates (`conv_update="official"`).

    The official script averages over the P output positions and divides by
    the batch size a second time; B is the global batch, because
    `apply_updates` averages the replicas' updates (each already divided by
    its own share of the batch) under `tf.distribute`.
    """
    positions = math.prod(block_output.shape[1:-1])
    num_replicas, _ = backend_ops.replica_info()
    # max(B, 1): an empty replica shard has a zero update, not NaN.
    local_batch = ops.maximum(ops.shape(block_output)[0], 1)
    scaled = []
    for update in updates:
        batch = ops.cast(local_batch * num_replicas, update.dtype)
        scaled.append(-update / (batch * positions))
    return scaled


def _check_choice(name, value, choices):
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        raise ValueError(
            f"{name} must be one of {choices}. Received: {name}={value!r}."
        )
