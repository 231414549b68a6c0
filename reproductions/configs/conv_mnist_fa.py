"""Feedback Alignment (FA), Conv 32@5x5 → max-pool 2 → dense, MNIST (paper: 98.50 ± 0.06).

Command: pepita reproduce conv_mnist_fa --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce conv_mnist_fa --smoke --synthetic
Achieves: 98.57 ± 0.07 test accuracy (seeds 0, 1, 2: 98.49, 98.60, 98.63; 100 epochs, real MNIST, 43 min
at load 3.2, 49 min at load 3.4, 47 min at load 3.6; the command above, reproductions/results/README.md);
paper 98.50 ± 0.06.
Runtime: 16-46 s/epoch incl. test evaluation on the 2-core CPU at load 3-3.5 → about 45-50 min per seed.
The official code has no FA for the conv net (main_pytorch.py lists FA in its --learn_type help
but trains only BP and PEPITA).
Settings: the paper's, as conv_mnist_pepita (lr 0.1, batch 50, SGD momentum 0.9, 100 epochs, ×0.1 at
epochs 60 and 90, He-uniform, no biases, no dropout; the official conv script's own defaults and
what they gave are written out there).
"""

from common import paper_cell


def get_config():
    return paper_cell(
        "fa", "conv", "mnist",
        learning_rate=0.1,
        batch_size=50,
        dropout=0.0,
    )
