"""ICLR-2024 variant row: ICLR PEPITA + weight decay 1e-4 + whole-batch activation normalisation, FC, MNIST.

Command: pepita reproduce iclr_fc_mnist_pepita_wd_norm --seeds 0,1,2,3,4 --data-dir /path/to/data
Smoke:   pepita reproduce iclr_fc_mnist_pepita_wd_norm --smoke --synthetic
Runtime: ~20–30 min per seed on 2 CPU cores (as fc_mnist_pepita).
Settings: as fc_mnist_pepita (batch 64, momentum 0.9, 100 epochs, ×0.1 at 60/90, dropout 0.1,
F scale 0.05) with the ICLR code's flags (Srinivasan et al., ICLR 2024), except lr 30.
Chosen here: weight decay 1e-4 and lr 30; no paper number attached.
Learning rate: the normalisation divides every hidden activation by ‖h‖_F over the whole batch
(about 85 for 64 MNIST images at He-uniform init), so activations, logits (std 0.006 instead of
0.49) and every update shrink about 85-fold. At the ICML cell's lr 0.1 this row reached only 92.09
(seed 0, 100 epochs, real MNIST, 23 min at load 3-5; listed under "Runs with other settings").
`pepita tune pepita_fc_mnist_wd_norm` (reproductions/tuning/; 3 epochs on 10k training images,
validated on 5k held-out ones, seed 0): val_accuracy 0.75 at lr 0.1, 0.88 at 3, 0.92 at 10,
0.94 at 30, 0.92 at 100, 0.86 at 300; the ICML rule at its lr 0.1 gets 0.94 on the same budget
(pepita_fc_mnist_paper). Hence lr 30.
Test loss: the test pass runs in batches of 1000, whose norm is about √(1000/64) ≈ 4× a training
batch's, so test logits are ~4× smaller and the test loss is not comparable with the training
loss. Accuracy is unaffected (one positive scale per batch keeps every argmax).
"""

from pepita_keras.experiment import ICLR_NOTES, iclr_variant


def get_config():
    return iclr_variant(
        "mnist", "wd_norm",
        learning_rate=30.0,  # pepita tune pepita_fc_mnist_wd_norm
        weight_decay=1e-4,
        notes=ICLR_NOTES + "; lr 30 from a pepita tune search (the normalisation shrinks "
        "activations and updates ~85-fold)",
    )
