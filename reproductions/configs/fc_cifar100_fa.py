"""Feedback Alignment (FA), FC 3072-1024-100, CIFAR-100 (paper: 24.61 ± 0.28).

Command: pepita reproduce fc_cifar100_fa --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce fc_cifar100_fa --smoke --synthetic
Runtime: estimated ~40 s/epoch on 2 CPU cores → ~1 h per seed (not measured).
Settings (paper / official code): lr 0.01, batch 64, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90; dropout 0.1 on the hidden layer.
Chosen here (sources silent): the paper gives no Feedback Alignment learning rate; we use PEPITA's (0.01).
"""

from common import paper_cell


def get_config():
    return paper_cell("fa", "fc", "cifar100", learning_rate=0.01)
