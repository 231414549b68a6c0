"""The store wing: everything that records, finds and keeps runs.

- `recorder`: what a reproduction records, when (the cell's parent run, each
  seed's run from start or resume to diverged / completed / killed);
- `seed_state`: a seed folder's `state.json` as a typed `SeedState`;
- `tracking`: the MLflow vocabulary and I/O (no Keras);
- `provenance`: versions, devices, git state and command line of a run;
- `dataset_inputs`: the datasets a run trained and tested on, as MLflow dataset inputs;
- `checkpoints`: kill-safe run folders (checkpoints, state, locks);
- `json_files`: atomic, strict JSON files;
- `plots`: learning-curve and per-cell figures logged as artifacts;
- `merge` (`pepita merge-store`) and `migrate` (`pepita migrate-store`): copying
  another store's runs in, and upgrading an older store in place;
- `untrusted`: the checks that keep values read from another store data.

`tracking`, `json_files`, `untrusted` and `seed_state` import no Keras
(read-only commands such as `pepita results` and `pepita reproduce --plan`
stay TensorFlow-free). No module here imports the training code (`reproduce`,
`core`, `build`): `reproduce` calls the recorder, never the reverse
(`tests/test_layout.py`).
"""
