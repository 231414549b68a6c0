"""Learning rules, one module each; importing this package registers all of them with Keras."""

from pepita_keras.rules.backprop import Backprop
from pepita_keras.rules.dfa import DirectFeedbackAlignment
from pepita_keras.rules.drtp import DRTP
from pepita_keras.rules.feedback_alignment import FeedbackAlignment
from pepita_keras.rules.forward_forward import ForwardForward
from pepita_keras.rules.mempepita import MEMPEPITA
from pepita_keras.rules.pepita import PEPITA

__all__ = ["Backprop", "DRTP", "DirectFeedbackAlignment", "FeedbackAlignment", "ForwardForward",
           "MEMPEPITA", "PEPITA"]
