"""make bench rewrites its tables in docs/benchmarks.md but keeps the measurements recorded there by hand."""

from __future__ import annotations

from studies.benchmark import KEEP_MARKER, write_markdown


def test_rewriting_the_tables_keeps_the_hand_recorded_sections(tmp_path):
    path = tmp_path / "benchmarks.md"
    write_markdown(path, "# Benchmarks\n\n| old | table |\n")
    assert path.read_text() == "# Benchmarks\n\n| old | table |\n"  # no marker yet: nothing to keep
    hand = f"{KEEP_MARKER}\n\n## Measured by hand\n\n| run | 0.96 |\n"
    path.write_text(path.read_text() + "\n" + hand)
    write_markdown(path, "# Benchmarks\n\n| new | table |\n")
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\n| new | table |\n")
    assert "| old | table |" not in text
    assert text.endswith(hand) and text.count(KEEP_MARKER) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["benchmarks.md"]  # no temporary file left
