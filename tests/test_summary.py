"""`cnnc summary`: layers grouped by block, levels folded by `--depth`, identical repeats folded to `×N`."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest

import cnnc
from cnnc.architectures import names
from cnnc.summary_table import _shape, origins_of, parse_depth, print_summary, rows, summary_lines
from conftest import drain


def _rows(name: str, depth: int | None = None, fold: bool = True):
    info = cnnc.summary(name)
    return info, rows(info["layers"], origins_of(cnnc.load(name)), depth, fold)


@pytest.mark.parametrize("name", ["resnet50", "inception_v3", "inception_v4", "inception_v1", "resnext50"])
@pytest.mark.parametrize("depth", [1, 2, 3, None])
def test_top_level_rows_add_up_to_the_totals_at_every_depth(name, depth):
    info, table = _rows(name, depth)
    top = [r for r in table if r.level == 1]
    assert sum(r.params for r in top) == info["params"]["total"]
    assert sum(r.macs for r in top) == info["macs"]
    assert top[-1].shape == tuple(info["output_shape"])
    assert all(r.level <= depth for r in table) if depth else True


def test_depth_one_of_inception_v4_reads_like_the_papers_overview():
    _, table = _rows("inception_v4", 1)
    assert [(r.name, r.repeat, r.op) for r in table] == [
        ("stem", 1, "sequence"), ("inception_a", 4, "inception_a"), ("reduction_a", 1, "reduction_a"),
        ("inception_b", 7, "inception_b"), ("reduction_b", 1, "reduction_b"), ("inception_c", 3, "inception_c"),
        ("avg_pool", 1, "globalavgpool"), ("predictions", 1, "sequence")]
    one = next(r for r in _rows("inception_v4", None, fold=False)[1] if r.name == "inception_a_1")
    assert next(r for r in table if r.name == "inception_a").params == 4 * one.params


def test_groups_are_named_after_their_block_and_merges_after_their_op():
    _, table = _rows("resnet50", 3)
    by_name = {r.name: r for r in table}
    assert by_name["conv2"].op == "stage" and by_name["conv2/conv_block"].op == "conv_block"
    assert by_name["conv2/conv_block/add"].op == "add" and by_name["conv2/conv_block/add"].group
    assert by_name["conv3/identity_block"].repeat == 3 and not by_name["conv3/identity_block"].expanded
    assert by_name["conv3/identity_block"].first == "conv3/identity_block_1"
    assert by_name["pool1"].op == "maxpool" and not by_name["pool1"].group


def test_only_identical_numbered_siblings_fold():
    _, table = _rows("inception_v3", None)
    assert all(r.repeat == 1 for r in table)  # the stem's cbr_1..5 differ; mixed1, mixed2 are names written
    _, table = _rows("resnext50")
    towers = [r for r in table if r.name.endswith("/add/branch")]
    assert len(towers) == 4 and all((r.repeat, r.op) == (32, "tower") for r in towers)
    assert len(table) < 60  # of 3,675 layers; the identity blocks fold too


def test_unfolded_full_table_lists_every_layer_once():
    info, table = _rows("resnet50", None, fold=False)
    names = [r.name for r in table]
    assert len(names) == len(set(names))
    assert {l["name"] for l in info["layers"]} <= set(names)
    leaves = [r for r in table if not r.group]
    assert sum(r.params for r in leaves) == info["params"]["total"]


def test_text_output_through_a_pipe_is_plain_and_unwrapped(cli, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # xdist's workers set it: here, a pipe's default width
    r = cli.run("summary", "inception_v1")
    assert r.code == 0, r.err
    assert "\x1b[" not in r.out
    assert all(line == line.rstrip() for line in r.out.splitlines())
    assert "inception_4a/branch3x3/cr_2/conv" in r.out  # a full name, never wrapped
    assert "total params: 6,998,552   trainable: 6,998,552   non-trainable: 0" in r.out
    lines = r.out.splitlines()
    aux = lines.index("with the train-only heads (aux1, aux2; `--aux` keeps them):")
    assert lines[aux + 1].startswith("  total params: 13,378,280   trainable:")
    r = cli.run("summary", "inception_v3", "--depth", "1")
    lines = r.out.splitlines()
    assert r.code == 0 and len(lines) < 25
    assert re.search(r"^mixed5\s+inception_b\s+\[768, 17, 17\]\s+1,692,736\s+487.7 M$", r.out, re.M)


def test_depth_all_is_the_default_and_bad_depths_are_usage_errors(cli):
    assert cli.run("summary", "lenet5", "--depth", "all").out == cli.run("summary", "lenet5").out
    assert cli.run("summary", "lenet5", "--depth", "0").out == cli.run("summary", "lenet5").out
    r = cli.run("summary", "lenet5", "--depth", "deep")
    assert r.code == 2 and "expected a level" in r.err
    assert parse_depth("ALL") is None and parse_depth("3") == 3


def test_json_output_is_the_api_summary(cli):
    r = cli.run("summary", "inception_v1", "--json")
    assert json.loads(r.out) == json.loads(json.dumps(cnnc.summary("inception_v1")))


def test_in_a_terminal_the_table_has_style_and_the_totals_fit_the_width(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    info, table = _rows("inception_v1", 1)
    out = io.StringIO()
    print_summary(info, table, file=out)
    text = out.getvalue()
    assert "\x1b[" in text
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert ("with the train-only heads (aux1, aux2; `--aux` keeps them):\n"
            "  total params: 13,378,280   trainable:") in plain
    assert max(len(line) for line in plain.splitlines()) <= 80


def test_rich_is_imported_only_to_print_a_table():
    code = ("import sys, cnnc, cnnc.cli, cnnc.summary_table; cnnc.cli.main(['check', 'lenet5']); "
            "print('rich' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().splitlines()[-1] == "False", r.stderr


# ---- widths: one line per row, whatever the terminal ----------------------------------------------
def _table_lines(lines: list[str], table) -> list[str]:
    assert lines[1] == "─" * len(lines[1])
    assert lines[2 + len(table)] == ""  # the totals follow the last row at once: no row took two lines
    return lines[2:2 + len(table)]


@pytest.mark.parametrize("name", names())
def test_every_shipped_summary_fits_80_120_and_160_columns_with_one_line_per_row(name):
    info, table = _rows(name)
    for width in (80, 120, 160):
        lines = summary_lines(info, table, width)
        assert max(len(line) for line in lines) <= width, (name, width)
        for row, line in zip(table, _table_lines(lines, table)):
            assert row.name.rsplit("/", 1)[-1] in line and _shape(row.shape) in line, (name, width, line)
            if width == 160:  # wide enough for every shipped network's full names
                assert row.name in line


def test_a_long_path_is_shortened_from_the_left_and_keeps_its_leaf():
    info, table = _rows("inception_v3")
    deep = max(table, key=lambda r: len(r.name))
    i = table.index(deep)
    narrow, full = _table_lines(summary_lines(info, table, 80), table)[i], \
        _table_lines(summary_lines(info, table, None), table)[i]
    assert deep.name in full and deep.name not in narrow
    kept = narrow.split()[0]
    assert kept.startswith("…/") and deep.name.endswith(kept[1:]), narrow


def test_a_folded_row_says_its_figures_are_the_total_of_its_copies():
    info, table = _rows("resnet50", 2)
    folded = next(r for r in table if r.repeat > 1)
    one = next(r for r in _rows("resnet50", 2, fold=False)[1] if r.name == folded.first)
    assert folded.params == folded.repeat * one.params
    lines = summary_lines(info, table, 120)
    line = _table_lines(lines, table)[table.index(folded)]
    assert f"{folded.name.rsplit('/', 1)[-1]} ×{folded.repeat} (total)" in line and f"{folded.params:,}" in line
    legend = lines[2 + len(table):]
    said = " ".join(text.strip() for text in legend)
    assert "×N (total)" in said and "summed" in said and "in sequence" in said and "parallel branches" in said
    narrow = _table_lines(summary_lines(info, table, 60), table)[table.index(folded)]
    assert f"×{folded.repeat}" in narrow and f"{folded.params:,}" in narrow


def test_a_pipe_fits_columns_when_set_and_else_120_and_wide_gives_full_names(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = cli.run("summary", "resnext50")
    assert r.code == 0 and max(len(line) for line in r.out.splitlines()) <= 80
    monkeypatch.delenv("COLUMNS")
    r = cli.run("summary", "resnext50")
    assert r.code == 0 and max(len(line) for line in r.out.splitlines()) <= 120
    longest = max((row.name for row in _rows("resnext50")[1]), key=len)
    assert longest not in r.out
    r = cli.run("summary", "resnext50", "--wide")
    assert r.code == 0 and longest in r.out and max(len(line) for line in r.out.splitlines()) > 120


def test_in_a_real_80_column_terminal_the_summary_is_the_80_column_table_styled():
    import fcntl
    import os
    import pty
    import struct
    import termios
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    p = subprocess.Popen([sys.executable, "-m", "cnnc", "summary", "inception_v3"], stdout=child, stderr=child,
                         env={**env, "TERM": "xterm"})
    os.close(child)
    raw = drain(main)
    assert p.wait(timeout=120) == 0
    text = raw.decode()
    assert "\x1b[" in text
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text).replace("\r\n", "\n").splitlines()
    info, table = _rows("inception_v3")
    assert plain == summary_lines(info, table, 80)
