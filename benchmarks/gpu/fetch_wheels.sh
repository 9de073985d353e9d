#!/usr/bin/env bash
# Fetch, on the development machine, the cp312 wheels that the GPU device machine lacks (it has torch,
# lightning, numpy, scipy, scikit-image, h5py, msgpack, psutil, pyyaml, toolz, cloudpickle, ... but not
# jsonschema or Dask), at the versions constraints.txt pins. run_checks.sh installs them there.
# Usage (repository root): benchmarks/gpu/fetch_wheels.sh   -> .whl/ (ignored via .git/info/exclude)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
mkdir -p .git/info .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
NAMES="jsonschema jsonschema-specifications referencing rpds-py dask distributed partd locket tblib zict tornado"
for name in $NAMES; do
    pin=$(grep -i "^${name}==" constraints.txt) || { echo "no pin for $name in constraints.txt" >&2; exit 1; }
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d .whl "$pin"
done
ls .whl
