"""`pepita_keras.ops`: the TensorFlow and JAX sets define the same operations.

Read from the source (AST), so the check runs without importing the other
backend.
"""

import ast
import pathlib

import pytest

from pepita_keras import ops

BACKEND_DIR = pathlib.Path(ops.__file__).resolve().parent / "backend"


def _signatures(module_file):
    tree = ast.parse((BACKEND_DIR / module_file).read_text())
    return {
        node.name: [arg.arg for arg in node.args.posonlyargs + node.args.args
                    + node.args.kwonlyargs]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


@pytest.mark.parametrize("name", ops.OPERATIONS)
def test_both_backends_define_each_operation_with_one_signature(name):
    tf_ops, jax_ops = _signatures("tensorflow_ops.py"), _signatures("jax_ops.py")
    assert name in tf_ops and name in jax_ops
    assert tf_ops[name] == jax_ops[name]


def test_ops_exports_the_active_backends_functions():
    module = {"tensorflow": "pepita_keras.backend.tensorflow_ops",
              "jax": "pepita_keras.backend.jax_ops"}[ops.BACKEND]
    for name in ops.OPERATIONS:
        assert getattr(ops, name).__module__ == module
