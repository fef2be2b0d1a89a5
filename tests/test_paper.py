from PIL import Image

from sa_lib.paper import main


def test_make_paper_demo_profile_writes_its_figure_and_table(tmp_path):
    main(["--profile", "demo", "--out", str(tmp_path)])
    figure = Image.open(tmp_path / "superpixel_levels.png")
    assert figure.size[0] > 500 and figure.size[1] > 500
    table = (tmp_path / "model_summary.md").read_text()
    for variant in ("| none |", "| standard |", "| super |"):
        assert variant in table
    assert "L0: (" in table and "L3: (" in table
