"""Feedback Alignment (FA), FC 784-1024-10, MNIST (paper: 98.42 ± 0.07).

Command: pepita reproduce fc_mnist_fa --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce fc_mnist_fa --smoke --synthetic
Achieves: 98.46 ± 0.02 test accuracy (seeds 0, 1, 2: 98.44, 98.48, 98.46; 100 epochs, real MNIST,
30 min at load 6.7, 23 min at load 4.2, 17 min at load 2.6; the command above,
reproductions/results/README.md); paper 98.42 ± 0.07.
Runtime: 8–48 s/epoch incl. test evaluation (median 10–16) on the 2-core CPU at load 2.6–6.7
→ 17–30 min per seed.
Settings (paper / official code): lr 0.1, batch 64, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90; dropout 0.1 on the hidden layer.
Chosen here (sources silent): the paper gives no Feedback Alignment learning rate; we use PEPITA's (0.1).
"""

from common import paper_cell


def get_config():
    return paper_cell("fa", "fc", "mnist")
