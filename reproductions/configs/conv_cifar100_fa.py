"""Feedback Alignment (FA), Conv 32@5x5 → max-pool 2 → dense, CIFAR-100 (paper: 27.15 ± 0.53).

Command: pepita reproduce conv_cifar100_fa --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce conv_cifar100_fa --smoke --synthetic
Runtime: not measured on CIFAR here (no CIFAR copy); MNIST conv ran 29-44 s/epoch on a shared 2-core CPU.
Settings: as conv_mnist_fa (where the settings, the official conv script's differences and the evidence are
written out) with lr 0.01 (PEPITA's CIFAR lr).
"""

from common import paper_cell


def get_config():
    return paper_cell(
        "fa", "conv", "cifar100",
        learning_rate=0.01,
        batch_size=50,
        dropout=0.0,
    )
