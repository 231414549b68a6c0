"""ICLR-2024 wd_norm variant (whole-batch activation normalisation + weight decay), FC MNIST: learning rate.

Command (about 2 min on a 2-core CPU shared with a reproduction):

    PEPITA_DATA_DIR=../shared/data pepita tune pepita_fc_mnist_wd_norm --directory tuning

Why: `normalize_activations=True` divides each hidden activation by the norm
of the whole batch tensor, ‖h‖_F over (batch, units). At He-uniform init on a
batch of 64 MNIST images that norm is about 85, so hidden activations, the
output logits (std 0.006 instead of 0.49) and every PEPITA update (all are
products with the normalised activations) shrink about 85-fold: at the ICML
cell's lr 0.1 the variant learns as if at lr ~0.001. This grid asks which
learning rate suits it. Everything else is `iclr_fc_mnist_pepita_wd_norm`'s
(batch 64, momentum 0.9, weight decay 1e-4, dropout 0.1, F scale 0.05, x − F e,
clean last-layer error), constant learning rate, 3 epochs on the first 10k
training images, validated on 5k held out from the training split (never the
test set), as `pepita_fc_mnist_paper`, so the objectives compare with the
ICML rule's there.
"""

from pepita_keras.experiment import iclr_variant
from pepita_keras.tuning.configs import TuningConfig


def get_config():
    return TuningConfig(
        name="pepita_fc_mnist_wd_norm",
        experiment=iclr_variant("mnist", "wd_norm", weight_decay=1e-4),
        space={
            "learning_rate": [0.1, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0],
            "weight_decay": 1e-4,
            "momentum": 0.9,
            "batch_size": 64,
            "dropout": 0.1,
            "hidden_units": 1024,
            "num_hidden_layers": 1,
            "feedback_scale": 0.05,
            "last_layer_error": "clean",
            "modulation_sign": -1,
            "normalize_activations": True,
            "update_form": None,
            "time_local": None,
        },
        tuner="random",
        max_trials=7,
        epochs=3,
        train_examples=10000,
        val_examples=5000,
        seed=0,
    )
