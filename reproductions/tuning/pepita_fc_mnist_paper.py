"""Reference point for `pepita_fc_mnist`: the paper's settings, one trial.

Command (about 30 s on a 2-core CPU):

    PEPITA_DATA_DIR=../shared/data pepita tune pepita_fc_mnist_paper --directory tuning

Every hyperparameter is fixed to the paper's MNIST FC value (lr 0.1,
momentum 0.9, batch 64, dropout 0.1, F scale 0.05, modulated last-layer
error), trained with exactly the budget and data of `pepita_fc_mnist`
(3 epochs on 10k training images, validated on 5k held out from the
training split), so the two searches' objectives compare directly.
"""

from common import paper_cell
from pepita_keras.tuning.configs import TuningConfig


def get_config():
    return TuningConfig(
        name="pepita_fc_mnist_paper",
        experiment=paper_cell("pepita", "fc", "mnist"),
        space={
            "learning_rate": 0.1,
            "feedback_scale": 0.05,
            "momentum": 0.9,
            "batch_size": 64,
            "dropout": 0.1,
            "hidden_units": 1024,
            "num_hidden_layers": 1,
            "last_layer_error": "modulated",
            "modulation_sign": None,
            "normalize_activations": None,
            "update_form": None,
            "time_local": None,
        },
        tuner="random",
        max_trials=1,
        epochs=3,
        train_examples=10000,
        val_examples=5000,
        seed=0,
    )
