#!/usr/bin/env bash
# GPU validation in one prepared run (issue 13). On a GPU machine with the tree and nothing
# else (torch, CuPy, pytest installed; DALI optional):
#
#     OUT=DIR bash bench/gpu-check.sh             # the real run, <= ~8 minutes
#     OUT=DIR bash bench/gpu-check.sh --dry-run   # a CPU-only machine: GPU steps skipped (CI)
#     bash bench/gpu-check.sh --plan              # the steps in order, their budgets, the sum
#
# Steps, by value, so that a time-out still leaves the results that matter most (STEPS):
#   env, doctor, ResNet-50 step ratio, bench augment (GPU rows), pytest -m gpu, roofline,
#   memcheck, bench host, augment CPU baselines, DALI tests + loader (only if DALI imports),
#   then the report: OUT/GPU-VALIDATION.md (and bench/results/GPU-VALIDATION.md on a real run).
# Steps write into a scratch folder; OUT holds four files, rewritten after every step (the
# device tool returns at most 8): log (everything printed), steps.jsonl (one line per step),
# results.tar (every step's log and JSON) and, at the end, GPU-VALIDATION.md. Every step has
# a time budget; they add up, with RESERVE_S for env and the report, to no more than the
# run's budget BUDGET_S (default 470), or the script refuses to start.
set -uo pipefail
cd "$(dirname "$0")/.."

# The steps after env, in the order they run, with their time budgets in seconds.
STEPS=(
    doctor:40
    step-ratio:70
    bench-augment-gpu:55
    pytest-gpu:100
    bench-roofline:40
    memcheck:50
    bench-host:25
    bench-augment-cpu:30
    dali-tests:20
    bench-loader:20
)
RESERVE_S=20  # env, the bookkeeping between steps, the report
BUDGET_S=${BUDGET_S:-470}

DRY_RUN=0 PLAN=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        --plan) PLAN=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "gpu-check.sh: unknown argument $arg (use --dry-run, --plan or --help)" >&2; exit 2 ;;
    esac
done

if ! [[ "$BUDGET_S" =~ ^[0-9]+$ ]]; then
    echo "gpu-check.sh: BUDGET_S must be whole seconds, got '$BUDGET_S'" >&2
    exit 2
fi
TOTAL_S=$RESERVE_S
for entry in "${STEPS[@]}"; do
    TOTAL_S=$(( TOTAL_S + ${entry##*:} ))
done
if [ "$PLAN" = 1 ]; then
    for entry in "${STEPS[@]}"; do
        printf '%-20s %4s s\n' "${entry%%:*}" "${entry##*:}"
    done
    printf '%-20s %4s s\n%-20s %4s s of BUDGET_S=%s s\n' reserve "$RESERVE_S" total "$TOTAL_S" "$BUDGET_S"
fi
if [ "$TOTAL_S" -gt "$BUDGET_S" ]; then
    echo "gpu-check.sh: the step budgets and the ${RESERVE_S}s reserve add up to ${TOTAL_S}s, more than the" \
         "run's budget BUDGET_S=${BUDGET_S}s: the last steps would never run; shorten them in STEPS" >&2
    exit 2
fi
[ "$PLAN" = 1 ] && exit 0

OUT=${OUT:-runs/gpu-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
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

# step NAME BUDGET_S COMMAND...: run with a time budget (less if the run's budget is short);
# exit 77 is a skip (the command says why on its last line). A dry run proves commands
# work, on a CPU that may be busy: there every command gets DRY_BUDGET_S.
DRY_BUDGET_S=300
step() {
    local name=$1 budget=$2; shift 2
    local left=$(( BUDGET_S - ($(date +%s) - START) ))
    if [ "$DRY_RUN" = 1 ]; then
        budget=$DRY_BUDGET_S
    elif [ "$left" -lt 20 ]; then
        record "$name" skipped 0 "out of the run's time budget (${BUDGET_S}s)" ""
        return
    elif [ "$budget" -gt "$left" ]; then
        budget=$left
    fi
    local t0=$(date +%s) rc
    echo "== $name: $*" >> "$OUT/log"
    timeout --kill-after=10 "$budget" "$@" > "$WORK/$name.log" 2>&1
    rc=$?
    cat "$WORK/$name.log" >> "$OUT/log"
    local dt=$(( $(date +%s) - t0 ))
    case $rc in
        0) record "$name" passed "$dt" "$(tail -n 1 "$WORK/$name.log" | cut -c1-200)" "$name.log" ;;
        124|137) record "$name" timeout "$dt" "stopped after ${budget}s" "$name.log" ;;
        77) record "$name" skipped "$dt" "$(tail -n 1 "$WORK/$name.log" | cut -c1-200)" "$name.log" ;;
        *) record "$name" failed "$dt" "exit $rc: $(tail -n 1 "$WORK/$name.log" | cut -c1-200)" "$name.log" ;;
    esac
}

