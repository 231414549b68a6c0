"""DRTP, Conv 32@5x5 → max-pool 2 → dense, MNIST (paper: 97.32 ± 0.25).

Command: pepita reproduce conv_mnist_drtp --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce conv_mnist_drtp --smoke --synthetic
Achieves: 98.31 test accuracy (seed 0; 100 epochs, real MNIST, 40 min at load 2.8; the command above,
reproductions/results/README.md); paper 97.32 ± 0.25.
Gap: +0.99 points above the paper (tolerance ±0.50). The paper states no conv DRTP setting; with the DRTP
code's defaults used here (tanh, sigmoid output with BCE, the step mapped from η = 0.1) the conv net trains
like the FA and BP cells: 96.87 after epoch 1, 98.14 at epoch 10, peak 98.42 (epoch 56), 98.31 final, the
output layer learning from its true error. Which setting gave the paper's 97.32 is not known; the ReLU/softmax
setting the FC cell first used (90.84 there, below its paper number) is the next candidate to test.
Runtime: 19-39 s/epoch on the 2-core CPU at load 3-4 → about 40 min per seed.
Settings: as fc_mnist_drtp (where the source, the DRTP code's defaults, and the mapping of its step
are written out), with η = 0.1 (PEPITA's MNIST lr), B = 50, C = 10: lr η/C = 0.01,
feedback_scale B·C = 500; tanh hidden units, sigmoid output, no dropout.
"""

from pepita_keras.experiment import paper_cell


def get_config():
    return paper_cell(
        "drtp", "conv", "mnist",
        learning_rate=0.01,  # the DRTP code's step at eta = 0.1: eta / C
        batch_size=50,
        dropout=0.0,
        rule_kwargs=(("feedback_scale", 500.0),),  # B · C
        hidden_activation="tanh",
        output_activation="sigmoid",
    )
