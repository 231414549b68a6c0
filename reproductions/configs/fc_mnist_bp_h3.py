"""Backprop (BP), FC 784-1024-1024-1024-10 (3 hidden layers), MNIST: our deeper-network row (no paper number).

Command: pepita reproduce fc_mnist_bp_h3 --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce fc_mnist_bp_h3 --smoke --synthetic
Runtime: about 6 s/epoch incl. test evaluation on the idle 2-core CPU (h2 PEPITA, measured) → ~10 min
per seed; more with 3 layers or on a shared machine (each seed's wall time is in MLflow).
Settings: fc_mnist_bp's (lr 0.1, batch 64, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90,
dropout 0.1 after each hidden layer) with 3 hidden layers of 1024 units, as the
official code's `--n_hlayers 3` and the ICLR-2024 code's deeper FC nets. Neither paper reports this
cell's accuracy, so the table shows it as our own row, never against a paper column.
"""

from common import paper_cell


def get_config():
    return paper_cell(
        "bp", "fc", "mnist",
        name="fc_mnist_bp_h3",
        hidden_units=(1024, 1024, 1024),  # 3 hidden layers (official code: --n_hlayers 3)
        paper=None,  # no published number for this depth
        paper_source="",
    )
