#!/usr/bin/env bash
# Every GPU measurement of issue #13 in one run on the device machine (one NVIDIA GPU), about 6 minutes.
# Prepared and dry-run on CPU (DEVICE=cpu) so that a session lent a GPU spends its minutes measuring.
#
# On the device machine, from the repository root, with .whl carried (benchmarks/gpu/fetch_wheels.sh):
#     bash benchmarks/gpu/run_checks.sh            # results as JSON lines and logs under $OUT
# Dry run here:
#     DEVICE=cpu OUT=/tmp/gpu_checks STAGES="train reconstruct" TRAIN_ARGS="--steps 4" bash benchmarks/gpu/run_checks.sh
#     DEVICE=cpu OUT=/tmp/gpu_checks STAGES=study STUDY_ARGS="EPOCHS=1" bash benchmarks/gpu/run_checks.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu_checks}
DEVICE=${DEVICE:-cuda}
STAGES=${STAGES:-"train reconstruct study"}
STUDY_ARGS=${STUDY_ARGS:-}  # extra make variables for the study stage, e.g. "EPOCHS=1" for a dry run
STUDY_TIMEOUT=${STUDY_TIMEOUT:-300}  # seconds; the target is 60, the previous release took 225
TRAIN_ARGS=${TRAIN_ARGS:-"--precision 32-true bf16-mixed --channels-last --steps 20"}  # bench_train settings
PY=${PY:-python3}
THREADS=$(nproc)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# The carried wheels, only where jsonschema or Dask is missing (the device machine; not a set-up venv).
if ! "$PY" -c "import jsonschema, dask.distributed" 2> /dev/null && compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed" >&2; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$(ls -d "$PWD"/packages/*/src | paste -sd:)${PYTHONPATH:+:$PYTHONPATH}
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1; nproc;
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'; } | tee "$OUT/machine.txt"

for stage in $STAGES; do
  case $stage in
  train)  # patterns/s and share of the fp32 matmul rate, default and larger batches, fp32 and bf16-mixed
    timeout 150 "$PY" benchmarks/bench_train.py --device "$DEVICE" --threads "$THREADS" --backend torch \
        $TRAIN_ARGS --workdir /tmp/bench_train 2>&1 \
        | grep -v '^USDT' | tee "$OUT/train.jsonl" ;;
  reconstruct)  # predict, stitch (on the device) and score one 1,299-pattern split, gs1 and gs2
    timeout 150 "$PY" benchmarks/bench_reconstruct.py --device "$DEVICE" --threads "$THREADS" --repeat 3 \
        --workdir /tmp/bench_reconstruct 2>&1 | grep -v '^USDT' | tee "$OUT/reconstruct.jsonl" ;;
  study)  # the full default study from make (Phase C, D, 15 jobs on Dask workers, evaluation, report, Phase F, G)
    bin=/tmp/fly64-bin; mkdir -p "$bin"
    for tool in fly64-data:fly64_data fly64-overlap:fly64_overlap fly64-train:fly64_train fly64-manifest:fly64_manifest \
                fly64-iterative:fly64_iterative fly64-compare:fly64_compare; do
        printf '#!/bin/sh\nexec %s -c "import sys; from %s.cli import main; sys.exit(main())" "$@"\n' \
            "$(command -v "$PY")" "${tool#*:}" > "$bin/${tool%%:*}"
        chmod +x "$bin/${tool%%:*}"
    done
    touch /tmp/fly64-stamp
    root=/tmp/fly64-study; rm -rf "$root"
    start=$(date +%s%N)
    if command -v make > /dev/null; then
        timeout "$STUDY_TIMEOUT" make study ROOT="$root" BIN="$bin" STAMP=/tmp/fly64-stamp WORKERS=auto $STUDY_ARGS \
            > "$OUT/study.log" 2>&1
    else  # the Makefile's study recipe, spelled out
        timeout "$STUDY_TIMEOUT" sh -c "'$bin/fly64-data' generate --output-root '$root/phase_c' &&
            '$bin/fly64-overlap' --phase-c-root '$root/phase_c' --output-root '$root/phase_d' --spacing-basis probe --match-positions sparse &&
            '$bin/fly64-train' run --phase-c-root '$root/phase_c' --phase-d-root '$root/phase_d' \
                --artifact-root '$root/phase_e' --backend torch --executor dask --workers auto &&
            '$bin/fly64-train' report --artifact-root '$root/phase_e' --output '$root/report' &&
            '$bin/fly64-iterative' run --phase-c-root '$root/phase_c' --phase-d-root '$root/phase_d' \
                --artifact-root '$root/phase_f' &&
            '$bin/fly64-compare' run --phase-e-root '$root/phase_e' --phase-f-root '$root/phase_f' \
                --output '$root/compare'" > "$OUT/study.log" 2>&1
    fi
    rc=$?
    end=$(date +%s%N)
    echo "{\"stage\": \"study\", \"rc\": $rc, \"wall_ms\": $(( (end - start) / 1000000 ))}" | tee "$OUT/study.json"
    tail -5 "$OUT/study.log"
    cp "$root/report/report.md" "$OUT/report.md" 2>/dev/null
    "$bin/fly64-manifest" verify "$root" > "$OUT/verify.txt" 2>&1; echo "verify rc $?" | tee -a "$OUT/verify.txt" ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
