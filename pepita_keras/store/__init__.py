"""The store wing: everything that records, finds and keeps runs.

- `tracking`: the MLflow vocabulary and I/O (no Keras);
- `provenance`: versions, devices, git state and command line of a run;
- `dataset_inputs`: the datasets a run trained and tested on, as MLflow dataset inputs;
- `checkpoints`: kill-safe run folders (checkpoints, state, locks);
- `json_files`: atomic, strict JSON files;
- `plots`: learning-curve and per-cell figures logged as artifacts;
- `merge` (`pepita merge-store`) and `migrate` (`pepita migrate-store`): copying
  another store's runs in, and upgrading an older store in place;
- `untrusted`: the checks that keep values read from another store data.

`tracking`, `json_files` and `untrusted` import no Keras (read-only
commands such as `pepita results` stay TensorFlow-free); `migrate` reuses the
reproduction's summaries (`pepita_keras.reproduce`), which never imports it back.
"""
