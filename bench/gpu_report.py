"""Write ``GPU-VALIDATION.md`` from a ``bench/gpu-check.sh`` output folder
(``python -m bench.gpu_report OUT_DIR [--copy-to bench/results/GPU-VALIDATION.md]``).

Reads ``steps.jsonl`` (one line per step: name, status, seconds, reason, log) and the JSON
the steps wrote (``env.json``, ``bench-*.json``, ``step-ratio.json``, ``memcheck.json``,
``doctor.json``), and
states each goal of the GPU validation against what was measured — or why it was not.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

# Goals at 224 px, batch 256 (issue 13).
THROUGHPUT_GOALS = {"augmix": 100_000, "pixmix": 100_000, "ipmix": 60_000}
COPY_BW_GOAL = 0.30
STEP_RATIO_GOAL = 0.95
HEADLINE = (224, 256)


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_steps(out: Path) -> list[dict]:
    path = out / "steps.jsonl"
    if not path.exists():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line))
        except ValueError:
            continue
    return steps


def _bench_rows(out: Path, suite: str) -> list[dict]:
    rows = []
    for path in sorted(out.glob("bench-*.json")):
        result = _load(path) or {}
        rows += result.get("suites", {}).get(suite, {}).get("rows", [])
    return rows


def _median(stat) -> float | None:
    return stat.get("median") if isinstance(stat, dict) else None


def throughput_lines(out: Path) -> list[str]:
    size, batch = HEADLINE
    rows = {r.get("method"): r for r in _bench_rows(out, "augment")
            if r.get("impl") == "ours-cuda" and r.get("image_size") == size and r.get("batch") == batch}
    lines = []
    for method, goal in THROUGHPUT_GOALS.items():
        r = rows.get(method)
        if r is None:
            lines.append(f"| aug-only {method} img/s ({size}², b{batch}) | ≥ {goal:,} | not measured | — |")
        elif r.get("status") != "ok":
            lines.append(f"| aug-only {method} img/s ({size}², b{batch}) | ≥ {goal:,} | {r.get('status')}: "
                         f"{r.get('reason')} | — |")
        else:
            got = _median(r.get("throughput"))
            lines.append(f"| aug-only {method} img/s ({size}², b{batch}) | ≥ {goal:,} | {got:,.0f} | "
                         f"{'met' if got >= goal else 'NOT met'} |")
    return lines


def roofline_lines(out: Path) -> list[str]:
    size, batch = HEADLINE
    lines = []
    for r in _bench_rows(out, "roofline"):
        if r.get("image_size") != size or r.get("impl") != "ours-cuda":
            continue
        label = f"| {r.get('method')}: fraction of copy bandwidth for its bytes ({size}², b{batch}) | ≥ {COPY_BW_GOAL:.0%} |"
        if r.get("status") != "ok":
            lines.append(f"{label} {r.get('status')}: {r.get('reason')} | — |")
            continue
        got = _median(r.get("compulsory_fraction_of_copy_bw"))
        traced = _median(r.get("fraction_of_copy_bw"))
        lines.append(f"{label} {got:.1%} of the minimum bytes ({traced:.1%} of traced bytes) | "
                     f"{'met' if got >= COPY_BW_GOAL else 'NOT met'} |")
    return lines or [f"| fraction of copy bandwidth ({size}², b{batch}) | ≥ {COPY_BW_GOAL:.0%} | not measured | — |"]


def step_ratio_line(out: Path) -> str:
    result = _load(out / "step-ratio.json")
    label = f"| ResNet-50 step rate with IPMix + JSD / without | ≥ {STEP_RATIO_GOAL:.0%} |"
    if not result:
        return f"{label} not measured | — |"
    ratio = result.get("ratio")
    if ratio is None:  # stopped after its first half
        done = ", ".join(f"{name} {r['steps_per_s']:.2f} steps/s" for name, r in result.get("runs", {}).items())
        return f"{label} partial: {done or 'no run finished'}; the other half did not finish | — |"
    on_gpu = str(result.get("settings", {}).get("device", "")).startswith("cuda")
    verdict = ("met" if ratio >= STEP_RATIO_GOAL else "NOT met") if on_gpu else "CPU smoke only: not a figure"
    return f"{label} {ratio:.1%} ({result['settings'].get('arch')}, batch {result['settings'].get('batch')}) | {verdict} |"


def memcheck_line(steps: list[dict], out: Path | None = None) -> str:
    """Clean only when the step passed and the sanitizer's verdict (``memcheck.json``,
    written by ``bench.gpu_memcheck --sanitize``) says so; a time-out reads "timed out"."""
    step = next((s for s in steps if s["name"] == "memcheck"), None)
    label = "| compute-sanitizer memcheck, every gpuaug kernel | clean |"
    if step is None:
        return f"{label} not run | — |"
    found = (_load(out / "memcheck.json") if out is not None else None) or {}
    if step["status"] == "timeout" or found.get("verdict") == "timed out":
        return f"{label} timed out: {step.get('reason') or found.get('detail')} | — |"
    if step["status"] == "passed" and found.get("verdict") == "clean":
        return f"{label} clean (0 errors) | met |"
    if found.get("verdict") == "errors":
        return f"{label} {found.get('errors')} error(s): see memcheck.log | NOT met |"
    if step["status"] == "passed":  # passed, but no clean verdict written
        return f"{label} no verdict in memcheck.json | — |"
    return f"{label} {step['status']}: {step.get('reason') or 'see log'} | {'NOT met' if step['status'] == 'failed' else '—'} |"


def render(out: Path, dry_run: bool) -> str:
    env = _load(out / "env.json") or {}
    steps = read_steps(out)
    lines = ["# GPU validation", ""]
    if dry_run:
        lines += ["**Dry run** on a machine without a GPU: every GPU step is reported as skipped with its",
                  "reason; the commands that can run here did, to prove the script works. No figure below",
                  "is a GPU figure.", ""]
    lines += [f"- date: {env.get('date', '?')}",
              f"- device: {env.get('device', '?')}",
              f"- driver: {env.get('driver', '?')}",
              f"- versions: {', '.join(f'{k} {v}' for k, v in env.get('versions', {}).items()) or '?'}",
              f"- git: {env.get('git', '?')}",
              f"- command: `{env.get('command', 'bash bench/gpu-check.sh')}`", "",
              "## Steps", "", "| step | status | seconds | detail |", "|---|---|---|---|"]
    for s in steps:
        detail = (s.get("reason") or "").replace("|", "/")
        log = f" (`{s['log']}`)" if s.get("log") else ""
        lines.append(f"| {s['name']} | {s['status']} | {s.get('seconds', 0):.0f} | {detail}{log} |")
    lines += ["", "## Goals (224², batch 256)", "", "| goal | target | measured | verdict |", "|---|---|---|---|"]
    lines += throughput_lines(out) + roofline_lines(out) + [step_ratio_line(out), memcheck_line(steps, out)]
    lines += ["", "Raw results: `results.tar` next to this file (every step's log and JSON); `log`: all output.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_report", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the gpu-check output folder")
    p.add_argument("--dry-run", action="store_true", help="say that no GPU ran")
    p.add_argument("--copy-to", default=None, help="also copy the report here")
    args = p.parse_args(argv)
    out = Path(args.out)
    text = render(out, args.dry_run)
    (out / "GPU-VALIDATION.md").write_text(text)
    print(f"wrote {out / 'GPU-VALIDATION.md'}")
    if args.copy_to:
        Path(args.copy_to).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "GPU-VALIDATION.md", args.copy_to)
        print(f"wrote {args.copy_to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
