"""Backprop (BP), Conv 32@5x5 → max-pool 2 → dense, MNIST (paper: 98.86 ± 0.04).

Command: pepita reproduce conv_mnist_bp --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce conv_mnist_bp --smoke --synthetic
Runtime: 54-144 ms per training step of 50 measured on 2 shared CPU cores (conv net, `pepita tune`) → 1200 steps ≈ 1.1-2.9 min/epoch → ~2-5 h per seed.
Settings of the official conv script (GiorgiaD/PEPITA main_pytorch.py, model
Net1conv1fcXL; its README's MNIST command: --eta 0.01 --Bstd 0.05 --batch_size 50
--update_type mom --eta_decay): lr 0.01, batch 50, SGD momentum 0.9, 100 epochs, lr ×0.1
at epochs 10, 30, 60 (its decay is forced on, default --decay_scheme 1), PyTorch's default
init U(±1/√fan_in) (its --w_init is parsed but never applied), no biases, no dropout.
Trained there with --learn_type BP, the only baseline the script implements.
Not reproduced: the script applies nn.CrossEntropyLoss to the network's softmax outputs (a
log-softmax of probabilities); this config uses the ordinary categorical cross-entropy.
"""

from pepita_keras.experiment import paper_cell


def get_config():
    return paper_cell(
        "bp", "conv", "mnist",
        learning_rate=0.01,
        lr_decay_epochs=(10, 30, 60),
        kernel_initializer="torch_default",
    )
