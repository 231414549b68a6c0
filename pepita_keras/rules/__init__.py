"""Learning rules, one module each; importing this package registers all of them with Keras.

The paper's chain rules (`backprop`, `feedback_alignment`, `dfa`, `drtp`, `pepita`,
`mempepita`, `forward_forward`), their forms on any functional network (`graph_*`),
and the rules defined on graphs only (`sign_symmetry`, `kolen_pollack`).
"""

from pepita_keras.feedback_paths import GraphBackprop
from pepita_keras.rules.backprop import Backprop
from pepita_keras.rules.dfa import DirectFeedbackAlignment
from pepita_keras.rules.drtp import DRTP
from pepita_keras.rules.feedback_alignment import FeedbackAlignment
from pepita_keras.rules.forward_forward import ForwardForward
from pepita_keras.rules.graph_dfa import GraphDirectFeedbackAlignment
from pepita_keras.rules.graph_drtp import GraphDRTP
from pepita_keras.rules.graph_feedback_alignment import GraphFeedbackAlignment
from pepita_keras.rules.graph_pepita import GraphPEPITA
from pepita_keras.rules.kolen_pollack import KolenPollack
from pepita_keras.rules.mempepita import MEMPEPITA
from pepita_keras.rules.pepita import PEPITA
from pepita_keras.rules.sign_symmetry import (BatchRandomSignFeedback, FixedRandomSignFeedback,
                                              UniformSignFeedback)

__all__ = ["Backprop", "BatchRandomSignFeedback", "DRTP", "DirectFeedbackAlignment",
           "FeedbackAlignment", "FixedRandomSignFeedback", "ForwardForward", "GraphBackprop",
           "GraphDRTP", "GraphDirectFeedbackAlignment", "GraphFeedbackAlignment", "GraphPEPITA",
           "KolenPollack", "MEMPEPITA", "PEPITA", "UniformSignFeedback"]
