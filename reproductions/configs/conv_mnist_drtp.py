"""DRTP, Conv 32@5x5 → max-pool 2 → dense, MNIST (paper: 97.32 ± 0.25).

Command: pepita reproduce conv_mnist_drtp --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce conv_mnist_drtp --smoke --synthetic
Achieves: 96.88 ± 0.52 test accuracy (seeds 0, 1, 2: 97.32, 96.30, 97.01; 100 epochs, real MNIST, 36 min
at load 2.8, 34 min at load 2.7, 42 min at load 3.6; seed 0 run with these settings as `--set` overrides
before they were shipped; reproductions/results/README.md); paper 97.32 ± 0.25: 0.44 points low, inside
the tolerance (±0.50) with three seeds, but with twice the paper's spread (see GAP below).
Runtime: 16-50 s/epoch (median about 20-25) on the 2-core CPU at load 2.7-3.6 → 34-42 min per seed.
Settings: the paper states no conv DRTP setting. This cell uses the setting the FC cell first
shipped (before the DRTP code's setting replaced it there): ReLU hidden units, softmax output
(error e = softmax − onehot), feedback_scale 0.01 (D_l ~ U(±0.01·sqrt(6/n_l))), lr 0.01, batch 50, SGD momentum 0.9, ×0.1 at
epochs 60 and 90, He-uniform, no dropout. Its seed 0 gave the paper's number exactly (97.32).
Not used: the DRTP code's defaults that reproduce the FC cell (fc_mnist_drtp: tanh, sigmoid output
with BCE, lr η/C = 0.01, feedback_scale B·C = 500). On this conv net they gave 98.31 (seed 0,
40 min at load 2.8; listed apart in reproductions/results), 0.99 points above the paper: 96.87
after epoch 1, 98.14 at epoch 10, peak 98.42 (epoch 56). So the paper's FC and conv DRTP numbers
come from different settings (the same ReLU/softmax setting gave 90.84 on the FC net).
"""

from common import paper_cell

# Why our number differs from the paper's (the results table prints it under the cell).
GAP = (
    'this setting trains noisily: before the decay at epoch 60 the test accuracy swings '
    'between 73 and 97% (seed 0) and 77 and 96% (seed 1) from epoch to epoch, so where the '
    'epoch-60 decay catches the weights decides the final number (seed 0: 94.27 at epoch 60 → '
    "97.32; seed 1: 91.78 → 96.30; seed 2: 88.80 → 97.01). The paper's σ of 0.25 points "
    "suggests a steadier setting than this one; the DRTP code's steadier setting overshoots "
    'instead (98.31, listed apart in the results).'
)


def get_config():
    return paper_cell(
        "drtp", "conv", "mnist",
        learning_rate=0.01,
        batch_size=50,
        dropout=0.0,
        rule_kwargs=(("feedback_scale", 0.01),),
        hidden_activation="relu",
        output_activation="softmax",
        gap=GAP,
    )
