"""PEPITA on the small residual net (conv stem + BatchNorm + one residual block + max pooling, 12,562 weights), MNIST (our own cell, no paper number).

Command: pepita reproduce resnet_mnist_pepita --data-dir /path/to/data   (seeds 0, 1, 2)
Smoke:   pepita reproduce resnet_mnist_pepita --smoke --synthetic
Network: pepita_keras.modern_networks.small_resnet; trained with pepita_keras.convert(network, "pepita").
Learning rate: 0.01, the issue's common setting; see reproductions/results/tuning.md for the search
of this cell's learning rate (`pepita tune resnet_mnist_pepita`).
"""

from common import modern_cell


def get_config():
    return modern_cell("pepita", "resnet", learning_rate=0.01,
                       # F scale 0.01: at the paper's 0.05 the modulated pass through the
                       # BatchNorm residual net diverges at lr 0.01 (0.05 trains at lr 0.003).
                       rule_kwargs=(("feedback_scale", 0.01),))
