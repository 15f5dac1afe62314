"""The summary table `make bench` prints, built from the results dict that goes to bench/results/latest.json."""

Row = tuple[str, str, str, bool | None]  # what, measured, target, met (None: no target)


def _load(label: str, load: dict) -> Row:
    latency = f"p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms"
    cpu = f"server CPU {load['server_cpu_ms']:.2f} ms/req"
    if load.get("db_cpu_ms") is not None:
        cpu += f", PostgreSQL CPU {load['db_cpu_ms']:.2f} ms/req, CPUs {load['busy_percent']:.0f}% busy"
    if split := " ".join("/".join(map(str, c)) for c in load.get("connections", []) if c):
        cpu += f", connections per worker {split}"
    failed = ", ".join(f"{status}: {n}" for status, n in sorted(load["statuses"].items()) if not status.startswith("2"))
    return label, f"{load['rps']:.0f} req/s, {latency}, {cpu}, non-2xx {load['non_2xx']} {failed}".rstrip(), "", None


def auth_rows(auth: dict) -> list[Row]:
    ratio, keyed = auth["ratio"], auth["with_key"]
    return [
        _load("1 models/flux-dev, no key", auth["anonymous"]),
        _load("1 models/flux-dev, Bearer key", keyed),
        ("1 key really authenticated", "yes" if auth["key_authenticated"] else "NO", "yes", auth["key_authenticated"]),
        ("1 ratio with key / without", f"{ratio:.2f}", ">= 0.80", ratio >= 0.8),
        ("1 429s with key", str(keyed["statuses"].get("429", 0)), "0", keyed["statuses"].get("429", 0) == 0),
    ]


def _generate_rows(submit: dict, name: str, label: str) -> list[Row]:
    full, ratio = submit[name], submit[f"{name}_over_minimal"]
    failed = full["first_error"][:70]  # the first non-2xx: status and the start of its body
    return [
        _load(f"2 POST /api/v1/generate{label}", full),
        (f"2 generate{label}: non-2xx", f"{full['non_2xx']} {failed}".rstrip(), "0", full["non_2xx"] == 0),
        (f"2 generate{label} / (b) req/s", f"{ratio:.2f}", ">= 0.80", ratio >= 0.8),
        (f"2 generate{label}: p99", f"{full['p99_ms']:.1f} ms", "<= 150 ms", full["p99_ms"] <= 150),
    ]


def submit_rows(submit: dict) -> list[Row]:
    return [
        _load("2 (a) GET /bench/bare", submit["bare"]),
        _load("2 (b) POST /bench/minimal-submit", submit["minimal_submit"]),
        ("2 (b) / (a) req/s", f"{submit['minimal_over_bare']:.2f}", "~0.13", None),
        *_generate_rows(submit, "generate", ""),
        *_generate_rows(submit, "generate_idempotency_key", " + Idempotency-Key"),
    ]


def worker_rows(worker: dict) -> list[Row]:
    rows: list[Row] = [
        (f"3 worker {run['pool']} x{run['concurrency']}", f"{run['jobs_per_second']:.0f} jobs/s, worker CPU "
         f"{run['worker_cpu_ms_per_job']} ms/job ({run['jobs']} jobs, {run['not_completed']} not completed)", "", None)
        for run in worker["runs"]
    ]  # fmt: skip
    best = worker["best"]
    rows.append(("3 worker best", f"{best['jobs_per_second']:.0f} jobs/s", ">= 200", best["jobs_per_second"] >= 200))
    return rows


def _export_row(jobs: str, export: dict, judged: bool) -> Row:
    rate = export["rows_per_second"]
    detail = f"{export['rows']:,} rows, {export['seconds']} s, first row after {export.get('first_row_seconds', '?')} s"
    return f"4 export at {jobs}: rows/s", f"{rate:,} ({detail})", ">= 100,000", rate >= 100_000 if judged else None


def _size(scale: dict, label: str) -> list[Row]:
    measured = scale[label]
    jobs, export = f"{measured['jobs']:,}", measured["export"]
    rss = export["worker_vmhwm_mb"]
    pages = f"{measured['first_page_ms']} / {measured['deep_page_ms']} ms"
    rare = f"{measured['rare_model_page_ms']} / {measured['rare_type_page_ms']} / {measured['rare_status_page_ms']} ms"
    return [
        (f"4 jobs list at {jobs}: first / deep page", pages, "", None),
        (f"4 jobs list at {jobs}: 25 speech jobs by model / by type, 25 failed", rare, "", None),
        _export_row(jobs, export, judged=label == "large"),
        (f"4 export at {jobs}: worker peak RSS", f"{rss} MB (sampled {export['worker_peak_rss_mb']} MB)",
         "<= 150 MB", rss <= 150),
    ]  # fmt: skip


def scale_rows(scale: dict) -> list[Row]:
    rows = _size(scale, "small")
    if "large" in scale:
        rows += _size(scale, "large")
        names = ("first_page", "deep_page", "rare_model_page", "rare_type_page", "rare_status_page")
        for name in (f"{page}_ratio" for page in names):
            rows.append((f"4 {name.replace('_', ' ')} 1M / 10k", f"{scale[name]:.2f}", "<= 1.2", scale[name] <= 1.2))
    return rows


def table(results: dict) -> str:
    rows: list[Row] = []
    for name, build in (("auth", auth_rows), ("submit", submit_rows), ("worker", worker_rows), ("scale", scale_rows)):
        if name in results:
            rows += build(results[name])
    busy = results.get("idle_cpu_busy_percent", {})
    noisy = max(busy.values(), default=0) > 10
    rows.append(("CPU busy while idle (start/middle/end)", " / ".join(f"{v}%" for v in busy.values()), "<= 10%",
                 not noisy))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    mark = {True: "ok", False: "MISSED", None: ""}
    lines = [
        f"{what:<{widths[0]}}  {value:<{widths[1]}}  {target:<{widths[2]}}  {mark[met]}"
        for what, value, target, met in rows
    ]
    return "\n".join(lines)
