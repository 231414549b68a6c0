"""PEPITA, paper FC net, MNIST: Bayesian optimisation near the paper's settings.

Command (about 6 min on a 2-core CPU, see reproductions/results/tuning.md):

    PEPITA_DATA_DIR=../shared/data pepita tune pepita_fc_mnist_bayes --directory tuning

The wide random search (`pepita_fc_mnist`) did not beat the paper's own
settings (`pepita_fc_mnist_paper`) within 12 trials; this search narrows the
ranges around them (learning rate 0.03-0.3, F scale 0.01-0.2, momentum 0.9)
and lets a Gaussian-process oracle choose after 4 random trials. Same budget
and data as `pepita_fc_mnist`: 3 epochs on 10k training images, validated on
5k held out from the training split.
"""

from common import paper_cell
from pepita_keras.tuning.configs import TuningConfig


def get_config():
    return TuningConfig(
        name="pepita_fc_mnist_bayes",
        experiment=paper_cell("pepita", "fc", "mnist"),
        space={
            "learning_rate": {"min_value": 0.03, "max_value": 0.3, "sampling": "log"},
            "feedback_scale": {"min_value": 0.01, "max_value": 0.2, "sampling": "log"},
            "momentum": 0.9,
            "batch_size": [32, 64, 128],
            "dropout": [0.0, 0.1, 0.2],
            "hidden_units": 1024,
            "num_hidden_layers": 1,
            "last_layer_error": "modulated",
            "modulation_sign": None,
            "normalize_activations": None,
            "update_form": None,
            "time_local": None,
        },
        tuner="bayesian",
        tuner_kwargs=(("num_initial_points", 4),),
        max_trials=12,
        epochs=3,
        train_examples=10000,
        val_examples=5000,
        seed=0,
    )
