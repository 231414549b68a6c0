"""DRTP, Conv 32@5x5 → max-pool 2 → dense, CIFAR-100 (paper: 20.14 ± 0.68).

Command: pepita reproduce conv_cifar100_drtp --seeds 0,1,2,3,4 --data-dir /path/to/data
Smoke:   pepita reproduce conv_cifar100_drtp --smoke --synthetic
Runtime: estimated ~60 s/epoch on 2 CPU cores → ~2 h per seed (not measured).
Settings (paper / official code): lr 0.01, batch 50, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90.
Chosen here (sources silent): the paper gives no DRTP learning rate; lr 0.01 (as PEPITA) and feedback_scale 0.01. conv lr 0.01 is our choice (as FC); no dropout in the conv net.
"""

from pepita_keras.experiment import paper_cell


def get_config():
    return paper_cell("drtp", "conv", "cifar100")
