"""PEPITA, FC 784-1024-10, MNIST (paper: 98.01 ± 0.09).

Command: pepita reproduce fc_mnist_pepita --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce fc_mnist_pepita --smoke --synthetic
Achieves: 97.99 ± 0.01 test accuracy (seeds 0, 1, 2: 97.98, 97.99, 98.00; 100 epochs, real MNIST;
seed 2 took 22 min at load 4.1; the command above, reproductions/results/README.md).
Runtime: 9–20 s/epoch incl. test evaluation (median 14) on the 2-core CPU at load 4.1 → 22 min per seed
(seed 2); seeds 0–1 ran on an earlier, more heavily shared 2-core box at 18–32 s/epoch.
Settings (paper / official code): lr 0.1, batch 64, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90; dropout 0.1 on the hidden layer; F scale 0.05.
"""

from common import paper_cell


def get_config():
    return paper_cell("pepita", "fc", "mnist")
