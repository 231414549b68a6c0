"""Forward-Forward (FF), FC 784-500-500 without a classifier layer, MNIST: the keras-io example's setup.

Command: pepita reproduce ff_mnist --seeds 0,1,2 --data-dir /path/to/data
Smoke:   pepita reproduce ff_mnist --smoke --synthetic
Runtime: see `pepita reproduce ff_mnist --plan` (250 full-batch epochs of 50 local steps per layer:
4.5-6.5 h per seed on a 2-core CPU, 97-128 s on one H200 GPU with Keras-JAX).
Settings: the keras-io Forward-Forward example (Mukherjee, 2023; keras-io
examples/vision/forwardforward.py): two ReLU Dense layers of 500 units with biases (glorot_uniform),
the label written into the first 10 pixels, threshold 1.5 on the mean squared activation, one
Adam(0.03) shared by the layers, the whole training set as one batch, 50 local steps per layer per
batch, 250 epochs. That example stored 97.64% test accuracy; it is the reference this row is
compared with (the FF paper's 1.36% error is for a larger 4×2000 net).
"""

from common import paper_cell


def get_config():
    return paper_cell(
        "ff", "fc", "mnist",
        name="ff_mnist",
        hidden_units=(500, 500),
        use_bias=True,  # keras-io's Dense layers keep Keras's default bias
        kernel_initializer="glorot_uniform",  # and its default initializer
        dropout=0.0,
        optimizer="adam",  # one Adam(0.03) shared by the layers
        learning_rate=0.03,
        momentum=0.0,  # SGD only
        lr_decay_epochs=(),  # constant learning rate
        batch_size=60000,  # full batch (keras-io: train_dataset.batch(60000))
        epochs=250,
        eval_batch_size=10000,
        rule_kwargs=(("threshold", 1.5), ("local_steps", 50)),
        paper=(97.64, 0.0),  # keras-io's stored output, one run (no std)
        paper_source="keras-io Forward-Forward example (one stored run)",
    )
