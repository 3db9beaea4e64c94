"""`evobox report RUN_DIR`: one self-contained report.html (plots embedded as base64 PNG).

The domain's lead section first (ADAS: the test-split table and verdict), then fitness over
generations (every candidate with its interval, failures marked, best so far), LLM spend (meta
LLM and agents apart), the archive as a table with each candidate's code, and any plots the
domain adds.
"""

from __future__ import annotations

import base64
import html
import io
import json
import tempfile
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.ticker import MaxNLocator  # noqa: E402
import structlog  # noqa: E402

from engine.llm.usage import Usage  # noqa: E402
from engine.search.archive import Record, load_records  # noqa: E402
from engine.search.candidate import Status  # noqa: E402
from engine.search.domain import Domain  # noqa: E402
from engine.search.spend import spend_summary  # noqa: E402

log = structlog.get_logger()

REPORT_NAME = "report.html"


def _x(record: Record) -> int:
    return 0 if record.generation == "initial" else int(record.generation)


def fitness_plot(records: list[Record]) -> bytes:
    """PNG of fitness_figure."""
    return _png(fitness_figure(records))


def fitness_figure(records: list[Record]) -> plt.Figure:
    """Each candidate's fitness by generation with its interval where the domain reports one,
    failures as red crosses, best so far as a step line."""
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    scored = [r for r in records if r.status is Status.OK and r.fitness is not None]
    failed = [r for r in records if r not in scored]
    if scored:
        _intervals(ax, scored)
        ax.scatter([_x(r) for r in scored], [r.fitness for r in scored], s=22, alpha=0.7, label="candidate")
        best, xs, ys = None, [], []
        for record in records:  # archive order = time order
            if record in scored and (best is None or record.fitness > best):  # type: ignore[operator]
                best = record.fitness
            if best is not None:
                xs.append(_x(record))
                ys.append(best)
        ax.step(xs, ys, where="post", color="tab:green", linewidth=2, label="best so far")
    if failed:
        floor = min((r.fitness for r in scored), default=0.0)  # type: ignore[type-var]
        ax.scatter([_x(r) for r in failed], [floor] * len(failed), marker="x", color="tab:red",
                   label=f"failed ({len(failed)})")
    ax.set_xlabel("generation (0 = baselines)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("fitness")
    ax.grid(alpha=0.3)
    if records:
        ax.legend(loc="best", fontsize=8)
    return fig


def interval(record: Record) -> tuple[float, float] | None:
    """The candidate's confidence interval, when its domain reports one (`ci_low`/`ci_high` in
    the fitness detail: ADAS's bootstrap interval around the median)."""
    low, high = record.fitness_detail.get("ci_low"), record.fitness_detail.get("ci_high")
    if isinstance(low, int | float) and isinstance(high, int | float) and low <= high:
        return float(low), float(high)
    return None


def _intervals(ax: plt.Axes, scored: list[Record]) -> None:
    """A vertical bar per candidate with an interval, slightly spread so that candidates of one
    generation do not hide each other's bars."""
    spread: Counter[int] = Counter()
    for record in scored:
        bounds = interval(record)
        if bounds is None:
            continue
        x = _x(record) + 0.08 * spread[_x(record)]
        spread[_x(record)] += 1
        ax.vlines(x, *bounds, color="tab:blue", alpha=0.35, linewidth=2,
                  label="95% interval" if sum(spread.values()) == 1 else None)


def spend_plot(records: list[Record]) -> bytes:
    """PNG: cumulative LLM cost (meta and agents apart) and tokens over the archive."""
    fig, ax = plt.subplots(figsize=(8, 3), dpi=110)
    meta_cost, agent_cost, tokens, meta, agent = [], [], [], Usage(), Usage()
    for record in records:
        meta, agent = meta + record.usage, agent + record.agent_usage
        meta_cost.append(meta.cost_usd)
        agent_cost.append(agent.cost_usd)
        tokens.append(meta.total_tokens + agent.total_tokens)
    ax.plot(range(1, len(records) + 1), meta_cost, color="tab:purple", label="meta LLM")
    ax.plot(range(1, len(records) + 1), agent_cost, color="tab:orange", label="agents (gateway)")
    if records:
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel("candidates archived")
    ax.set_ylabel("USD", color="tab:purple")
    twin = ax.twinx()
    twin.plot(range(1, len(records) + 1), tokens, color="tab:gray", linestyle="--")
    twin.set_ylabel("tokens", color="tab:gray")
    ax.grid(alpha=0.3)
    return _png(fig)


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _row(record: Record) -> str:
    fitness = html.escape(record.fitness_text or ("" if record.fitness is None else f"{record.fitness:g}"))
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in record.timings.items())
    attempts = "<br>".join(html.escape(f"{a.status.value}: {a.error}" if a.error else a.status.value)
                           for a in record.attempts)
    return (f"<tr class='{record.status.value}'><td>{record.generation}/{record.index}</td>"
            f"<td><b>{html.escape(record.name)}</b><br><code>{record.id}</code></td>"
            f"<td>{record.status.value}{' (cached)' if record.cached else ''}</td>"
            f"<td>{'' if record.fitness is None else f'{record.fitness:.4g}'}<br><small>{fitness}</small></td>"
            f"<td>{html.escape(record.error or '')}<br><small>{attempts}</small></td>"
            f"<td><small>meta: {_spent(record.usage)}<br>agents: {_spent(record.agent_usage)}"
            f"<br>{html.escape(timings)}</small></td>"
            f"<td><details><summary>thought and code</summary><p>{html.escape(record.thought)}</p>"
            f"<pre>{html.escape(record.code)}</pre></details></td></tr>")


