"""What `pepita tune-report` runs: the best trials of every search, read back from MLflow.

Reads only the store (MLflow), never Keras, TensorFlow or keras-tuner, so
the report answers in a few seconds.

```
pepita tune-report                      # → reproductions/results/tuning.md
pepita tune-report --output - --top 3   # print only
```
"""

import datetime
import pathlib
import re
import sys
import time

from pepita_keras.store import safe_files, tracking, untrusted

DEFAULT_REPORT = pathlib.Path("reproductions") / "results" / "tuning.md"
# What `pepita tune` writes as a search id (keras-tuner project + digest).
_SEARCH_ID = re.compile(r"[A-Za-z0-9_.\-]{1,200}")


def collect_searches(experiment=None, include_smoke=False, top=5, tracking_uri=None):
    """Reads the searches and their trials back from MLflow.

    Returns:
        A list of dicts, newest search first: `name`, `search_id`, `params`,
        `tags`, `best_objective`, `objective`, `trials` (completed, best
        first: `trial_id`, `objective` (keras-tuner's score: the best epoch),
        `final` (the objective's metric at the last epoch), `params`,
        `run_id`), `counts` (trials per status), `wall_s`, `command`.
    """

    client = tracking.read_client(tracking_uri)
    found = client.get_experiment_by_name(experiment or tracking.TUNING_EXPERIMENT)
    if found is None:
        return []
    experiment_id = found.experiment_id
    parents = client.search_runs(
        [experiment_id], "tags.`pepita.role` = 'search'", max_results=1000,
        order_by=["attributes.start_time DESC"],
    )
    searches = []
    for parent in parents:
        params = parent.data.params
        if params.get("smoke") == "True" and not include_smoke:
            continue
        tags = parent.data.tags
        search_id = tags.get("pepita.search_id", "")
        if not _SEARCH_ID.fullmatch(search_id):
            # Store text is data: it never goes into a filter string unchecked.
            print(f"pepita tune-report: skipped search run {parent.info.run_id}: its "
                  f"pepita.search_id {untrusted.display_text(search_id, 60)!r} is not a search "
                  "id (letters, digits, '-', '_', '.').", file=sys.stderr)
            continue
        runs = client.search_runs(
            [experiment_id],
            f"tags.`pepita.search_id` = '{search_id}' and tags.`pepita.role` = 'trial'",
            max_results=5000,
        )
        maximize = tags.get("pepita.objective_direction", "max") == "max"
        counts = {}
        completed = []
        for run in runs:
            status = run.data.tags.get("pepita.trial_status", "UNKNOWN")
            counts[status] = counts.get(status, 0) + 1
            if status == "COMPLETED" and "objective" in run.data.metrics:
                completed.append({
                    "trial_id": run.data.tags.get("pepita.trial_id"),
                    "objective": run.data.metrics["objective"],
                    "params": run.data.params,
                    "run_id": run.info.run_id,
                    "best": run.data.tags.get("pepita.best_trial") == "true",
                })
        completed.sort(key=lambda t: t["objective"], reverse=maximize)
        objective_name = tags.get("pepita.objective", "objective")
        for trial in completed[:top]:
            # keras-tuner scores a trial by its best epoch; a trial that peaks
            # and then degrades shows only in its last epoch.
            history = tracking.metric_histories(client, trial["run_id"], [objective_name])
            values = history.get(objective_name) or []
            trial["final"] = values[-1] if values else None
        end = parent.info.end_time or int(time.time() * 1000)
        searches.append({
            "name": parent.info.run_name,
            "search_id": search_id,
            "run_id": parent.info.run_id,
            "status": parent.info.status,
            "params": params,
            "tags": tags,
            "objective": tags.get("pepita.objective", "objective"),
            "best_objective": completed[0]["objective"] if completed else None,
            "trials": completed[:top],
            "counts": counts,
            "wall_s": (end - parent.info.start_time) / 1000,
            "started": datetime.datetime.fromtimestamp(
                parent.info.start_time / 1000, datetime.timezone.utc
            ).strftime("%Y-%m-%d %H:%M UTC"),
            "command": tags.get("command", ""),
        })
    return searches


_SETTINGS = ("rule", "architecture", "dataset", "tuner", "epochs", "train_examples",
             "val_examples", "seed")


