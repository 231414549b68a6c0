"""PEPITA on the full real MNIST with the paper's FC network.

The paper reports 98.01% test accuracy after 100 epochs (lr 0.1, momentum
0.9, batch 64, dropout 0.1, F scale 0.05). After 3 epochs we require ≥ 95%:
measured here 93.84% / 94.91% / 95.95% after epochs 1 / 2 / 3 (seed 0).
"""

import keras
import pytest

import pepita_keras
from pepita_keras import datasets


@pytest.mark.slow
@pytest.mark.real_data
def test_pepita_reaches_95_percent_on_real_mnist_in_3_epochs():
    data = datasets.load("mnist", batch_size=64, seed=0)
    assert (data.num_train, data.num_test) == (60000, 10000)
    network = pepita_keras.paper_networks.paper_fc(data.input_shape, data.num_classes, seed=0)
    model = pepita_keras.PEPITA(network, seed=0)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"]
    )
    history = model.fit(data.train, epochs=3, validation_data=data.test, verbose=2)
    accuracies = history.history["val_accuracy"]
    print("PEPITA real-MNIST test accuracy per epoch:", accuracies)
    assert accuracies[-1] >= 0.95
    # Learning is monotone enough to be a real signal, not a lucky epoch.
    assert accuracies[0] >= 0.90
