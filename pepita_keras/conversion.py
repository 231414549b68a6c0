"""`pepita_keras.convert`: any Keras model, any rule.

Like biotorch's `Converter`, one call turns a model into one trained by a
learning rule; unlike it, the result is a Keras model (`fit`, callbacks,
`.keras` saving, MLflow, `pepita tune`) and the rule family includes PEPITA.

- A network the paper's chain rules accept (`blocks.network_blocks`: Dense,
  Conv2D, pooling, Flatten, Dropout, activations, ending in softmax) gets the
  rule's chain class (`pepita_keras.PEPITA`, …): the same path as the
  reproductions, so the paper networks train bit-identically.
- Any other functional or Sequential network of `graph.SUPPORTED_LAYERS`
  (residual Adds, normalisation, attention, 1-D convolutions, …) gets the
  rule's graph class (`GRAPH_RULES`); the rules without one refuse it in one
  line.

Example:

```python
inputs = keras.Input((28, 28, 1))
h = keras.layers.Conv2D(16, 3, padding="same")(inputs)
h = keras.layers.BatchNormalization()(h)
h = keras.layers.ReLU()(h)
h = keras.layers.Add()([h, keras.layers.Conv2D(16, 3, padding="same")(h)])
h = keras.layers.Flatten()(keras.layers.MaxPooling2D()(h))
outputs = keras.layers.Softmax()(keras.layers.Dense(10)(h))
model = pepita_keras.convert(keras.Model(inputs, outputs), "fa", seed=0)
model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"])
```
"""

import importlib

from pepita_keras import registry

# Rule name → the class that trains it on a graph ("module:Class").
GRAPH_RULES = {
    "bp": "pepita_keras.feedback_paths:GraphBackprop",
    "fa": "pepita_keras.rules.graph_feedback_alignment:GraphFeedbackAlignment",
    "dfa": "pepita_keras.rules.graph_dfa:GraphDirectFeedbackAlignment",
    "drtp": "pepita_keras.rules.graph_drtp:GraphDRTP",
    "pepita": "pepita_keras.rules.graph_pepita:GraphPEPITA",
    "usf": "pepita_keras.rules.sign_symmetry:UniformSignFeedback",
    "frsf": "pepita_keras.rules.sign_symmetry:FixedRandomSignFeedback",
    "brsf": "pepita_keras.rules.sign_symmetry:BatchRandomSignFeedback",
    "kp": "pepita_keras.rules.kolen_pollack:KolenPollack",
}
# Why a rule has no graph form.
_NO_GRAPH_FORM = {
    "ff": "Forward-Forward trains each block on its own goodness with the label written "
          "into the input; it is defined for the chains of Dense layers of keras-io's setup "
          "(`pepita_keras.ForwardForward`), not for residual, normalised or attention graphs",
    "mempepita": "MEMPEPITA recomputes PEPITA's activations block by block along a chain; on "
                 "a graph use 'pepita' (the same updates)",
}


def _load(target):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def graph_rule_class(rule):
    """The class that trains `rule` on any functional network.

    Raises:
        ValueError: naming the rules that have a graph form, for one that has none.
    """
    info = registry.rule_info(rule)
    if info.name in GRAPH_RULES:
        return _load(GRAPH_RULES[info.name])
    reason = _NO_GRAPH_FORM.get(info.name, f"{info.label} has no graph form yet")
    raise ValueError(f"{reason}. Rules on any graph: {', '.join(sorted(GRAPH_RULES))}.")


def is_paper_chain(network):
    """Whether the paper's chain rules accept `network` (`blocks.network_blocks`)."""
    from pepita_keras import blocks

    try:
        blocks.network_blocks(network)
    except ValueError:
        return False
    return True


def convert(model, rule, **rule_kwargs):
    """Returns `model` trained by `rule`: a `LearningRuleModel` ready to compile and fit.

    Args:
        model: a built Keras model (functional or Sequential) with one input,
            one output, ending in a softmax.
        rule: a rule's short or class name (`pepita list` shows them: "bp",
            "fa", "dfa", "drtp", "pepita", "usf", "brsf", "frsf", "kp", "ff",
            "mempepita").
        **rule_kwargs: the rule's own arguments (`seed`, `feedback_scale`, …).

    Returns:
        The rule model (it shares `model`'s layers and weights).

    Raises:
        ValueError: naming the first unsupported layer and the supported
            list, or the rule that has no form for this kind of network.

    Example:

    ```python
    rule_model = pepita_keras.convert(network, "pepita", seed=0)
    rule_model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                       metrics=["accuracy"])
    rule_model.fit(x, y, batch_size=64, epochs=3)
    ```
    """
    import pepita_keras.rules  # noqa: F401  (registers every rule with Keras)

    info = registry.rule_info(rule)
    if is_paper_chain(model):
        # The registered class: the paper's chain rule (sign-symmetry and KP are graph rules).
        return info.load()(model, **rule_kwargs)
    return graph_rule_class(info.name)(model, **rule_kwargs)
