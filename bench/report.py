"""Plain-text tables of a bench result (printed after a run, or by ``python -m bench table``)."""

from __future__ import annotations


def _fmt(v, digits=3):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}g}"


def _table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def _throughput_cells(r):
    if r.get("status") != "ok":
        return ["-", "-"]
    t = r["throughput"]
    return [_fmt(t["median"]), f"{_fmt(t['min'])}..{_fmt(t['max'])}"]


def _cpu_cell(r):
    cpu = r.get("cpu") or {}
    if cpu.get("process_cores") is None:
        return "-"
    sys_util = cpu.get("system_util")
    return f"{cpu['process_cores']:.2f}" + (f" ({sys_util:.0%})" if sys_util is not None else "")


def caveats(result: dict) -> list[str]:
    """What the reader of a result must know before reading a number: GPU rows skipped on a
    CPU-only machine (how many, why), smoke timings that are not figures, a loaded host."""
    meta = result.get("meta", {})
    rows = [r for body in result.get("suites", {}).values() for r in body.get("rows", [])]
    notes = []
    if not (meta.get("device") or {}).get("cuda"):
        skipped = [r for r in rows if r.get("status") == "skipped"]
        gpu = [r for r in skipped if "cuda" in f"{r.get('impl')} {r.get('reason')}".lower()]
        why = sorted({r.get("reason") or "?" for r in gpu}, key=len)
        notes.append(f"CPU-only machine: {len(gpu)} GPU row(s) skipped"
                     + (f" ({why[0]})" if why else "")
                     + "; the rows and ratios below compare CPU implementations only, "
                     "nothing here measures the GPU path.")
        if len(skipped) > len(gpu):
            notes.append(f"{len(skipped) - len(gpu)} other row(s) skipped: see their reason column.")
    if result.get("size") == "smoke":
        notes.append("smoke size: tiny batches and 1-2 repeats that only check the code runs; "
                     "these timings are NOT figures -- do not quote or compare them "
                     "(figures: --size full on a quiet machine).")
    host = meta.get("host", {})
    load, cores = (host.get("loadavg_at_start") or [None])[0], host.get("cpu_cores_usable")
    if load is not None and cores and load > cores:
        notes.append(f"loaded host: load average {load:.1f} on {cores} usable cores at the start; "
                     "timings are disturbed by other work.")
    return notes


def print_caveats(result: dict, file=None) -> None:
    import sys

    for note in caveats(result):
        print(f"CAVEAT: {note}", file=file or sys.stdout)


def print_table(result: dict, file=None):
    import sys

    file = file or sys.stdout
    meta = result.get("meta", {})
    dev = meta.get("device", {})
    host = meta.get("host", {})
    print(f"gpuaug bench ({result.get('size')}) {meta.get('date')}  device: {dev.get('name')}  "
          f"cpu: {host.get('cpu_model')} x{host.get('cpu_cores_usable')}  load avg at start: "
          f"{host.get('loadavg_at_start')}", file=file)
    print_caveats(result, file)
    for suite, body in result.get("suites", {}).items():
        rows = body.get("rows", [])
        print(f"\n## {suite}", file=file)
        if suite == "roofline":
            bw = body.get("copy_bandwidth", {})
            if bw.get("status") == "ok":
                print(f"device copy bandwidth: {bw['GBps']['median']:.0f} GB/s (median)", file=file)
            else:
                print(f"device copy bandwidth: {bw.get('status')} ({bw.get('reason')})", file=file)
            table = []
            for r in rows:
                b = r.get("bytes") or {}
                per = (b.get("per_image") or {}).get("median")
                comp = b.get("compulsory_per_image")
                frac = (r.get("fraction_of_copy_bw") or {}).get("median")
                gbps = (r.get("achieved_GBps") or {}).get("median")
                table.append([r["name"], r["status"], _fmt(per / 1e6 if per else None),
                              _fmt(comp / 1e6 if comp else None), _fmt(per / comp if per and comp else None),
                              *_throughput_cells(r)[:1], _fmt(gbps), f"{frac:.1%}" if frac is not None else "-",
                              r.get("reason") or ""])
            print(_table(["name", "status", "MB/img", "compulsory MB/img", "x compulsory", "img/s", "GB/s",
                          "of copy BW", "reason"], table), file=file)
            continue
        if suite == "host":
            print("host side of the cuda executor on this CPU (device work recorded, not run)", file=file)
            table = [[r["name"], r["status"], _fmt(r.get("host_ms_per_batch")), _fmt(r.get("host_ceiling_img_s")),
                      _fmt(r.get("dali_gil_ms_per_batch")), _fmt(r.get("launches")), _fmt(r.get("uploads")),
                      _fmt(r.get("memsets")), _fmt(r.get("syncs")),
                      _fmt(r["bytes_per_image"] / 1e6 if r.get("bytes_per_image") else None),
                      _fmt(r.get("bytes_vs_min")), r.get("reason") or ""] for r in rows]
            print(_table(["name", "status", "host ms", "ceiling img/s", "DALI GIL ms", "launches", "uploads",
                          "memsets", "syncs", "MB/img", "x min", "reason"], table), file=file)
            continue
        table = [[r["name"], r["status"], *_throughput_cells(r), _cpu_cell(r), r.get("reason") or ""]
                 for r in rows]
        print(_table(["name", "status", "images/s (median)", "min..max", "CPU cores (system)", "reason"], table),
              file=file)
        ratios = body.get("ratios") or []
        if ratios:
            print("\nratios (ours / baseline, images/s medians):", file=file)
            print(_table(["ours", "baseline", "ratio"],
                         [[q["ours"], q["baseline"], f"{q['ratio']:.3g}x"] for q in ratios]), file=file)
    if caveats(result):
        print("", file=file)
        print_caveats(result, file)
