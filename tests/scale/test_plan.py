"""Sizing tables, the fitted capacity curve, and ``voxserve plan`` against the committed tables."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from voxserve.cli import main
from voxserve.errors import InvalidInput
from voxserve.scale.plan import make_plan
from voxserve.scale.sizing import (
    Level,
    SizingError,
    capacity_at,
    default_tables_dir,
    fitted_curve,
    load_table,
    load_tables,
)
from voxserve.scale.sizing_report import build_table, markdown, update_doc

ROOT = Path(__file__).resolve().parents[2]
H100_RUN = ROOT / "docs" / "benchmarks" / "sizing" / "h100-run"
H200_RUN = ROOT / "docs" / "benchmarks" / "sizing" / "h200-run"


def level(c: int, p99: float, requests: int = 10, errors: int = 0) -> Level:
    return Level(c, requests, errors, p99 / 2, p99, float(c))


def table_dict(levels, one_p99=20.0, gpu="t1") -> dict:
    return {
        "schema": 1,
        "gpu": gpu,
        "device": "Test GPU",
        "measured": "2026-01-01",
        "software": "torch x",
        "voice": "baker",
        "backend": "cuda",
        "workload": "paced",
        "one_stream_ttfa_ms": {"p50": one_p99 - 1, "p99": one_p99},
        "levels": [vars(lv) for lv in levels],
        "search": {"slo_ms": 150, "streams": 1},
        "throughput": {"offline_audio_s_per_s": 100.0, "offline_batch": 8},
        "memory": {"server_gpu_mib": 1000, "torch_peak_mib": 500},
    }


def write(tmp_path: Path, d: dict) -> Path:
    path = tmp_path / f"{d['gpu']}.json"
    path.write_text(json.dumps(d))
    return path


# --- the curve ----------------------------------------------------------------------------------


def test_fit_is_non_decreasing_and_weights_by_requests():
    # A noisy first level with two requests is outvoted by a steady one with 98.
    fit = fitted_curve([level(1, 40, requests=2), level(2, 20, requests=98), level(4, 30), level(8, 200)])
    values = [v for _, v in fit]
    assert values == sorted(values)
    assert fit[0][1] == fit[1][1] == pytest.approx((40 * 2 + 20 * 98) / 100)
    assert fit[2:] == [(4, 30), (8, 200)]


def test_levels_with_errors_fail_every_target():
    fit = fitted_curve([level(1, 20), level(2, 30, errors=1), level(4, 25)])
    assert fit[0] == (1, 20) and math.isinf(fit[1][1]) and math.isinf(fit[2][1])


def test_capacity_interpolates_between_levels(tmp_path):
    t = load_table(write(tmp_path, table_dict([level(1, 25), level(10, 50), level(20, 150)])))
    c = capacity_at(t, 100)
    assert (c.streams, c.how, c.below, c.above) == (15, "interpolated", (10, 50), (20, 150))
    assert capacity_at(t, 150).streams == 20
    assert capacity_at(t, 30).streams == 2  # 1 + (30-25)/(50-25) * 9 = 2.8 -> 2
    top = capacity_at(t, 500)
    assert (top.streams, top.how) == (20, "at_least")  # nothing extrapolated past the last level
    assert capacity_at(t, 22).how == "single"


def test_capacity_refuses_targets_below_one_stream(tmp_path):
    t = load_table(write(tmp_path, table_dict([level(1, 25)], one_p99=20.0)))
    with pytest.raises(InvalidInput, match="below what one stream measured"):
        capacity_at(t, 19.9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": 2}, "schema"),
        ({"levels": []}, "levels is empty"),
        ({"one_stream_ttfa_ms": {"p50": 1}}, "one_stream_ttfa_ms.p99"),
        ({"levels": [{"concurrency": 1}]}, r"levels\[0\].requests"),
        ({"gpu": 7}, "gpu"),
    ],
)
def test_malformed_tables_name_the_key(tmp_path, change, message):
    with pytest.raises(SizingError, match=message):
        load_table(write(tmp_path, table_dict([level(1, 25)]) | change))


# --- the committed tables ---------------------------------------------------------------------------


def test_committed_h100_table_matches_the_h100_run():
    tables = load_tables(default_tables_dir())
    assert "h100" in tables
    h100 = tables["h100"]
    # The committed table is exactly what the table builder makes of the committed H100 run.
    assert json.loads(Path(h100.source).read_text()) == build_table(H100_RUN, "h100", measured=h100.measured)
    assert h100.search_streams == 828 and h100.one_stream_p99_ms == 7.48
    # The fitted curve agrees with the load test's own search at its target.
    assert capacity_at(h100, h100.search_slo_ms).streams == h100.search_streams


def test_committed_h200_table_matches_the_h200_run():
    h200 = load_tables(default_tables_dir())["h200"]
    assert json.loads(Path(h200.source).read_text()) == build_table(H200_RUN, "h200", measured=h200.measured)
    assert h200.search_streams == 897 and h200.one_stream_p99_ms == 8.67
    assert capacity_at(h200, h200.search_slo_ms).streams == h200.search_streams
    # Both rows come from the same server configuration.
    flags = {(run / "serve-flags.txt").read_text().strip() for run in (H100_RUN, H200_RUN)}
    assert flags == {"serve flags: --workers 3"}


def test_plan_on_the_h100_table():
    h100 = load_tables()["h100"]
    plan = make_plan(h100, 1500, 150)
    assert plan.capacity.streams == 828
    assert plan.per_replica == math.floor(828 * 0.8) == 662
    assert plan.replicas == plan.gpus == math.ceil(1500 / 662) == 3
    with_spare = make_plan(h100, 1500, 150, headroom=0.0, spare=1)
    assert with_spare.replicas == math.ceil(1500 / 828) + 1
    assert make_plan(h100, 1, 150).replicas == 1


def test_voxserve_plan_command(capsys):
    main(["plan", "--streams", "1500", "--slo-ms", "150", "--gpu", "h100"])
    out = capsys.readouterr().out
    assert "replicas:           3" in out and "GPUs:               3 x h100" in out
    assert "assumptions:" in out and "headroom" in out
    main(["plan", "--streams", "100", "--slo-ms", "150", "--gpu", "h100", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["replicas"] == 1 and data["capacity"]["streams"] == 828 and data["assumptions"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--streams", "10", "--slo-ms", "5", "--gpu", "h100"], "below what one stream measured"),
        (["--streams", "10", "--slo-ms", "150", "--gpu", "a100"], "no sizing table"),
        (["--streams", "0", "--slo-ms", "150"], "--streams"),
        (["--streams", "10", "--slo-ms", "150", "--headroom", "1"], "--headroom"),
    ],
)
def test_voxserve_plan_errors_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(["plan", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("voxserve: error:") and message in err and err.count("\n") == 1


def test_plan_reads_a_tables_directory_with_h100_and_h200(tmp_path, capsys):
    shutil.copy(default_tables_dir() / "h100.json", tmp_path / "h100.json")
    write(tmp_path, table_dict([level(1, 20), level(64, 60), level(256, 140), level(512, 400)], 18.0, "h200"))
    main(["plan", "--streams", "1000", "--slo-ms", "150", "--tables", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("GPUs:") == 2 and "x h200" in out and "x h100" in out


def test_report_block_and_doc_markers(tmp_path):
    block = markdown(load_tables())
    assert "| h100 |" in block and "| 828 |" in block and "21.8 %" in block  # capacity, stalled answers
    doc = tmp_path / "sizing.md"
    doc.write_text("# t\n<!-- sizing:begin -->\nold\n<!-- sizing:end -->\ntail\n")
    update_doc(doc, block)
    text = doc.read_text()
    assert "old" not in text and block in text and text.endswith("tail\n")
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    with pytest.raises(SizingError, match="markers"):
        update_doc(plain, block)
