"""ICLR-2024 variant row: ICLR PEPITA + weight decay 1e-4 + whole-batch activation normalisation, FC, MNIST.

Command: pepita reproduce iclr_fc_mnist_pepita_wd_norm --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce iclr_fc_mnist_pepita_wd_norm --smoke --synthetic
Achieves: 95.00 test accuracy (seed 0; 100 epochs, real MNIST, 31 min at load 4.6; the command above,
reproductions/results/README.md): 93.08 after epoch 1, 92-93 while lr is 10, 94.46 at epoch 90, then
95.00; below the ICLR base row (97.93) with these choices. The ICLR paper's number is not transcribed.
Runtime: 21-31 min per seed on the 2-core CPU at load 4-5 (as fc_mnist_pepita).
Settings: as fc_mnist_pepita (batch 64, momentum 0.9, 100 epochs, ×0.1 at 60/90, dropout 0.1,
F scale 0.05) with the ICLR code's flags (Srinivasan et al., ICLR 2024), except lr 10.
Chosen here: weight decay 1e-4 and lr 10; no paper number attached.
Learning rate: the normalisation divides every hidden activation by ‖h‖_F over the whole batch
(about 85 for 64 MNIST images at He-uniform init), so activations, logits (std 0.006 instead of
0.49) and every update shrink about 85-fold, and the hidden kernel's scale no longer matters to
the output, so the decoupled weight decay keeps shrinking it and its relative step keeps growing.
Searched with `pepita tune pepita_fc_mnist_wd_norm` (reproductions/results/tuning.md; validation
on 5k held-out training images, never the test set; seed 0), final-epoch val_accuracy:
  3 epochs on 10k images:  lr 0.1 0.557, 1 0.752, 3 0.884, 10 0.924, 30 0.944, 100 0.901, 300 0.705
  10 epochs on 20k images (`--epochs 10 --train-examples 20000 --project-name
  pepita_fc_mnist_wd_norm_10ep`): 0.1 0.755, 1 0.919, 3 0.951, 10 0.961, 30 0.931 (0.956 at
  epoch 4, then falling), 100 0.627, 300 0.098.
The 3-epoch search's lr 30, run in full (seed 0), peaked at epoch 1 (94.31) and fell to 72.79 by
epoch 60 before the decay brought it back to 92.40; at the ICML cell's lr 0.1 the row reached 92.09.
Both are listed under "Runs with other settings". Hence lr 10, the best after 10 epochs.
Test loss: the test pass runs in batches of 1000, whose norm is about √(1000/64) ≈ 4× a training
batch's, so test logits are ~4× smaller and the test loss is not comparable with the training
loss. Accuracy is unaffected (one positive scale per batch keeps every argmax).
"""

from common import ICLR_NOTES, iclr_variant


def get_config():
    return iclr_variant(
        "mnist", "wd_norm",
        learning_rate=10.0,  # pepita tune pepita_fc_mnist_wd_norm (10 epochs)
        weight_decay=1e-4,
        notes=ICLR_NOTES + "; lr 10 from pepita tune searches (the normalisation shrinks "
        "activations and updates ~85-fold)",
    )
