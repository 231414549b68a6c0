"""Feedback Alignment (FA), Conv 32@5x5 → max-pool 2 → dense, MNIST (paper: 98.50 ± 0.06).

Command: pepita reproduce conv_mnist_fa --seeds 0,1,2,3,4 --data-dir /path/to/data
Smoke:   pepita reproduce conv_mnist_fa --smoke --synthetic
Runtime: estimated ~30 s/epoch on 2 CPU cores → ~1 h per seed (not measured).
Settings (paper / official code): lr 0.1, batch 50, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90.
Chosen here (sources silent): the paper gives no Feedback Alignment learning rate; we use PEPITA's (0.1); conv lr 0.1 is our choice (as FC); no dropout in the conv net.

Official code: none for FA on the conv net (GiorgiaD/PEPITA main_pytorch.py
lists FA in its --learn_type help but trains only BP and ERIN = PEPITA).
"""

from pepita_keras.experiment import paper_cell


def get_config():
    return paper_cell("fa", "conv", "mnist")
