from __future__ import annotations

import base64
import re

from typer.testing import CliRunner

from engine.cli import app
from engine.llm.scripted import ScriptedLLM
from engine.search.report import fitness_plot, write_report
from tests.search.conftest import ToyRunner, proposal


def _mixed(body: dict) -> str:
    seed = body["seed"]
    if seed % 3 == 0:
        return "no idea"
    return proposal(f"def f(x):\n    return x * x * {1 + 1 / (seed % 17 + 1)!r}\n", name=f"scaled-{seed}")


def test_report_embeds_plots_and_the_archive(toy: ToyRunner) -> None:
    with ScriptedLLM(default=_mixed) as llm:
        run = toy(llm, search={"generations": 6, "repair_rounds": 0})
    path = write_report(run.run_dir)
    page = path.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 2
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    for record in run.records:
        assert record.name in page
    assert "def f(x):" in page and "http" not in page.replace("http-equiv", "")  # self-contained
    assert "invalid" in page  # failures are listed with their status


def test_fitness_plot_marks_failures(toy: ToyRunner) -> None:
    with ScriptedLLM(default="not json") as llm:
        run = toy(llm, search={"repair_rounds": 0})
    assert fitness_plot(run.records).startswith(b"\x89PNG")


def test_archive_show_lists_the_top_candidates(toy: ToyRunner) -> None:
    with ScriptedLLM(default=_mixed) as llm:
        run = toy(llm, search={"generations": 4, "repair_rounds": 0})
    result = CliRunner().invoke(app, ["archive", "show", str(run.run_dir), "--top", "2"])
    assert result.exit_code == 0, result.output
    best = sorted((r for r in run.records if r.fitness is not None), key=lambda r: -r.fitness)[:2]  # type: ignore[operator]
    for record in best:
        assert record.id in result.output
    worst = min((r for r in run.records if r.fitness is not None), key=lambda r: r.fitness)  # type: ignore[arg-type, return-value]
    assert worst.id not in result.output


def test_report_command_writes_report_html(toy: ToyRunner) -> None:
    with ScriptedLLM(default=_mixed) as llm:
        run = toy(llm, search={"generations": 1, "repair_rounds": 0})
    result = CliRunner().invoke(app, ["report", str(run.run_dir)])
    assert result.exit_code == 0, result.output
    assert (run.run_dir / "report.html").exists() and "report.html" in result.output


def test_resume_refuses_a_directory_that_is_not_a_run(tmp_path) -> None:  # noqa: ANN001
    result = CliRunner().invoke(app, ["resume", str(tmp_path)])
    assert result.exit_code == 2 and "not an evobox run directory" in result.output
    assert list(tmp_path.iterdir()) == []


def test_fitness_plot_shows_each_candidates_interval() -> None:
    from matplotlib.collections import LineCollection

    from engine.search.archive import Record
    from engine.search.candidate import Status
    from engine.search.report import fitness_figure

    def scored(index: int, generation: int | str, median: float, low: float, high: float) -> Record:
        return Record(id=f"r{index}", name=f"n{index}", thought="", code=f"x = {index}", generation=generation,
                      index=index, status=Status.OK, fitness=median,
                      fitness_detail={"ci_low": low, "ci_high": high})

    records = [scored(0, "initial", 40.0, 20.0, 60.0), scored(1, "initial", 50.0, 35.0, 65.0), scored(0, 1, 70.0, 55.0, 85.0)]
    ax = fitness_figure(records).axes[0]
    bars = [segment for collection in ax.collections if isinstance(collection, LineCollection)
            for segment in collection.get_segments()]
    assert sorted((round(s[0][1]), round(s[1][1])) for s in bars) == [(20, 60), (35, 65), (55, 85)]
    assert len({round(s[0][0], 2) for s in bars}) == 3  # two candidates of one generation side by side
