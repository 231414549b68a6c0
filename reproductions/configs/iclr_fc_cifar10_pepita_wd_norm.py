"""ICLR-2024 variant row: ICLR PEPITA + weight decay 1e-4 + whole-batch activation normalisation, FC, CIFAR-10.

Command: pepita reproduce iclr_fc_cifar10_pepita_wd_norm --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce iclr_fc_cifar10_pepita_wd_norm --smoke --synthetic
Runtime: estimated ~1 h per seed on 2 CPU cores (not measured).
Settings: as fc_cifar10_pepita (lr 0.01, batch 64, momentum 0.9, 100 epochs, ×0.1 at 60/90,
dropout 0.1, F scale 0.05) with the ICLR code's flags (Srinivasan et al., ICLR 2024).
Chosen here: weight decay value; no paper number attached.
Learning rate untuned (no CIFAR copy here): the normalisation shrinks every update by ‖h‖_F (~85 on MNIST); the
MNIST row needed lr 10, 100× its ICML cell's (iclr_fc_mnist_pepita_wd_norm, with the searches); run
`pepita tune iclr_fc_cifar10_pepita_wd_norm` (or a copy of reproductions/tuning/pepita_fc_mnist_wd_norm.py)
before trusting this row at lr 0.01.
"""

from common import iclr_variant


def get_config():
    return iclr_variant("cifar10", "wd_norm", learning_rate=0.01, weight_decay=1e-4)
