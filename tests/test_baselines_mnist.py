"""BP, FA, DFA and DRTP on the full real MNIST with the paper's FC network.

784 → 1024 (relu, dropout 0.1) → 10, no biases, He-uniform init (seed 0),
batch 64, SGD with momentum 0.9, 2 epochs, test accuracy after epoch 2.
Measured here (test accuracy after epochs 1 / 2, seed 0, two runs of this
test on a shared CPU; TF kernels are not bit-deterministic run to run; PEPITA
from tests/test_pepita_mnist.py with the same network, lr 0.1):

| rule   | lr   | feedback_scale | run 1: ep 1 / ep 2 | run 2: ep 1 / ep 2 | required |
|--------|------|----------------|--------------------|--------------------|----------|
| BP     | 0.1  | –              | 96.84% / 97.36%    | 96.41% / 97.35%    | ≥ 96.5%  |
| FA     | 0.1  | 1.0            | 91.83% / 95.79%    | 93.71% / 95.61%    | ≥ 94.5%  |
| DFA    | 0.1  | 1.0            | 91.98% / 95.74%    | 93.58% / 94.94%    | ≥ 93.0%  |
| PEPITA | 0.1  | 0.05           | 93.84% / 94.91%    |                    | own test |
| DRTP   | 0.01 | 0.01           | 90.81% / 92.03%    | 91.04% / 91.07%    | ≥ 89.0%  |

DFA on an AMD EPYC 2-core box (2026-11-27) gave 93.08% / 93.86% at this
test's code and at the commit the table above was measured with (identical
numbers, so a different CPU's kernels, not the code): DFA's bound is 93.0%.

I.e. the paper's ordering BP > FA ≳ PEPITA > DRTP (Dellaferrera & Kreiman
2022, Table 1: 98.63 / 98.42 / 98.01 / 95.04 after 100 epochs). DRTP needs
a smaller `lr · feedback_scale`: with ReLU hidden units the projected target
never vanishes, so its hidden weights grow without bound (measured at lr 0.1 /
scale 1: 49.97% → 54.50%; lr 0.01 / scale 1: 81.65% → 69.00%).
"""

import keras
import pytest

import pepita_keras
from pepita_keras import datasets

CASES = {
    "bp": (pepita_keras.Backprop, {}, 0.1, 0.965),
    "fa": (pepita_keras.FeedbackAlignment, {"feedback_scale": 1.0}, 0.1, 0.945),
    "dfa": (pepita_keras.DirectFeedbackAlignment, {"feedback_scale": 1.0}, 0.1, 0.93),
    "drtp": (pepita_keras.DRTP, {"feedback_scale": 0.01}, 0.01, 0.89),
}


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("rule", list(CASES))
def test_rule_reaches_its_accuracy_on_real_mnist_in_2_epochs(rule):
    cls, kwargs, learning_rate, required = CASES[rule]
    data = datasets.load("mnist", batch_size=64, seed=0)
    assert (data.num_train, data.num_test) == (60000, 10000)
    network = pepita_keras.paper_networks.paper_fc(data.input_shape, data.num_classes, seed=0)
    model = cls(network, seed=0, **kwargs)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        metrics=["accuracy"],
    )
    history = model.fit(data.train, epochs=2, validation_data=data.test, verbose=2)
    accuracies = history.history["val_accuracy"]
    print(f"{rule} real-MNIST test accuracy per epoch:", accuracies)
    assert accuracies[-1] >= required
