"""DRTP, Conv 32@5x5 → max-pool 2 → dense, CIFAR-10 (paper: 50.53 ± 0.81).

Command: pepita reproduce conv_cifar10_drtp --seeds 0,1,2,3,4 --data-dir /path/to/data
Smoke:   pepita reproduce conv_cifar10_drtp --smoke --synthetic
Runtime: estimated ~60 s/epoch on 2 CPU cores → ~2 h per seed (not measured).
Settings (paper / official code): batch 50, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90;
no dropout in the conv net (the paper states dropout for FC only).
DRTP as in its official code (github.com/ChFrenkel/DirectRandomTargetProjection, main.py argument
defaults): tanh convolution (--conv-act tanh), sigmoid output trained with the binary cross-entropy
(--output-act sigmoid --loss BCE), feedback D ~ kaiming_uniform_ (module.py TrainingHook.reset_weights),
hidden hook onehot(t)·D summed over the batch (function.py, train_mode "DRTP"). The code's step at its
learning rate η is this package's at lr = η/C and feedback_scale = B·C (pepita_keras/rules/drtp.py,
official_code_step; tested): here η = 0.01, B = 50, C = 10 → lr 0.001, feedback_scale 500.
Chosen here (sources silent): η = PEPITA's CIFAR lr 0.01 (the PEPITA paper gives no DRTP learning rate; the code's
default --lr 1e-4 belongs to its own NAG / batch-100 setting); SGD momentum instead of the code's
Nesterov default; no biases and He-uniform weights (PEPITA's network; the code uses biases and
PyTorch's default init).
Not validated on this cell (only FC-MNIST was run here); same source and mapping as fc_mnist_drtp.
"""

from pepita_keras.experiment import paper_cell
from pepita_keras.rules.drtp import OFFICIAL_CODE_ACTIVATIONS, official_code_step

BATCH_SIZE = 50
NUM_CLASSES = 10
ETA = 0.01  # the DRTP code's --lr (see docstring)
NOTES = (
    "DRTP as in its official code: tanh hidden, sigmoid output with BCE, kaiming-uniform D; "
    "code step at eta=0.01 mapped to lr=eta/C, feedback_scale=B*C; eta is PEPITA's "
    "CIFAR lr (the paper gives no DRTP lr); SGD momentum, not Nesterov"
    "; no dropout in the conv net"
)


def get_config():
    step = official_code_step(ETA, batch_size=BATCH_SIZE, num_classes=NUM_CLASSES)
    return paper_cell(
        "drtp",
        "conv",
        "cifar10",
        learning_rate=step["learning_rate"],
        rule_kwargs=(("feedback_scale", step["feedback_scale"]),),
        notes=NOTES,
        **OFFICIAL_CODE_ACTIVATIONS,
    )
