#!/usr/bin/env bash
# GPU validation in one prepared run (issue 13). On a GPU machine with the tree and nothing
# else (torch, CuPy, pytest installed; DALI optional):
#
#     OUT=DIR bash bench/gpu-check.sh             # the real run, <= ~8 minutes
#     OUT=DIR bash bench/gpu-check.sh --dry-run   # a CPU-only machine: GPU steps skipped (CI)
#
# Steps, in this order so that a time-out still leaves the first results:
#   env, doctor, pytest -m gpu, memcheck, bench host / roofline / augment (GPU rows),
#   ResNet-50 step ratio, augment CPU baselines, DALI tests + loader (only if DALI imports),
#   then the report: OUT/GPU-VALIDATION.md (and bench/results/GPU-VALIDATION.md on a real run).
# Steps write into a scratch folder; OUT holds four files, rewritten after every step (the
# device tool returns at most 8): log (everything printed), steps.jsonl (one line per step),
# results.tar (every step's log and JSON) and, at the end, GPU-VALIDATION.md. Every step has
# a time budget, and the whole run a budget of BUDGET_S seconds (default 470).
set -uo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "gpu-check.sh: unknown argument $arg (use --dry-run or --help)" >&2; exit 2 ;;
    esac
done
OUT=${OUT:-runs/gpu-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
BUDGET_S=${BUDGET_S:-470}
PY=${PYTHON:-python3}
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
START=$(date +%s)
: > "$WORK/steps.jsonl"
: > "$OUT/log"

if [ "$DRY_RUN" = 0 ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu-check.sh: torch sees no CUDA device; run with --dry-run on a CPU-only machine" >&2
    exit 2
fi
GPU_REASON="dry run: no GPU on this machine"

record() {  # name status seconds reason log
    "$PY" - "$@" >> "$WORK/steps.jsonl" <<'EOF'
import json, sys
name, status, seconds, reason, log = sys.argv[1:6]
print(json.dumps({"name": name, "status": status, "seconds": float(seconds), "reason": reason, "log": log}))
EOF
    printf '== %-22s %-8s %5ss  %s\n' "$1" "$2" "$3" "$4" | tee -a "$OUT/log"
    cp "$WORK/steps.jsonl" "$OUT/steps.jsonl"
    tar -C "$WORK" -cf "$OUT/results.tar" .
}

# step NAME BUDGET_S COMMAND...: run with a time budget (less if the run's budget is short).
step() {
    local name=$1 budget=$2; shift 2
    local left=$(( BUDGET_S - ($(date +%s) - START) ))
    if [ "$left" -lt 20 ]; then
        record "$name" skipped 0 "out of the run's time budget (${BUDGET_S}s)" ""
        return
    fi
    [ "$budget" -gt "$left" ] && budget=$left
    local t0=$(date +%s) rc
    echo "== $name: $*" >> "$OUT/log"
    timeout --kill-after=10 "$budget" "$@" > "$WORK/$name.log" 2>&1
    rc=$?
    cat "$WORK/$name.log" >> "$OUT/log"
    local dt=$(( $(date +%s) - t0 ))
    case $rc in
        0) record "$name" passed "$dt" "$(tail -n 1 "$WORK/$name.log" | cut -c1-200)" "$name.log" ;;
        124|137) record "$name" timeout "$dt" "stopped after ${budget}s" "$name.log" ;;
        *) record "$name" failed "$dt" "exit $rc: $(tail -n 1 "$WORK/$name.log" | cut -c1-200)" "$name.log" ;;
    esac
}

# dry STEP REASON COMMAND...: on a dry run, run the CPU form of a GPU step (to prove the command
# works) and record the step as skipped with REASON; a failing CPU form is a failure.
dry() {
    local name=$1 reason=$2; shift 2
    local t0=$(date +%s) rc
    echo "== $name (dry run): $*" >> "$OUT/log"
    timeout --kill-after=10 300 "$@" > "$WORK/$name.log" 2>&1
    rc=$?
    cat "$WORK/$name.log" >> "$OUT/log"
    local dt=$(( $(date +%s) - t0 ))
    if [ $rc = 0 ]; then
        record "$name" skipped "$dt" "$reason" "$name.log"
    else
        record "$name" failed "$dt" "dry-run form failed, exit $rc: $(tail -n 1 "$WORK/$name.log" | cut -c1-200)" "$name.log"
    fi
}

# ---------------------------------------------------------------- env
"$PY" - "$WORK/env.json" "$*" <<'EOF' > "$WORK/env.log" 2>&1
import json, subprocess, sys, datetime, platform, importlib
def version(m):
    try:
        return getattr(importlib.import_module(m), "__version__", "?")
    except Exception as e:
        return f"missing ({type(e).__name__})"
env = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "command": ("bash bench/gpu-check.sh " + sys.argv[2]).strip(),
       "versions": {"python": platform.python_version(), **{m: version(m) for m in
                    ("gpuaug", "torch", "torchvision", "cupy", "numpy", "PIL", "nvidia.dali")}}}
try:
    import torch
    env["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)"
    env["torch_cuda"] = torch.version.cuda
except Exception as e:
    env["device"] = f"unknown ({e})"
try:
    env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,memory.total", "--format=csv,noheader"],
                                   capture_output=True, text=True, timeout=20).stdout.strip() or "n/a"
except Exception:
    env["driver"] = "n/a (no nvidia-smi)"
