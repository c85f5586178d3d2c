"""evaluate.py: metric names, error paths, and a run evaluated end to end."""

import json
import os
import subprocess
import sys

import pytest
from train_helpers import ROOT, tiny_config

from jaxstyle.metrics import evaluate as ev

# ---------------------------------------------------------------- names

@pytest.mark.parametrize("name, family, num, params", [
    ("fd_oracle", "fd_oracle", None, {}),
    ("fd_oracle5k", "fd_oracle", 5000, {}),
    ("disentanglement", "disentanglement", None, {}),
    ("ls_z", "ls", None, {"space": "z"}),
    ("ls_w200k", "ls", 200_000, {"space": "w"}),
    ("fid50k", "fid", 50_000, {"full": False}),
    ("fid50k_full", "fid", 50_000, {"full": True}),
    ("kid50k_full", "kid", 50_000, {"full": True}),
    ("kid", "kid", None, {"full": False}),
    ("ppl_wend", "ppl", None, {"space": "w", "sampling": "end", "crop": True}),
    ("ppl_zfull", "ppl", None, {"space": "z", "sampling": "full", "crop": True}),
    ("ppl2_wend", "ppl", None, {"space": "w", "sampling": "end", "crop": False}),
    ("ppl_zfull100k", "ppl", 100_000, {"space": "z", "sampling": "full", "crop": True}),
    ("ppl_style_full", "ppl", None, {"space": "style", "sampling": "full", "crop": True}),
    ("ppl_content_end1m", "ppl", 1_000_000, {"space": "content", "sampling": "end", "crop": True}),
])
def test_metric_names_parse(name, family, num, params):
    spec = ev.parse_metric(name)
    assert (spec.name, spec.family, spec.num, dict(spec.params)) == (name, family, num, params)


@pytest.mark.parametrize("name", ["fid50", "ls_x", "ppl_wmid", "fd", "fid50kk", "ppl_style"])
def test_unknown_names_list_the_valid_ones(name):
    if name == "fid50":     # a bare count is valid: 50 samples
        assert ev.parse_metric(name).num == 50
        return
    with pytest.raises(ev.UsageError, match=r"unknown metric .*valid names: fd_oracle\[COUNT\].*ppl"):
        ev.parse_metric(name)


def test_metric_list_and_counts():
    assert [s.name for s in ev.parse_metrics(" fd_oracle, ls_z ,ls_w,")] == ["fd_oracle", "ls_z", "ls_w"]
    assert (ev.parse_count("50k"), ev.parse_count("1m"), ev.parse_count("123")) == (50_000, 1_000_000, 123)
    with pytest.raises(ev.UsageError, match="no metric given"):
        ev.parse_metrics(" , ")


# ---------------------------------------------------------------- error paths

def test_unknown_metric_exits_2_before_opening_the_run(tmp_path, capsys):
    assert ev.main(["--checkpoint", str(tmp_path / "nowhere"), "--metrics", "fd_oracle,fidd"]) == 2
    err = capsys.readouterr().err
    assert "unknown metric 'fidd'" in err and "valid names" in err and "Traceback" not in err


def test_missing_checkpoint_exits_2(tmp_path, capsys):
    assert ev.main(["--checkpoint", str(tmp_path / "nowhere"), "--metrics", "fd_oracle"]) == 2
    assert "nowhere not found" in capsys.readouterr().err
    assert ev.main(["--checkpoint", str(tmp_path), "--metrics", "fd_oracle"]) == 2   # a dir, no run
    assert "config.json not found" in capsys.readouterr().err


def test_fid_without_inception_weights_is_a_usage_error(tmp_path, capsys):
    argv = ["--checkpoint", str(tmp_path), "--metrics", "fid50k", "--inception", str(tmp_path / "none.pth")]
    assert ev.main(argv) == 2
    err = capsys.readouterr().err
    assert "fid50k" in err and "Inception weights not found" in err and "Traceback" not in err


def test_top_level_script_exits_2_with_one_message(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py"), "--checkpoint", str(tmp_path),
                           "--metrics", "nope"], check=False, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown metric 'nope'")


