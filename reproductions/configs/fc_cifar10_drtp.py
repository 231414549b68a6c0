"""DRTP, FC 3072-1024-10, CIFAR-10 (paper: 45.89 ± 0.16).

Command: pepita reproduce fc_cifar10_drtp --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce fc_cifar10_drtp --smoke --synthetic
Runtime: not measured here (no CIFAR copy); FC MNIST ran 17-28 s/epoch on a shared 2-core CPU.
Settings: as fc_mnist_drtp (where the source, the DRTP code's defaults, and the mapping of its step
are written out), with η = 0.01 (PEPITA's CIFAR-10 lr), B = 64, C = 10: lr η/C = 0.001,
feedback_scale B·C = 640; tanh hidden units, sigmoid output, dropout 0.1.
Not validated on this cell (only FC-MNIST was run here).
"""

from common import paper_cell


def get_config():
    return paper_cell(
        "drtp", "fc", "cifar10",
        learning_rate=0.001,  # the DRTP code's step at eta = 0.01: eta / C
        rule_kwargs=(("feedback_scale", 640.0),),  # B · C
        hidden_activation="tanh",
        output_activation="sigmoid",
    )
