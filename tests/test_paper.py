"""`make paper`'s runner: parameters reach the notebooks, executed copies land in build, failures are one line."""

import json
import subprocess
import sys

import nbformat
import pytest
from PIL import Image

from sa_lib.core.files import output_dir
from sa_lib.cli.paper import main
from sa_lib.figures.paper import NotebookFailed, notebook_parameters, run_notebooks


def _notebook(path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"\nfigures_dir = "build/smoke-figures"\ndevice = "auto"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


WRITE_PARAMS = ("import json, pathlib\n"
                "pathlib.Path(figures_dir, 'seen.json').write_text(json.dumps([profile, device]))")


def test_parameters_follow_the_contract(tmp_path):
    assert notebook_parameters(tmp_path / "03_ablation.ipynb", "demo", tmp_path, "cpu", True) == {
        "profile": "demo", "figures_dir": str(tmp_path), "device": "cpu"}
    assert notebook_parameters(tmp_path / "02_training.ipynb", "demo", tmp_path, "auto", True)["retrain"] is True


def test_output_dir_is_relative_to_the_repository_root(tmp_path):
    assert output_dir(tmp_path / "x").is_dir()
    assert output_dir("build/test-output-dir").parts[-2:] == ("build", "test-output-dir")


@pytest.mark.slow
def test_notebooks_run_in_order_with_the_profile_injected(tmp_path):
    notebooks, executed, figures = tmp_path / "nb", tmp_path / "executed", tmp_path / "figures"
    notebooks.mkdir()
    figures.mkdir()
    _notebook(notebooks / "01_first.ipynb", WRITE_PARAMS)
    _notebook(notebooks / "00_zero.ipynb", "x = 1")
    timings = run_notebooks("demo", figures, "cpu", notebooks_dir=notebooks, executed_dir=executed)
    assert [name for name, _ in timings] == ["00_zero", "01_first"]
    assert json.loads((figures / "seen.json").read_text()) == ["demo", "cpu"]
    executed_nb = nbformat.read(executed / "01_first.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed_nb.cells)


@pytest.mark.slow
def test_a_failing_notebook_is_named_in_one_line(tmp_path):
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _notebook(notebooks / "00_broken.ipynb", "raise ValueError('no such pair')")
    with pytest.raises(NotebookFailed, match=r"00_broken.ipynb failed .*ValueError: no such pair"):
        run_notebooks("smoke", tmp_path, notebooks_dir=notebooks, executed_dir=tmp_path / "executed")
    result = subprocess.run([sys.executable, "-m", "sa_lib.cli.paper", "--profile", "smoke", "--out", str(tmp_path),
                             "--notebooks", str(notebooks), "--executed", str(tmp_path / "ex"), "--skip-extras"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("python -m sa_lib.cli.paper: error: 00_broken.ipynb failed")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_main_writes_the_extras_and_timings(tmp_path):
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _notebook(notebooks / "00_zero.ipynb", "x = 1")
    main(["--profile", "demo", "--out", str(tmp_path / "fig"), "--notebooks", str(notebooks),
          "--executed", str(tmp_path / "ex")])
    assert Image.open(tmp_path / "fig" / "superpixel_levels.png").size[0] > 500
    table = (tmp_path / "fig" / "model_summary.md").read_text()
    for variant in ("| none |", "| standard |", "| super |", "| transfer |"):  # demo's Table 1 has transfer
        assert variant in table
    assert "transfer: one pass" in table
    assert "| 00_zero |" in (tmp_path / "ex" / "timings.md").read_text()


def test_snapshots_copy_every_paper_figure_downscaled_and_the_tables_or_say_what_is_missing(tmp_path):
    from sa_lib.figures.paper import SNAPSHOT_FIGURES, SNAPSHOT_TABLES, save_snapshots

    figures = tmp_path / "figures"
    figures.mkdir()
    for name in SNAPSHOT_FIGURES[:-1]:
        Image.new("RGB", (3000, 1000), "red").save(figures / f"{name}.png")
    for name in SNAPSHOT_TABLES:
        (figures / name).write_text(f"# {name}\n\n| method | SSIM ↑ |\n|---|---|\n| x | 0.904 |\n")
    with pytest.raises(FileNotFoundError, match="training_curves.png is missing"):
        save_snapshots(figures, tmp_path / "docs")
    assert not (tmp_path / "docs").exists()  # nothing copied from an incomplete set
    Image.new("RGB", (300, 100), "red").save(figures / "training_curves.png")
    written = save_snapshots(figures, tmp_path / "docs")
    images = written[:len(SNAPSHOT_FIGURES)]
    assert [Image.open(p).size for p in images[:1] + images[-1:]] == [(1400, 467), (300, 100)]
    assert [p.name for p in written[len(SNAPSHOT_FIGURES):]] == list(SNAPSHOT_TABLES)
    assert all((tmp_path / "docs" / name).read_bytes() == (figures / name).read_bytes() for name in SNAPSHOT_TABLES)


@pytest.mark.slow
def test_a_dead_kernel_is_named_in_one_line_and_retrain_needs_notebook_02(tmp_path):
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _notebook(notebooks / "00_crash.ipynb", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    with pytest.raises(NotebookFailed, match="00_crash.ipynb: its kernel died"):
        run_notebooks("smoke", tmp_path, notebooks_dir=notebooks, executed_dir=tmp_path / "executed")
    with pytest.raises(SystemExit) as exit_info:
        main(["--only", "03", "--retrain", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
