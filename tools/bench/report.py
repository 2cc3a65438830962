"""Markdown tables of one benchmark run: per-row distributions, chatgate / bare ratios, targets."""
from __future__ import annotations

from tools.bench.targets import index, judge, ratio_rows


def fmt(v, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _trio(d: dict) -> str:
    return " / ".join(fmt(d.get(k), 0) for k in ("p50", "p90", "p99"))


def results_table(report: dict) -> str:
    lines = ["| target | conc | req/s | out tok/s | TTFT ms p50/p90/p99 | first 32 chars ms p50/p90/p99 "
             "| inter-token ms p50/p90/p99 | e2e ms p50/p90/p99 | tok/req | err | templated | load1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in index(report).values():
        lines.append(f"| {r['target']} | {r['level']} | {r['req_s']:.2f} | {r['tok_s']:.1f} | {_trio(r['ttft'])} | "
                     f"{_trio(r['first32'])} | {_trio(r['itl'])} | {_trio(r['e2e'])} | {r['tok_per_req']:.1f} | "
                     f"{r['errors']} | {r.get('templated', 0)} | {r['loadavg']:.2f} |")
    return "\n".join(lines)


def ratio_table(report: dict) -> str:
    lines = ["| chatgate / bare | conc | req/s ratio | tok/s ratio | e2e p50 ratio | e2e p50 Δ ms | TTFT p50 Δ ms "
             "| TTFT p50 − bare 32-char p50 ms | inter-token p99 ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in ratio_rows(report):
        lines.append(f"| {r['mode']} | {r['level']} | {fmt(r['req_ratio'], 3)} | {fmt(r['tok_ratio'], 3)} | "
                     f"{fmt(r['e2e_p50_ratio'], 3)} | {fmt(r['e2e_p50_delta_ms'])} | {fmt(r['ttft_p50_delta_ms'])} | "
                     f"{fmt(r['ttft_minus_bare_first32_ms'])} | {fmt(r['itl_p99_ratio'], 3)} |")
    return "\n".join(lines)


def targets_table(report: dict) -> str:
    lines = ["| issue 14 target | wanted | this run | verdict |", "|---|---|---:|---|"]
    lines += [f"| {t['measure']} | {t['target']} | {t['value']} | {t['status']} |" for t in judge(report)]
    return "\n".join(lines)


def _role_table(report: dict, field: str, title: str, digits: int, machine_cols: tuple[tuple[str, str], ...] = ()) -> str:
    """One row per (target, level), one column per process role in `row[field]`, busiest role first;
    `machine_cols`: ("machine ..." key in the field, column title) shown before the roles."""
    rows = [r for r in index(report).values() if r.get(field)]
    if not rows:
        return ""
    roles = sorted({k for r in rows for k in r[field] if not k.startswith("machine ")},
                   key=lambda k: -max(r[field].get(k, 0) for r in rows))
    keys = [k for k, _ in machine_cols] + roles
    heads = [t for _, t in machine_cols] + roles
    lines = [f"| {title} | conc | " + " | ".join(heads) + " |", "|---|---:|" + "---:|" * len(heads)]
    for r in rows:
        cells = [fmt(r[field].get(k), digits) for k in keys]
        lines.append(f"| {r['target']} | {r['level']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_table(report: dict) -> str:
    """Cores each process role used during each row's level: where the time went."""
    return _role_table(report, "cpu", "CPU, cores used during the level", 2,
                       (("machine busy", "machine busy"), ("machine steal", "stolen by the hypervisor")))


def wait_table(report: dict) -> str:
    """Per role, the share of each level its threads spent runnable but waiting for a CPU: on a
    2-core box the engine's EngineCore and worker must not queue behind the serving processes."""
    return _role_table(report, "cpu_wait", "waiting for a CPU, share of the level", 3)


def notes(report: dict) -> list[str]:
    extra = []
    for key, label in (("vllm", "bare vLLM"), ("chatgate", "chatgate")):
        t = report.get(key)
        if t and t.get("memory"):
            m = t["memory"]
            extra.append(f"- {label}: launch -> ready {t['ready_s']} s; peak memory: RSS sum {m['peak_rss_gib']} GiB, "
                         f"PSS sum {m['peak_pss_gib']} GiB over {m['processes']} processes")
    cg = report.get("chatgate", {})
    if cg.get("serve_mode"):
        extra.append(f"- chatgate Serve data path: {cg['serve_mode']}")
    if cg.get("stages"):
        extra.append("- chatgate stage means over the run (Ray metrics): " + ", ".join(
            f"{k} {v['mean_ms']} ms (n={v['count']}, p99 <= {v.get('p99_le_ms')} ms)" for k, v in sorted(cg["stages"].items())))
    m = report.get("machine", {})
    if m.get("loadavg_start") and m.get("loadavg_end"):
        # Before the run nothing of ours is running: a load above 1 is other work sharing the CPUs.
        busy = m["loadavg_start"][0] > 1.0
        extra.append(f"- load average at start {m['loadavg_start'][0]:.2f}, at end {m['loadavg_end'][0]:.2f}"
                     + (": NOISY run (other work on the CPUs); trust the ratios, not absolute times" if busy else ""))
    return extra


def render(report: dict) -> str:
    parts = [results_table(report), ratio_table(report), targets_table(report), cpu_table(report), wait_table(report), "\n".join(notes(report))]
    return "\n\n".join(p for p in parts if p)
