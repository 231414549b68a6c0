"""Feedback alignment on the tiny vision transformer (7x7 patch embedding + LayerNorm + 2-head attention + MLP, residual, 15,274 weights), MNIST (our own cell, no paper number).

Command: pepita reproduce vit_mnist_fa --data-dir /path/to/data   (seeds 0, 1, 2)
Smoke:   pepita reproduce vit_mnist_fa --smoke --synthetic
Network: pepita_keras.modern_networks.tiny_vit; trained with pepita_keras.convert(network, "fa").
Learning rate: 0.01, the issue's common setting; see reproductions/results/tuning.md for the search
of this cell's learning rate (`pepita tune vit_mnist_fa`).
"""

from common import modern_cell


def get_config():
    return modern_cell("fa", "vit", learning_rate=0.01)
