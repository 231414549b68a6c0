"""Direct Feedback Alignment on any functional network (`pepita_keras.convert(network, "dfa")`).

Nøkland, "Direct Feedback Alignment Provides Learning in Deep Neural
Networks", NeurIPS 2016 (https://arxiv.org/abs/1609.01596).

The output error `e = y − onehot(t)` goes straight to every hidden
parameterised layer's *unit* (the layer and the element-wise layers only it
feeds: `graph`), through a fixed random `D_l` of shape `(C, n_l)`:

    δ_l at the unit output = reshape(e D_l) ⊙ w_b          (w_b: sample weight)
    G_l = ∂u_l(sg(h_{l-1}); θ_l)/∂θ_l ᵀ δ_l / B              (u_l: the unit)

so the activation's derivative and the step's dropout mask enter, as in the
chain rule `δ_l = (e D_l) ⊙ σ'(a_l) ⊙ m_l`. Output layers (those reaching the
softmax through parameter-free layers only) get the true gradient of the
cross-entropy at their output, `e` for a Dense before the softmax. `D_l ~
U(±s·√(6/n_l))`, as the chain rule draws it.
"""

import math

import keras
from keras import ops

from pepita_keras.feedback import add_feedback_matrix, check_feedback_scale, feedback_seed
from pepita_keras.graph_model import GraphRuleModel, pairing, weighted_errors


@keras.saving.register_keras_serializable(package="pepita_keras")
class GraphDirectFeedbackAlignment(GraphRuleModel):
    """Direct Feedback Alignment on a functional network (see the module docstring).

    Args:
        network: a built functional or Sequential `keras.Model` of
            `graph.SUPPORTED_LAYERS` ending in a softmax.
        feedback_scale: `s` in `D_l ~ U(±s·√(6/n_l))` (1.0 default).
        seed: optional integer seeding `D_l` and the dropout masks.
        **kwargs: passed to `keras.Model`.

    Example:

    ```python
    model = pepita_keras.convert(resnet, "dfa", seed=0)
    ```
    """

    def __init__(self, network, feedback_scale=1.0, seed=None, **kwargs):
        super().__init__(network, seed=seed, **kwargs)
        self.feedback_scale = check_feedback_scale(feedback_scale)
        outputs = set(self.graph.output_layers)
        self.hidden_layers = [layer for layer in self.graph.parameterised
                              if layer.name not in outputs]
        self.hidden_shapes, self.feedback_matrices = [], []
        for index, layer in enumerate(self.hidden_layers):
            shape = tuple(self.graph.unit_layers[layer.name].output.shape[1:])
            size = math.prod(shape)
            self.hidden_shapes.append(shape)
            self.feedback_matrices.append(add_feedback_matrix(
                self, f"direct_feedback_{layer.name}", (self.num_classes, size), fan_in=size,
                scale=self.feedback_scale, seed=feedback_seed(seed, index)))

    def projected_signal(self, error, targets):
        """What `D_l` projects to the hidden units: DFA sends the error `e`."""
        del targets
        return error

    def graph_updates(self, x, targets, sample_weight=None, masks=None):
        dtype = self.rule_dtype
        targets = ops.cast(targets, dtype)

        def objective():
            statistics = []
            run = self.graph.run(x, True, masks, self.local_call(statistics))
            prediction = ops.cast(run.prediction, dtype)
            loss = keras.losses.categorical_crossentropy(targets, prediction)
            if sample_weight is not None:
                loss = loss * ops.cast(sample_weight, "float32")
            total = ops.mean(loss)  # the output layers' true gradient
            signal = ops.stop_gradient(
                weighted_errors(self.projected_signal(prediction - targets, targets),
                                sample_weight))
            for layer, feedback, shape in zip(self.hidden_layers, self.feedback_matrices,
                                              self.hidden_shapes):
                projected = ops.reshape(ops.matmul(signal, ops.cast(feedback, dtype)),
                                        (-1,) + shape)
                total = total + pairing(projected, run.units[layer.name])
            return total, (run.prediction, statistics)

        variables, gradients, (prediction, statistics) = self.surrogate_gradients(objective)
        return self.aligned_updates(gradients, variables), prediction, statistics

    def get_config(self):
        config = super().get_config()
        config.update(feedback_scale=self.feedback_scale)
        return config
