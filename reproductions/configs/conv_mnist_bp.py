"""Backprop (BP), Conv 32@5x5 → max-pool 2 → dense, MNIST (paper: 98.86 ± 0.04).

Command: pepita reproduce conv_mnist_bp --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce conv_mnist_bp --smoke --synthetic
Runtime: 29-37 s/epoch incl. test evaluation (conv_mnist_pepita, 2-core CPU shared with other jobs, load 6-8)
→ about 1 h per seed.
Settings: the paper's, as conv_mnist_pepita (lr 0.1, batch 50, SGD momentum 0.9, 100 epochs, ×0.1 at
epochs 60 and 90, He-uniform, no biases, no dropout; the official conv script's own defaults and
what they gave are written out there).
BP is the only baseline that script implements; it applies nn.CrossEntropyLoss to the network's softmax outputs (a
log-softmax of probabilities); this config uses the ordinary categorical cross-entropy.
"""

from pepita_keras.experiment import paper_cell


def get_config():
    return paper_cell(
        "bp", "conv", "mnist",
        learning_rate=0.1,
        batch_size=50,
        dropout=0.0,
    )
