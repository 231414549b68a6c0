"""Feedback alignment on the small residual net (conv stem + BatchNorm + one residual block + max pooling, 12,562 weights), MNIST (our own cell, no paper number).

Command: pepita reproduce resnet_mnist_fa --data-dir /path/to/data   (seeds 0, 1, 2)
Smoke:   pepita reproduce resnet_mnist_fa --smoke --synthetic
Network: pepita_keras.modern_networks.small_resnet; trained with pepita_keras.convert(network, "fa").
Learning rate: 0.01, the issue's common setting; see reproductions/results/tuning.md for the search
of this cell's learning rate (`pepita tune resnet_mnist_fa`).
"""

from common import modern_cell


def get_config():
    return modern_cell("fa", "resnet", learning_rate=0.01)
