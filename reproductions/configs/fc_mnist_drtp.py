"""DRTP, FC 784-1024-10, MNIST (paper: 95.10 ± 0.10).

Command: pepita reproduce fc_mnist_drtp --seeds 0,1,2,3,4 --data-dir /path/to/data
Smoke:   pepita reproduce fc_mnist_drtp --smoke --synthetic
Runtime: PEPITA and BP ran 18–32 s/epoch (≈ 40 min per seed) on a shared 2-core CPU box,
~10–15 s/epoch unshared (this rule: not measured, expected similar).
Settings (paper / official code): batch 64, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90; dropout 0.1 on the hidden layer.
Chosen here (sources silent): the paper gives no DRTP learning rate; lr 0.01 and feedback_scale 0.01 (lr 0.1 with unit-scale feedback diverged: 54.5% vs 92.0% on MNIST after 2 epochs).
"""

from pepita_keras.experiment import paper_cell


def get_config():
    return paper_cell("drtp", "fc", "mnist")
