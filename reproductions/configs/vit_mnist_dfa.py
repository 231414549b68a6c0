"""Direct feedback alignment on a tiny ViT (15,274 weights), MNIST (our own cell, no paper number).

Command: pepita reproduce vit_mnist_dfa --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce vit_mnist_dfa --smoke --synthetic
Network: pepita_keras.modern_networks.tiny_vit (7x7 patch embedding + LayerNorm + 2-head attention
+ MLP, residual); trained with pepita_keras.convert(network, "dfa").
Runtime: see reproductions/results/README.md (one 5-epoch seed takes minutes on the 2-core CPU).
"""

from common import modern_cell


def get_config():
    return modern_cell(
        "dfa", "vit",
        # The best trial of its search (`pepita tune vit_mnist_dfa`, 4 trials of 2 epochs on
        # 10k images): lr 0.00186, validation accuracy 87.80% (reproductions/results/tuning.md).
        learning_rate=0.002,
        epochs=5,  # a CPU seed in minutes; the rows compare rules, all at 5 epochs
        lr_decay_epochs=(),  # constant rate: no schedule was searched
        dropout=0.0,  # these nets have no dropout layer
    )
