"""ICLR-2024 variant row: ICLR PEPITA + F weight mirroring (η 0.1, noise 0.1, every step), FC, MNIST.

Command: pepita reproduce iclr_fc_mnist_pepita_mirror --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce iclr_fc_mnist_pepita_mirror --smoke --synthetic
Achieves: 97.96 test accuracy (seed 0; 100 epochs, real MNIST, 27 min at load 4.4; the command above,
reproductions/results/README.md); the ICLR base row (no mirroring) reached 97.93, the ICML cell 97.98;
the ICLR paper's number is not transcribed here.
Runtime: 27 min per seed on the 2-core CPU at load 4.4 (a noise pass through each layer per step).
Settings: as fc_mnist_pepita (lr 0.1, batch 64, momentum 0.9, 100 epochs, ×0.1 at 60/90,
dropout 0.1, F scale 0.05) with the ICLR code's flags (Srinivasan et al., ICLR 2024).
Chosen here: weight decay value and mirroring schedule; no paper number attached.
"""

from common import iclr_variant


def get_config():
    return iclr_variant("mnist", "mirror")