def format_report(searches, store=None):
    """Markdown report of `collect_searches` output.

    Args:
        searches: `collect_searches` output.
        store: the MLflow store they were read from, named in the header.
    """
    source = f"the MLflow store `{store}`" if store else "MLflow"
    lines = [
        "# Hyperparameter searches",
        "",
        f"Generated by `pepita tune-report` from the runs of `pepita tune` in {source} "
        "(one parent run per search, one nested run per trial). The objective is "
        "measured on a validation split held out from the *training* set; the "
        "test set is never used for the search.",
        "",
    ]
    if not searches:
        return "\n".join(lines + ["No search found in MLflow.", ""])
    lines += [
        "| search | rule | net | data | tuner | trials | best objective | wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # Everything below comes from the store: inert text only (`untrusted.display_text`).
    t = untrusted.display_text
    for s in searches:
        p = {key: t(value) for key, value in s["params"].items()}
        done = s["counts"].get("COMPLETED", 0)
        total = sum(s["counts"].values())
        best = "—" if s["best_objective"] is None else f"{s['best_objective']:.4f}"
        lines.append(
            f"| {t(s['name'])} | {p.get('rule', '?')} | {p.get('architecture', '?')} | "
            f"{p.get('dataset', '?')} | {p.get('tuner', '?')} | {done}/{total} completed | "
            f"{t(s['objective'])} = {best} | {s['wall_s'] / 60:.1f} min |"
        )
    for s in searches:
        p = {key: t(value) for key, value in s["params"].items()}
        lines += ["", f"## {t(s['name'])}", ""]
        settings = ", ".join(f"{k}={p[k]}" for k in _SETTINGS if k in p)
        lines.append(f"- Settings: {settings}")
        space = {k[len("space."):]: v for k, v in p.items() if k.startswith("space.")}
        if space:
            lines.append(f"- Space changes: {t(str(space))}")
        lines.append(f"- Started {s['started']}, status {t(s['status'])}, "
                     f"wall time {s['wall_s']:.0f} s, MLflow parent run `{t(s['run_id'])}`")
        lines.append(f"- Commit: `{t(s['tags'].get('git.commit', 'unknown'))}`, "
                     f"hardware: {t(s['tags'].get('hardware', 'unknown'))}")
        if s["command"]:
            lines.append(f"- Command: `{t(s['command'], 1000)}`")
        if not s["trials"]:
            lines.append("- No completed trial.")
            continue
        names = sorted({k for t in s["trials"] for k in t["params"] if not k.startswith("tuner/")})
        lines += ["", f"| rank | trial | {t(s['objective'])} (best epoch) | last epoch | "
                  + " | ".join(t(name) for name in names) + " |",
                  "|---|---|---|---|" + "---|" * len(names)]
        for rank, trial in enumerate(s["trials"], start=1):
            values = " | ".join(t(_short(trial["params"].get(n, ""))) for n in names)
            mark = " (best)" if trial["best"] else ""
            final = "—" if trial.get("final") is None else f"{trial['final']:.4f}"
            lines.append(f"| {rank} | {t(trial['trial_id'])}{mark} | {trial['objective']:.4f} | "
                         f"{final} | {values} |")
    lines.append("")
    return "\n".join(lines)


def _short(text):
    try:
        number = float(text)
    except (TypeError, ValueError):
        return str(text)
    if number == int(number) and "." not in str(text) and "e" not in str(text):
        return str(text)
    return f"{number:.4g}"


class ShrinkingReportError(ValueError):
    """Raised instead of replacing a report with one that lacks some of its searches."""


def reported_searches(path):
    """`{MLflow parent run id: search name}` of the searches an existing report lists."""
    path = pathlib.Path(path)
    if not path.is_file():
        return {}
    found, name = {}, None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
        match = re.search(r"MLflow parent run `([0-9a-f]+)`", line)
        if match:
            found[match.group(1)] = name
    return found


def write_report(output=DEFAULT_REPORT, experiment=None, include_smoke=False, top=5,
                 tracking_uri=None, force=False):
    """Builds the report; writes it to `output` unless `output` is None or '-'.

    Args:
        output: markdown file to write, or None / `"-"` for none.
        experiment: MLflow experiment (default `tracking.TUNING_EXPERIMENT`).
        include_smoke: also list `--smoke` searches.
        top: trials listed per search.
        tracking_uri: the store to read.
        force: replace `output` even if it lists searches the store lacks.

    Returns:
        The markdown text.

    Raises:
        ShrinkingReportError: if `output` lists searches (by MLflow run id)
            that this store does not hold and `force` is False; nothing is
            written (the report would lose them).
    """
    searches = collect_searches(experiment, include_smoke, top, tracking_uri)
    store = tracking.named_uri(tracking_uri)
    text = format_report(searches, store)
    if output not in (None, "-"):
        path = pathlib.Path(output)
        found = {s["run_id"] for s in searches}
        missing = {run_id: name for run_id, name in reported_searches(path).items()
                   if run_id not in found}
        if missing and not force:
            names = ", ".join(sorted(set(missing.values())))
            raise ShrinkingReportError(
                f"Refusing to overwrite {path}: it lists {len(missing)} search(es) whose MLflow "
                f"runs are not in the store {store} ({names}). "
                "Point --tracking-uri at the store those searches are in (the committed one is "
                f"sqlite:///{tracking.COMMITTED_STORE}), write elsewhere with --output, or "
                "pass --force to drop them."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        safe_files.write_atomic(path, text)
    return text
