"""PEPITA, paper FC net (784-1024-10), MNIST: search around the paper's settings.

Command (about 5 min on a 2-core CPU, see reproductions/results/tuning.md):

    PEPITA_DATA_DIR=../shared/data pepita tune pepita_fc_mnist --directory tuning

Searches learning rate, F scale, momentum, batch size, dropout and the
last-layer error convention (variant flags off: the paper's rule) for 3 epochs on 10k training images, validated on
5k images held out from the training split (never the test set). The
architecture is the paper's (one hidden layer of 1024 units).
"""

from common import paper_cell
from pepita_keras.tuning.configs import TuningConfig


def get_config():
    return TuningConfig(
        name="pepita_fc_mnist",
        experiment=paper_cell("pepita", "fc", "mnist"),
        space={
            "learning_rate": {"min_value": 0.005, "max_value": 0.5, "sampling": "log"},
            "feedback_scale": {"min_value": 0.005, "max_value": 0.5, "sampling": "log"},
            "momentum": [0.5, 0.9],
            "batch_size": [32, 64, 128],
            "dropout": [0.0, 0.1, 0.2],
            "hidden_units": 1024,
            "num_hidden_layers": 1,
            # The paper's rule: variant flags stay at their defaults.
            "modulation_sign": None,
            "normalize_activations": None,
            "update_form": None,
            "time_local": None,
        },
        tuner="random",
        max_trials=12,
        epochs=3,
        train_examples=10000,
        val_examples=5000,
        seed=0,
    )
