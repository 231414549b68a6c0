"""The comparison table: our reproductions (from MLflow) beside the paper.

`collect(client, experiment)` reads every cell's parent run and its nested
seed runs; `write_results(...)` renders `README.md` and `results.csv`
(plus one learning-curve PNG per run cell) into a folder. `pepita results`
is the CLI front end.

A seed counts towards "ours" only when it completed all the config's
epochs (`pepita.complete` tag) and its cell ran with exactly the training
settings of the shipped config (same settings digest); seeds still running
or killed are reported as partial, with the epoch they reached; diverged
seeds (`pepita.diverged`) are reported as "diverged (k of n seeds)" and never
averaged. Runs of a cell with other settings (e.g. `--epochs 1`, a changed
learning rate) are listed separately, with what differs, and not counted.

`write_results` refuses to replace a table with one that has fewer
completed seeds (e.g. when pointed at an empty store) unless `force=True`.

Collecting (`records.py`: MLflow → typed `CellResult`s) and rendering
(`render.py`: Markdown, CSV, plots) are separate modules; this package
exposes both.
"""

from pepita_keras.results.records import (TOLERANCE_POINTS, TOLERANCE_SIGMAS, CellResult,
                                          OtherRun, collect, differences_text,
                                          shipped_configs, table_order)
from pepita_keras.results.render import (DEFAULT_OUTPUT, NOT_RUN, NOT_RUN_CIFAR,
                                         ShrinkingResultsError, completed_seeds_in_table,
                                         readme_block, table_rows, update_readme,
                                         write_results)

__all__ = ["CellResult", "DEFAULT_OUTPUT", "NOT_RUN", "NOT_RUN_CIFAR", "OtherRun",
           "ShrinkingResultsError", "TOLERANCE_POINTS", "TOLERANCE_SIGMAS", "collect",
           "completed_seeds_in_table", "differences_text", "shipped_configs", "table_order",
           "readme_block", "table_rows", "update_readme", "write_results"]