def _domain_extras(domain: Domain | None, records: list[Record]) -> list[tuple[str, bytes]]:
    """The domain's own plots."""
    if domain is None:
        return []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = domain.report_extras([r.model_dump(mode="json") for r in records], Path(tmp))
            return [(p.name, p.read_bytes()) for p in paths]
    except Exception as exc:  # the report is still useful without the domain's plots
        log.warning("report.domain_extras_failed", error=f"{type(exc).__name__}: {exc}")
        return []


def _spent(usage: Usage) -> str:
    return f"{usage.calls} calls, {usage.total_tokens:,} tok, ${usage.cost_usd:.4f}"


def _domain_lead(domain: Domain | None, run_dir: Path) -> str:
    """The domain's opening section (ADAS: the test split), or nothing."""
    if domain is None:
        return ""
    try:
        return domain.report_lead(run_dir)
    except Exception as exc:  # noqa: BLE001 - the rest of the report stands without it
        log.warning("report.domain_lead_failed", error=f"{type(exc).__name__}: {exc}")
        return f"<p>(the domain's summary could not be built: {html.escape(type(exc).__name__)}: {html.escape(str(exc))})</p>"


def render(run_dir: Path, records: list[Record], extras: list[tuple[str, bytes]], lead: str = "") -> str:
    """The report as one HTML string; `lead` (the domain's HTML) comes first, after the title."""
    meta_spend, agent_spend = spend_summary(run_dir, records)
    statuses = Counter(r.status.value for r in records)
    best = max((r for r in records if r.status is Status.OK and r.fitness is not None),
               key=lambda r: r.fitness, default=None)  # type: ignore[arg-type, return-value]
    meta = {}
    try:
        meta = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        pass
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>evobox report: {html.escape(run_dir.name)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:4px;vertical-align:top;"
        "font-size:13px}tr.ok td:nth-child(3){color:#070}tr:not(.ok) td:nth-child(3){color:#b00}"
        "pre{white-space:pre-wrap;max-width:900px;font-size:12px;background:#f6f6f6;padding:6px}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>evobox run {html.escape(run_dir.name)}</h1>",
        f"<p>domain <b>{html.escape(str(meta.get('domain', '?')))}</b>, {len(records)} candidates "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))}). Best: "
        + (f"<b>{html.escape(best.name)}</b> {best.fitness:.4g} ({html.escape(best.fitness_text or '')})"
           if best else "none") + "</p>",
        lead,
        "<h2>Fitness over generations</h2>", _img(fitness_plot(records), "fitness over generations"),
        "<h2>LLM spend</h2>",
        f"<p>meta LLM: {_spent(meta_spend)}<br>agents and judge (gateway): {_spent(agent_spend)}<br>"
        f"total: ${meta_spend.cost_usd + agent_spend.cost_usd:.4f}</p>", _img(spend_plot(records), "LLM spend"),
    ]
    if extras:
        parts.append("<h2>Domain plots</h2>")
        parts.extend(_img(png, name) for name, png in extras)
    parts.append("<h2>Archive</h2><table><tr><th>gen/#</th><th>name</th><th>status</th><th>fitness</th>"
                 "<th>error / attempts</th><th>usage / timings</th><th>code</th></tr>")
    parts.extend(_row(r) for r in records)
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write_report(run_dir: Path, domain: Domain | None = None) -> Path:
    """Write <run_dir>/report.html and return its path. `domain` (the run's, from the caller, which
    resolved it) adds its lead section and plots; without it the report has the generic parts."""
    records = load_records(run_dir)
    target = run_dir / REPORT_NAME
    target.write_text(render(run_dir, records, _domain_extras(domain, records), _domain_lead(domain, run_dir)),
                      encoding="utf-8")
    log.info("report.written", path=str(target))
    return target
