"""Backprop (BP), Conv 32@5x5 → max-pool 2 → dense, CIFAR-100 (paper: 34.20 ± 0.20).

Command: pepita reproduce conv_cifar100_bp --seeds 0,1,2,3,4 --data-dir /path/to/data
Smoke:   pepita reproduce conv_cifar100_bp --smoke --synthetic
Runtime: estimated ~60 s/epoch on 2 CPU cores → ~2 h per seed (not measured).
Settings (paper / official code): lr 0.01, batch 50, SGD momentum 0.9, 100 epochs, lr ×0.1 at epochs 60 and 90.
Chosen here (sources silent): the paper gives no Backprop learning rate; we use PEPITA's (0.01); conv lr 0.01 is our choice (as FC); no dropout in the conv net.

Official code (GiorgiaD/PEPITA main_pytorch.py --learn_type BP, the only
baseline it implements; FA and DRTP have no official conv code): the same
Net1conv1fcXL_cif module, whose forward ends in softmax, trained with
nn.CrossEntropyLoss applied to those softmax outputs (a log-softmax of
probabilities); optim.SGD(lr=eta, momentum=0.9), eta default 0.01, batch 50,
no biases, no dropout; PyTorch's default init U(±1/√fan_in) (the script
parses --w_init but never uses it); lr decay always on (the flag is
overridden), ×0.1 at epochs 10, 30, 60 (default --decay_scheme 1; scheme 0:
epochs 60 and 90). This config differs: the ordinary categorical cross-entropy
of the softmax output, lr 0.01, He-uniform init, ×0.1 at epochs 60 and 90.
"""

from pepita_keras.experiment import paper_cell


def get_config():
    return paper_cell("bp", "conv", "cifar100")