# dry STEP REASON COMMAND...: on a dry run, run the CPU form of a GPU step (to prove the command
# works) and record the step as skipped with REASON; a failing CPU form is a failure.
dry() {
    local name=$1 reason=$2; shift 2
    local t0=$(date +%s) rc
    echo "== $name (dry run): $*" >> "$OUT/log"
    timeout --kill-after=10 "$DRY_BUDGET_S" "$@" > "$WORK/$name.log" 2>&1
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

# ---------------------------------------------------------------- the steps (one function each)
BENCH=("$PY" -m bench --size full --batches 256 --image-sizes 224,32 --quiet)

run_doctor() {
    if "$PY" -c "import gpuaug.doctor" 2>/dev/null; then
        step doctor "$1" "$PY" -m gpuaug.doctor --json "$WORK/doctor.json"   # CPU-only: an honest partial report
    else
        record doctor skipped 0 "gpuaug.doctor is not in this tree" ""
    fi
}

run_step_ratio() {  # ResNet-50 with and without IPMix + JSD; the JSON is written after each half
    if [ "$DRY_RUN" = 1 ]; then
        dry step-ratio "$GPU_REASON (2 CPU steps of resnet18 at 32 px)" "$PY" -m bench.step_ratio --device cpu \
            --arch resnet18 --steps 2 --warmup 1 --batch 4 --image-size 32 --mixing-count 4 --out "$WORK/step-ratio.json"
    else
        step step-ratio "$1" "$PY" -m bench.step_ratio --method ipmix --jsd --steps 40 --warmup 5 --batch 256 \
            --out "$WORK/step-ratio.json"
    fi
}

run_bench_augment_gpu() {
    if [ "$DRY_RUN" = 1 ]; then
        record bench-augment-gpu skipped 0 "$GPU_REASON" ""
    else
        step bench-augment-gpu "$1" "${BENCH[@]}" --suite augment --impls ours-cuda,tv2-cuda-batch \
            --repeats 5 --warmup 2 --out "$WORK" --name bench-augment-gpu
    fi
}

run_pytest_gpu() {
    if [ "$DRY_RUN" = 1 ]; then
        dry pytest-gpu "$GPU_REASON (the -m gpu tests were collected)" "$PY" -m pytest -m gpu --collect-only -q \
            -p no:cacheprovider
    else
        step pytest-gpu "$1" "$PY" -m pytest -m gpu -q -p no:cacheprovider --junitxml="$WORK/pytest-gpu.xml"
    fi
}

run_bench_roofline() {
    if [ "$DRY_RUN" = 1 ]; then
        record bench-roofline skipped 0 "$GPU_REASON" ""
    else
        step bench-roofline "$1" "${BENCH[@]}" --suite roofline --out "$WORK" --name bench-roofline
    fi
}

run_memcheck() {  # CuPy only, gpuaug's kernels only; its verdict in memcheck.json
    if [ "$DRY_RUN" = 1 ]; then
        dry memcheck "$GPU_REASON (the workload launched every kernel on the emulated backend)" \
            "$PY" -m bench.gpu_memcheck --executor emulated
    else
        step memcheck "$1" "$PY" -m bench.gpu_memcheck --sanitize --timeout $(( $1 - 10 )) --json "$WORK/memcheck.json"
    fi
}

run_bench_host() {
    if [ "$DRY_RUN" = 1 ]; then
        dry bench-host "$GPU_REASON (host suite at smoke size)" "$PY" -m bench --suite host --size smoke --quiet \
            --out "$WORK" --name bench-host
    else
        step bench-host "$1" "${BENCH[@]}" --suite host --out "$WORK" --name bench-host
    fi
}

run_bench_augment_cpu() {  # the CPU side of the side-by-side ratios (all cores of this machine)
    if [ "$DRY_RUN" = 1 ]; then
        record bench-augment-cpu skipped 0 "$GPU_REASON" ""
    else
        step bench-augment-cpu "$1" "${BENCH[@]}" --suite augment --impls ours-cpu-workers,reference-dlall,tv2-cpu-dlall \
            --repeats 2 --warmup 1 --out "$WORK" --name bench-augment-cpu
    fi
}

no_dali_reason() {
    [ "$HAVE_DALI" = 0 ] && echo "nvidia.dali is not importable (bring it in parts: shared/device/README.md)" && return
    [ "$DRY_RUN" = 1 ] && echo "$GPU_REASON"
}

run_dali_tests() {
    local why; why=$(no_dali_reason)
    if [ -n "$why" ]; then record dali-tests skipped 0 "$why" ""; return; fi
    step dali-tests "$1" "$PY" -m pytest tests/test_dali_gpu.py -q -p no:cacheprovider
}

run_bench_loader() {
    local why; why=$(no_dali_reason)
    if [ -n "$why" ]; then record bench-loader skipped 0 "$why" ""; return; fi
    step bench-loader "$1" "${BENCH[@]}" --suite loader --out "$WORK" --name bench-loader
}

for entry in "${STEPS[@]}"; do
    "run_$(echo "${entry%%:*}" | tr - _)" "${entry##*:}"
done

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
