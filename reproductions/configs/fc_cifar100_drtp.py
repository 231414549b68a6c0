"""DRTP, FC 3072-1024-100, CIFAR-100 (paper: 18.32 ± 0.18).

Command: pepita reproduce fc_cifar100_drtp --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce fc_cifar100_drtp --smoke --synthetic
Runtime: not measured here (no CIFAR copy); FC MNIST ran 17-28 s/epoch on a shared 2-core CPU.
Settings: as fc_mnist_drtp (where the source, the DRTP code's defaults, and the mapping of its step
are written out), with η = 0.01 (PEPITA's CIFAR-100 lr), B = 64, C = 100: lr η/C = 0.0001,
feedback_scale B·C = 6400; tanh hidden units, sigmoid output, dropout 0.1.
Not validated on this cell (only FC-MNIST was run here).
"""

from common import paper_cell


def get_config():
    return paper_cell(
        "drtp", "fc", "cifar100",
        learning_rate=0.0001,  # the DRTP code's step at eta = 0.01: eta / C
        rule_kwargs=(("feedback_scale", 6400.0),),  # B · C
        hidden_activation="tanh",
        output_activation="sigmoid",
    )
