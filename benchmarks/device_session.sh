#!/usr/bin/env bash
# One session on a GPU machine without TensorFlow (Keras-JAX): the GPU benchmarks, then GPU
# reproductions of fc_mnist_pepita and conv_mnist_pepita into a fresh MLflow store, all
# written under OUT, within a time budget. Merge the store into the committed one afterwards:
#   pepita merge-store OUT/tracking.db --artifacts OUT/artifacts.tgz
#
# Usage, in the checkout's root on that machine, with the wheels folder .whl (made by
# benchmarks/device_wheels.sh) and a data folder holding mnist/ carried there
# (../shared/device/README.md has the recipe):
#   bash benchmarks/device_session.sh DATA_DIR OUT [SECONDS]
# Environment: PEPITA_GIT_COMMIT names the commit of a checkout copied without .git;
# CELLS / SEEDS override what is reproduced (default: both cells, seeds 0 1 2, breadth first);
# BENCH_ARGS / REPRODUCE_ARGS add arguments (e.g. short runs to check the script on a CPU).
set -u
data=$1 out=$2 budget=${3:-520}
deadline=$((SECONDS + budget))
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 MPLBACKEND=Agg \
  PEPITA_DATA_DIR=$data TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi -L 2>/dev/null
python3 -c "import jax, keras, mlflow; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__, 'mlflow', mlflow.__version__)" \
  2>&1 | tail -1

timeout $((budget * 2 / 5)) python3 benchmarks/jax_gpu.py --data-dir "$data" --full-runs fc_mnist_pepita --resident \
  --output "$out/gpu_benchmark.json" ${BENCH_ARGS:-} 2>&1 | grep -v -i warning | tee "$out/gpu_benchmark.log"

store=/tmp/pepita_store
mkdir -p "$store"
save_store() {  # a consistent copy of the live SQLite store, and its artifacts without model weights
  python3 -c "import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect(sys.argv[2]); s.backup(d); d.close()" \
    "$store/tracking.db" "$out/tracking.db"
  tar czf "$out/artifacts.tgz" -C "$store" --exclude=model.keras --exclude='*.h5' mlartifacts
}
for seed in ${SEEDS:-0 1 2}; do
  for cell in ${CELLS:-fc_mnist_pepita conv_mnist_pepita}; do
    left=$((deadline - SECONDS))
    [ "$left" -lt 45 ] && { echo "no time left for $cell seed $seed"; continue; }
    echo "=== $cell seed $seed ($left s left)"
    timeout "$left" python3 -m pepita_keras.cli reproduce "$cell" --seeds "$seed" \
      --run-root /tmp/pepita_runs --tracking-uri "sqlite:///$store/tracking.db" --verbose 2 \
      ${REPRODUCE_ARGS:-} > /tmp/reproduce.log 2>&1
    grep -v -i warning /tmp/reproduce.log | tee -a "$out/reproduce.log" | tail -4
    save_store
  done
done
