"""Backprop (BP), Conv 32@5x5 → max-pool 2 → dense, CIFAR-10 (paper: 64.99 ± 0.32).

Command: pepita reproduce conv_cifar10_bp --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce conv_cifar10_bp --smoke --synthetic
Runtime: not measured on CIFAR here (no CIFAR copy); MNIST conv ran 29-44 s/epoch on a shared 2-core CPU.
Settings: as conv_mnist_bp: the official conv script's own BP defaults (lr 0.01, ×0.1 at epochs
10, 30 and 60, PyTorch's default init), which gave the paper's MNIST number; untested on this
dataset (no copy here). The settings, the script's differences and the evidence are written out there.
"""

from common import paper_cell


def get_config():
    return paper_cell(
        "bp", "conv", "cifar10",
        learning_rate=0.01,
        lr_decay_epochs=(10, 30, 60),
        kernel_initializer="torch_default",
        batch_size=50,
        dropout=0.0,
    )
