"""DRTP, Conv 32@5x5 → max-pool 2 → dense, MNIST (paper: 97.32 ± 0.25).

Command: pepita reproduce conv_mnist_drtp --seeds 0,1,2,3,4 --data-dir /path/to/data
Smoke:   pepita reproduce conv_mnist_drtp --smoke --synthetic
Runtime: estimated ~30 s/epoch on 2 CPU cores → ~1 h per seed (not measured).
Settings (paper / official code): batch 50, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90.
Chosen here (sources silent): the paper gives no DRTP learning rate; lr 0.01 and feedback_scale 0.01 (lr 0.1 with unit-scale feedback diverged); no dropout in the conv net.
"""

from pepita_keras.experiment import paper_cell


def get_config():
    return paper_cell("drtp", "conv", "mnist")