try:
    env["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or "n/a"
except Exception:
    env["git"] = "n/a"
json.dump(env, open(sys.argv[1], "w"), indent=1)
print(json.dumps(env, indent=1))
EOF
ENV_LINE=$("$PY" -c "import json,sys; e=json.load(open(sys.argv[1])); print(e['device'], '| torch', e['versions']['torch'], '| cupy', e['versions']['cupy'], '| dali', e['versions']['nvidia.dali'])" "$WORK/env.json" 2>/dev/null)
record env "$( [ -n "$ENV_LINE" ] && echo passed || echo failed )" 0 "${ENV_LINE:-env.json not written}" env.log
HAVE_DALI=0
"$PY" -c "import nvidia.dali" 2>/dev/null && HAVE_DALI=1

# ---------------------------------------------------------------- doctor
if "$PY" -c "import gpuaug.doctor" 2>/dev/null; then
    step doctor 90 "$PY" -m gpuaug.doctor --json "$WORK/doctor.json"   # CPU-only: an honest partial report
else
    record doctor skipped 0 "gpuaug.doctor is not in this tree" ""
fi

# ---------------------------------------------------------------- GPU tests
if [ "$DRY_RUN" = 1 ]; then
    dry pytest-gpu "$GPU_REASON (the -m gpu tests were collected)" "$PY" -m pytest -m gpu --collect-only -q -p no:cacheprovider
    dry memcheck "$GPU_REASON (the workload ran on the cpu executor)" "$PY" -m bench.gpu_memcheck --executor cpu
else
    step pytest-gpu 170 "$PY" -m pytest -m gpu -q -p no:cacheprovider --junitxml="$WORK/pytest-gpu.xml"
    if command -v compute-sanitizer >/dev/null; then
        step memcheck 90 compute-sanitizer --tool memcheck --error-exitcode 1 --print-limit 20 \
            "$PY" -m bench.gpu_memcheck --executor cuda
    else
        record memcheck skipped 0 "compute-sanitizer not on PATH" ""
    fi
fi

# ---------------------------------------------------------------- benchmarks (GPU rows first)
BENCH=("$PY" -m bench --size full --batches 256 --image-sizes 224,32 --quiet)
if [ "$DRY_RUN" = 1 ]; then
    dry bench-host "$GPU_REASON (host suite at smoke size)" "$PY" -m bench --suite host --size smoke --quiet \
        --out "$WORK" --name bench-host
else
    step bench-host 60 "${BENCH[@]}" --suite host --out "$WORK" --name bench-host
    step bench-roofline 70 "${BENCH[@]}" --suite roofline --out "$WORK" --name bench-roofline
    step bench-augment-gpu 70 "${BENCH[@]}" --suite augment --impls ours-cuda,tv2-cuda-batch \
        --repeats 5 --warmup 2 --out "$WORK" --name bench-augment-gpu
fi

# ---------------------------------------------------------------- ResNet-50 with and without IPMix + JSD
if [ "$DRY_RUN" = 1 ]; then
    dry step-ratio "$GPU_REASON (2 CPU steps of resnet18 at 32 px)" "$PY" -m bench.step_ratio --device cpu \
        --arch resnet18 --steps 2 --warmup 1 --batch 4 --image-size 32 --mixing-count 4 --out "$WORK/step-ratio.json"
else
    step step-ratio 120 "$PY" -m bench.step_ratio --method ipmix --jsd --steps 200 --warmup 20 --batch 256 \
        --out "$WORK/step-ratio.json"
    # The CPU side of the side-by-side ratios (all cores of this machine), after the GPU figures.
    step bench-augment-cpu 90 "${BENCH[@]}" --suite augment --impls ours-cpu-workers,reference-dlall,tv2-cpu-dlall \
        --repeats 2 --warmup 1 --out "$WORK" --name bench-augment-cpu
fi

# ---------------------------------------------------------------- DALI (last: dropped first when short)
if [ "$HAVE_DALI" = 0 ]; then
    record dali skipped 0 "nvidia.dali is not importable (bring it in parts: shared/device/README.md)" ""
elif [ "$DRY_RUN" = 1 ]; then
    record dali skipped 0 "$GPU_REASON" ""
else
    step dali-tests 90 "$PY" -m pytest tests/test_dali_gpu.py -q -p no:cacheprovider
    step bench-loader 90 "${BENCH[@]}" --suite loader --out "$WORK" --name bench-loader
fi

# ---------------------------------------------------------------- report
REPORT=("$PY" -m bench.gpu_report "$WORK")
[ "$DRY_RUN" = 1 ] && REPORT+=(--dry-run)
"${REPORT[@]}" | tee -a "$OUT/log"
cp "$WORK/GPU-VALIDATION.md" "$OUT/GPU-VALIDATION.md"
[ "$DRY_RUN" = 1 ] || cp "$WORK/GPU-VALIDATION.md" bench/results/GPU-VALIDATION.md
tar -C "$WORK" -cf "$OUT/results.tar" .
failed=$(grep -c '"status": "failed"' "$WORK/steps.jsonl")
echo "gpu-check: $(wc -l < "$WORK/steps.jsonl") steps, $failed failed, $(( $(date +%s) - START ))s; report: $OUT/GPU-VALIDATION.md, all results in $OUT/results.tar" | tee -a "$OUT/log"
rm -rf "$WORK"
[ "$failed" = 0 ]
