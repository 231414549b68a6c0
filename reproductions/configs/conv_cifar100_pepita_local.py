"""PEPITA with the package's local conv rule, Conv 32@5x5 → max-pool 2 → dense, CIFAR-100.

Our variant, not a paper cell (no paper number): conv_cifar100_pepita with conv_update="local".
Command: pepita reproduce conv_cifar100_pepita_local --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce conv_cifar100_pepita_local --smoke --synthetic
Runtime: not measured on CIFAR here (no CIFAR copy); MNIST conv ran 29-44 s/epoch on a shared 2-core CPU.
Settings: as conv_mnist_pepita_local (the rule and its learning-rate search are written out there;
lr 0.01, tuned on MNIST: no CIFAR copy here).
"""

from common import local_conv_variant


def get_config():
    return local_conv_variant(
        "cifar100",
        learning_rate=0.01,  # tuned on MNIST (no CIFAR copy here)
        batch_size=50,
        dropout=0.0,
    )
