"""Independent NumPy statements of the learning rules, for tests only.

Nothing here imports pepita_keras: each function is written from the paper's
equations so the Keras implementation can be checked against it.
"""
