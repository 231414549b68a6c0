"""Backprop (BP), FC 784-1024-10, MNIST (paper: 98.63 ± 0.03).

Command: pepita reproduce fc_mnist_bp --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce fc_mnist_bp --smoke --synthetic
Achieves: 98.63 ± 0.03 test accuracy (seeds 0, 1, 2: 98.61, 98.61, 98.67; 100 epochs, real MNIST;
seed 2 took 17 min at load 3.5; the command above, reproductions/results/README.md).
Runtime: 7–19 s/epoch incl. test evaluation (median 10) on the 2-core CPU at load 3.5 → 17 min per seed
(seed 2); seeds 0–1 ran on an earlier, more heavily shared 2-core box at 18–32 s/epoch.
Settings (paper / official code): lr 0.1, batch 64, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90; dropout 0.1 on the hidden layer.
Chosen here (sources silent): the paper gives no Backprop learning rate; we use PEPITA's (0.1).
"""

from common import paper_cell


def get_config():
    return paper_cell("bp", "fc", "mnist")
