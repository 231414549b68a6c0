"""DRTP on any functional network (`pepita_keras.convert(network, "drtp")`).

Frenkel, Lefebvre & Bol, "Learning without feedback: Fixed random learning
signals allow for feedforward training of deep neural networks", Frontiers in
Neuroscience 15 (2021). As `graph_dfa`, with the one-hot *target* projected to
the hidden units in place of the error:

    δ_l at the unit output = reshape(onehot(t) D_l) ⊙ w_b

(the chain rule's sign convention, `pepita_keras.DRTP`); output layers get the
cross-entropy's gradient `e`.
"""

import keras

from pepita_keras.rules.graph_dfa import GraphDirectFeedbackAlignment


@keras.saving.register_keras_serializable(package="pepita_keras")
class GraphDRTP(GraphDirectFeedbackAlignment):
    """DRTP on a functional network (see the module docstring and `GraphDirectFeedbackAlignment`)."""

    def projected_signal(self, error, targets):
        del error
        return targets
