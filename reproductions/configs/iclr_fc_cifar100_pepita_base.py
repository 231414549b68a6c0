"""ICLR-2024 variant row: the ICLR code's PEPITA (x − F e, clean last-layer error), FC, CIFAR-100.

Command: pepita reproduce iclr_fc_cifar100_pepita_base --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce iclr_fc_cifar100_pepita_base --smoke --synthetic
Runtime: estimated ~1 h per seed on 2 CPU cores (not measured).
Settings: as fc_cifar100_pepita (lr 0.01, batch 64, momentum 0.9, 100 epochs, ×0.1 at 60/90,
dropout 0.1, F scale 0.05) with the ICLR code's flags (Srinivasan et al., ICLR 2024).
Chosen here: weight decay value and mirroring schedule; no paper number attached.
"""

from common import iclr_variant


def get_config():
    return iclr_variant("cifar100", "base", learning_rate=0.01)
