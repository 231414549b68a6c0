"""A benchmark's training loop in a process of its own, driven by messages.

Each framework (TensorFlow, JAX, PyTorch) then runs alone in its process,
with its own threads and no import of the others, while the parent times
the same work on each in one run.
"""

import multiprocessing


class WorkerProcess:
    """Runs `target(connection, *args)` in a spawned process.

    `target` loops: it receives a message tuple from `connection` (None
    means stop), does the work and sends one reply.

    Args:
        target: a module-level function (spawn pickles it by name).
        *args: its arguments after the connection.
    """

    def __init__(self, target, *args):
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=target, args=(child, *args))
        self.process.start()

    def request(self, *message):
        """Sends `message` and returns the worker's reply."""
        self.connection.send(message)
        return self.connection.recv()

    def close(self):
        self.connection.send(None)
        self.process.join()
