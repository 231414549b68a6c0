"""PEPITA with the package's local conv rule, Conv 32@5x5 → max-pool 2 → dense, MNIST.

Our variant, not a paper cell (no paper number): conv_mnist_pepita with conv_update="local".
Command: pepita reproduce conv_mnist_pepita_local --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce conv_mnist_pepita_local --smoke --synthetic
Achieves: 98.45 test accuracy (seed 0; 100 epochs, real MNIST, 49 min at load 2.6; the command above,
reproductions/results/README.md); the paper cell conv_mnist_pepita reaches 98.31 ± 0.06 (3 seeds).
Runtime: 23-45 s/epoch incl. test evaluation (median 28) on the 2-core CPU at load 2.6 → about 50 min
per seed.
Settings: as conv_mnist_pepita (batch 50, momentum 0.9, ×0.1 at epochs 60 and 90, He-uniform
init, F scale 0.05, last_layer_error="clean") except lr 0.01 and the conv kernel's update: G = Σ_b Σ_p patch_p(h_in^mod) ⊗ (h − h_mod)_(b,p) / B, the dense rule's local
analogue (B·P times the official update, opposite sign), so the conv layer learns.
Learning rate: `pepita tune pepita_conv_mnist_local` (reproductions/tuning/), 5k MNIST
training images, 2 epochs, validated on 5k held-out ones, seeds 0 and 1: lr 0.1 unstable
(val_accuracy 0.880-0.915, training loss 1.6-3.6), 0.03 0.927-0.935, 0.01 0.934-0.935 with the
lowest validation loss (0.21-0.22), 0.003 0.923-0.925: lr 0.01 trains stably.
"""

from common import local_conv_variant


def get_config():
    return local_conv_variant(
        "mnist",
        learning_rate=0.01,  # `pepita tune pepita_conv_mnist_local`
        batch_size=50,
        dropout=0.0,
    )
