"""PEPITA, FC 3072-1024-10, CIFAR-10 (paper: 52.57 ± 0.36).

Command: pepita reproduce fc_cifar10_pepita --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce fc_cifar10_pepita --smoke --synthetic
Runtime: estimated ~40 s/epoch on 2 CPU cores (3072 inputs) → ~1 h per seed (not measured).
Settings (paper / official code): lr 0.01, batch 64, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90; dropout 0.1 on the hidden layer; F scale 0.05.
"""

from common import paper_cell


def get_config():
    return paper_cell("pepita", "fc", "cifar10", learning_rate=0.01)
