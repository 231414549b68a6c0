"""Which data a run trained and was tested on, as MLflow dataset inputs.

`of_arrays(config, arrays, data_dir, synthetic)` describes the two
splits a reproduction (or a tuning search) used as `mlflow.data` datasets,
and `log_dataset_inputs` attaches them to a run with `MlflowClient.log_inputs`
(the run page's "Datasets used", context `train` / `test` / `validation`).

- Real data read from local files: the source is the folder (or CIFAR
  tarball) the files came from, and the digest is derived from the SHA-256 of
  the split's files (the same hashes `pepita_keras.datasets` verifies against
  its known checksums and any `SHA256SUMS` beside the files) and the number
  of examples used, so a subset or another copy of the files has another
  digest. The full file hashes are returned too (`file_hashes`) for
  `environment.json`.
- Synthetic data (`--synthetic`): the name says `<dataset>-synthetic` and
  the source is the generating code (`input_pipeline.synthetic_arrays`), so such a
  run can never be mistaken for one on the real dataset.
- Data from TensorFlow Datasets: source `tfds:<dir>`, digest computed by
  MLflow from the arrays.

Example:

```python
inputs = dataset_inputs.of_arrays(config, arrays, data_dir="/data")
dataset_inputs.log_dataset_inputs(client, run_id, inputs)
```
"""

import dataclasses
import hashlib
import os
import pathlib
import warnings

from pepita_keras import datasets

# An identifier stores already hold (the function's module was `epoch_data` then, and is
# `input_pipeline` now): kept as written so old and new synthetic runs name one source.
SYNTHETIC_SOURCE = "pepita_keras.epoch_data.synthetic_arrays"
# MLflow stores a dataset digest in a 36-character column.
_DIGEST_LENGTH = 32


@dataclasses.dataclass
class DatasetInput:
    """One split as an MLflow dataset.

    Args:
        dataset: an `mlflow.data` dataset (name, digest, source, schema,
            profile).
        context: `"train"`, `"test"` or `"validation"`.
        file_hashes: `{file name: sha256}` of the files it was read from
            (empty for synthetic or TFDS data).
    """

    dataset: object
    context: str
    file_hashes: dict


def _local_files(name, data_dir):
    """`(source path, {split: [files]})` of a locally stored dataset, or None.

    Looks where `datasets.load_arrays` looks (an explicit `data_dir`, else
    `$PEPITA_DATA_DIR`), with the same file layout rules.
    """
    root = data_dir if data_dir is not None else os.environ.get(datasets.ENV_VAR)
    if not root:
        return None
    root = pathlib.Path(root).expanduser()
    for directory in (root / name, root):
        found = datasets._locate(name, directory)  # the loader's own file lookup
        if found is None:
            continue
        if isinstance(found, list):  # MNIST-like: train images/labels, test images/labels
            return directory, {"train": found[:2], "test": found[2:]}
        if found.is_file():  # one tarball holds both splits
            return found, {"train": [found], "test": [found]}
        spec = datasets._SPECS[name]
        return found, {"train": [found / m for m in spec.train_members],
                       "test": [found / m for m in spec.test_members]}
    return None


def _digest(parts):
    text = "\n".join(str(part) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_LENGTH]


def _local_source(path):
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with warnings.catch_warnings():
        # Two registered local sources both claim a path; they are the same class.
        warnings.simplefilter("ignore", UserWarning)
        return resolve_dataset_source(str(path))


def of_arrays(config, arrays, data_dir=None, synthetic=False, splits=("train", "test")):
    """MLflow datasets for the arrays a run uses.

    Args:
        config: an `ExperimentConfig` (its `dataset`, `train_examples`,
            `test_examples`).
        arrays: `((x_train, y_train), (x_test, y_test))` as trained on.
        data_dir: the folder the data was loaded from (None: the loader's
            default, `$PEPITA_DATA_DIR` or TFDS).
        synthetic: the arrays came from `input_pipeline.synthetic_arrays`.
        splits: the contexts of the two array pairs, e.g. `("train",
            "validation")` for a tuning search's held-out split.

    Returns:
        A list of `DatasetInput`, one per split.
    """
    import mlflow.data
    from mlflow.data.code_dataset_source import CodeDatasetSource

    name = config.dataset
    local = None if synthetic else _local_files(name, data_dir)
    inputs = []
    for (x, y), context in zip(arrays, splits):
        hashes = {}
        if synthetic:
            source = CodeDatasetSource({"mlflow.source.name": SYNTHETIC_SOURCE,
                                        "pepita.synthetic": "true"})
            dataset_name = f"{name}-synthetic-{context}"
            digest = None  # MLflow hashes the arrays themselves
        elif local is not None:
            path, files = local
            # The test split of a reproduction is the dataset's test files;
            # a validation split is cut from the training files.
            split_files = files["test" if context == "test" else "train"]
            hashes = {f.name: datasets._sha256(f) for f in split_files}
            source = _local_source(path)
            dataset_name = f"{name}-{context}"
            digest = _digest([f"{k} {v}" for k, v in sorted(hashes.items())]
                             + [f"{context} examples {len(y)}"])
        else:
            source = f"tfds:{datasets._tfds_data_dir()}"
            dataset_name = f"{name}-{context}"
            digest = None
        dataset = mlflow.data.from_numpy(x, targets=y, source=source, name=dataset_name,
                                         digest=digest)
        inputs.append(DatasetInput(dataset, context, hashes))
    return inputs


def unofficial_data_digest(dataset, inputs):
    """None if the files of `inputs` are the genuine dataset, else a digest of them.

    Genuine means every file read matches a published SHA-256 of that file
    (`dataset_files` lists them), whether or not the loader verified it;
    data from TFDS or synthetic data has no files and counts as genuine (TFDS
    verifies its own downloads; synthetic runs are named apart anyway).
    A `SHA256SUMS` written beside other files does not make them genuine.

    Args:
        dataset: the dataset name, e.g. `"mnist"`.
        inputs: `of_arrays(...)` of the run.

    Returns:
        None, or 12 hex digits identifying the files (an
        `ExperimentConfig.data_digest`).
    """
    from pepita_keras import dataset_files

    hashes = {}
    for item in inputs:
        hashes.update(item.file_hashes)
    official = dataset_files._KNOWN_SHA256.get(dataset, {})
    if all(digest in official.get(name, ()) for name, digest in hashes.items()):
        return None
    return _digest(f"{name} {digest}" for name, digest in sorted(hashes.items()))[:12]


def log_dataset_inputs(mlflow_client, run_id, inputs):
    """Attaches `of_arrays(...)` to a run (idempotent: MLflow keeps one per dataset)."""
    from mlflow.entities import DatasetInput as MlflowDatasetInput
    from mlflow.entities import InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    mlflow_client.log_inputs(run_id, datasets=[
        MlflowDatasetInput(item.dataset._to_mlflow_entity(),
                           tags=[InputTag(MLFLOW_DATASET_CONTEXT, item.context)])
        for item in inputs
    ])


def describe(inputs):
    """`{context: {"name", "digest", "source", "num_examples", "files"}}` for environment.json."""
    return {
        item.context: {
            "name": item.dataset.name,
            "digest": item.dataset.digest,
            "source": item.dataset.source.to_json(),
            "num_examples": int(item.dataset.profile.get("targets_shape", [0])[0])
            if item.dataset.profile else None,
            "sha256": item.file_hashes,
        }
        for item in inputs
    }
