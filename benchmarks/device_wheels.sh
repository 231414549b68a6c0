#!/usr/bin/env bash
# Downloads into .whl/ the wheels that the GPU machine (Python 3.12, JAX, no TensorFlow, no Keras, no MLflow,
# no internet) needs to run benchmarks/device_session.sh: Keras and what `pepita reproduce` imports of MLflow
# with a SQLite store, minus what its image already holds (../shared/device/README.md lists that). 24 MB.
# Run once in the checkout's root, on any machine with pip and PyPI access:
#   bash benchmarks/device_wheels.sh && echo /.whl/ >> .git/info/exclude
set -eu
platforms="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_34_x86_64"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $platforms \
  -d .whl keras==3.15.1 namex optree mlflow-skinny==3.17.2 mlflow-tracing==3.17.2 sqlalchemy==2.1.9 \
  alembic==1.20.1 mako==1.4.3 cachetools==7.3.3 databricks-sdk==0.162.0 fastapi==0.165.0 gitpython==3.2.1 \
  gitdb==4.0.12 smmap==5.0.3 importlib_metadata==9.1.0 opentelemetry-api==1.45.2 opentelemetry-proto==1.45.2 \
  opentelemetry-sdk==1.45.2 opentelemetry-semantic-conventions==0.66b2 pydantic==2.14.4 pydantic-core==2.50.5 \
  annotated-types==0.8.0 typing-inspection==0.4.5 python-dotenv==1.2.4 sqlparse==0.6.1 starlette==1.10.0 \
  uvicorn==0.54.0 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12
du -sh .whl