# ---------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 16x16 toyfaces run directory as train.py writes it (config.json, one checkpoint), written
    from the initial state at iteration 5: training even one step compiles all four phases
    (over a minute on the shared 2-core CPU). The oracle resizes 16x16 images to its 32x32."""
    import jax

    from jaxstyle.checkpoint import Checkpointer
    from jaxstyle.data.registry import open_source
    from jaxstyle.logging import save_config
    from jaxstyle.parallel import make_mesh
    from jaxstyle.training.loop import build, identity, trainer_for
    config = tiny_config()
    workdir = tmp_path_factory.mktemp("evalrun")
    G, D, objective = build(config, open_source(config.data.source, config.data.resolution))
    state = trainer_for(G, D, objective, make_mesh()).init_state(jax.random.key(config.seed))
    save_config(str(workdir), config.to_dict())
    ckpt = Checkpointer(str(workdir / "checkpoints"), asynchronous=False)
    ckpt.save(5, state.replace(step=state.step + 5), {"nimg": 40}, identity(config))
    ckpt.wait()
    return workdir


def test_fd_oracle_and_separability_on_a_tiny_run(tiny_run, capsys):
    (tiny_run / ev.RESULTS_FILE).write_text('{"metric": "earlier"}\n')    # results are appended
    argv = ["--checkpoint", str(tiny_run), "--metrics", "fd_oracle,ls_z64,ls_w64", "--num", "24",
            "--batch-size", "12", "--no-progress"]
    assert ev.main(argv) == 0
    table = capsys.readouterr().out
    assert "fd_oracle" in table and "ls_w64" in table
    records = [json.loads(line) for line in (tiny_run / ev.RESULTS_FILE).read_text().splitlines()]
    assert [r["metric"] for r in records] == ["earlier", "fd_oracle", "ls_z64", "ls_w64"]
    fd, lz, lw = records[1:]
    assert fd["num"] == 24 and fd["value"] > 0 and "FD_oracle" in fd["distance"]
    assert fd["iteration"] == 5 and fd["kimg"] == pytest.approx(0.04)
    for r, space in ((lz, "z"), (lw, "w")):
        assert r["num"] == 64 and r["num_keep"] == 32 and r["space"] == space
        assert len(r["entropy_bits"]) == 13
        assert 1.0 <= r["value"] <= 2.0 ** 13
        assert r["value"] == pytest.approx(2 ** sum(r["entropy_bits"].values()))


def test_ppl_on_a_tiny_run_is_labelled_and_positive(tiny_run, capsys):
    argv = ["--checkpoint", str(tiny_run), "--metrics", "ppl2_wend8,ppl_zfull8", "--batch-size", "4",
            "--no-progress", "--ppl-distance", "oracle_features"]
    assert ev.main(argv) == 0
    records = [json.loads(line) for line in (tiny_run / ev.RESULTS_FILE).read_text().splitlines()][-2:]
    assert [r["metric"] for r in records] == ["ppl2_wend8", "ppl_zfull8"]
    for r in records:
        assert r["num"] == 8 and r["distance"] == "oracle_features" and r["value"] > 0
        assert 0 < r["num_kept"] <= 8
    assert records[0]["crop"] is False and records[1]["crop"] is True
    with pytest.raises(ev.UsageError, match="content codes"):
        ev.evaluate(tiny_run, ev.parse_metrics("ppl_style_end8"), ev.Options(batch_size=4, progress=False))


def test_two_hosts_give_the_one_host_figures(tiny_run):
    """evaluate.py as two processes (2 CPU devices each, gloo): every host gathers all samples, one
    host writes, and the figures are the single-process ones."""
    import os
    import subprocess
    import sys

    from test_train_process import free_port
    from train_helpers import ROOT
    metrics, num = "fd_oracle,ls_w32", 16
    one = ev.evaluate(tiny_run, ev.parse_metrics(metrics), ev.Options(num=num, batch_size=8, progress=False),
                      print_fn=lambda _: None)
    before = (tiny_run / ev.RESULTS_FILE).read_text().splitlines()
    port = free_port()
    argv = [sys.executable, os.path.join(ROOT, "evaluate.py"), "--checkpoint", str(tiny_run), "--metrics",
            metrics, "--num", str(num), "--batch-size", "8", "--no-progress"]
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={
        **os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_COORDINATOR_ADDRESS": f"localhost:{port}", "JAXSTYLE_NUM_PROCESSES": "2",
        "JAXSTYLE_PROCESS_ID": str(i)}) for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outs)
    assert "fd_oracle" in outs[0] and "fd_oracle" not in outs[1]    # one host prints the table
    after = (tiny_run / ev.RESULTS_FILE).read_text().splitlines()
    two = [json.loads(line) for line in after[len(before):]]
    assert [r["metric"] for r in two] == ["fd_oracle", "ls_w32"]    # one host writes
    for a, b in zip(one, two):
        assert b["num"] == a["num"]
        assert b["value"] == pytest.approx(a["value"], rel=1e-3)
