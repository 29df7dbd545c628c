"""The workflow's plan (spectral.workflow): the corpus contract is checked when made, the plan
derives every stage's inputs without torch, and a dry run never imports torch."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from spectral.workflow import CorpusContract, Plan, PlanError, corpus_contract

REPO = Path(__file__).resolve().parents[1]
TRIALS = ["vox1_O", "vox1_H"]


def default_config(**patch) -> dict:
    config = yaml.safe_load((REPO / "conf" / "config.yaml").read_text())
    for section, values in patch.items():
        config.setdefault(section, {}).update(values)
    validate(config, str(REPO / "conf" / "config.schema.yaml"))
    return config


def contract(**fields) -> CorpusContract:
    base = dict(train_set="vox1_dev", trial_sets={t: "vox1_test" for t in TRIALS})
    return corpus_contract(TRIALS, **{**base, **fields})


def test_importing_the_plan_and_the_settings_imports_no_torch():
    code = ("import sys, spectral.workflow, spectral.train.config, spectral.models.config, spectral.adapters.config; "
            "print(sorted(m for m in ('torch', 'snakemake') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_dry_run_of_the_main_job_imports_no_torch(tmp_path, venv_env):
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('torch imported:', 'torch' in sys.modules))\n"
        f"sys.argv = ['snakemake', '-n', 'results/vox1_eer.txt', '--snakefile', {str(REPO / 'Snakefile')!r}, "
        f"'--directory', {str(tmp_path)!r}]\n"
        "from snakemake.cli import main\nmain()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=venv_env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch imported: False" in out.stdout, out.stdout[-2000:]


def test_builtin_linear_shapes_are_those_of_the_network():
    import torch

    from spectral.models.builtin import BuiltinBackbone
    from spectral.models.config import BuiltinConfig, builtin_linear_shapes

    for cfg in (BuiltinConfig(), BuiltinConfig(d_model=96, num_heads=3, num_layers=3, ffn_dim=200)):
        with torch.device("meta"):
            net = BuiltinBackbone(cfg)
        shapes = {n: tuple(m.weight.shape) for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)}
        assert list(builtin_linear_shapes(cfg).items()) == list(shapes.items())


@pytest.mark.parametrize("fields,message", [
    ({"trial_sets": {"vox1_O": "vox1_test"}}, "trial_sets must name the set of every configured trial list"),
    ({"train_set": "vox1/dev"}, "set names must match"),
    ({"enroll_maps": {"cnceleb1_avg": "m"}}, "are not configured lists"),
    ({"train_speakers": 3}, "train_speakers must be a digest"),
    ({"train_sets": "x"}, "a corpus contract takes"),
])
def test_a_bad_corpus_contract_is_refused_naming_what_is_wrong(fields, message):
    with pytest.raises(PlanError, match=message):
        contract(**fields)


def test_a_corpus_rule_file_without_a_contract_is_named():
    with pytest.raises(PlanError, match="must set CORPUS_CONTRACT"):
        Plan(default_config(), None)


def test_the_plan_registers_the_configured_system_and_every_comparison_run():
    config = default_config()
    config["compare"] = {**config["compare"], "seeds": [1, 2], "lr_grid": [],
                         "methods": [{"label": "frozen", "adapter": {"method": "frozen"}},
                                     {"label": "milora", "adapter": {"method": "milora", "rank": 3}}]}
    plan = Plan(config, contract())
    assert plan.system.startswith("builtin_spectralft_k64_r4_s1_") and plan.system in plan.systems
    assert [(label, seed) for label, _, seed, _ in plan.compare_runs] == [
        ("frozen", 1), ("frozen", 2), ("milora", 1), ("milora", 2)]
    milora = plan.compare_runs[2][3]
    # milora starts from its bottom-rank triplets: the factors at k = top_k, b = rank
    assert plan.finetune_inputs(milora)["factors"] == "exp/svd/builtin/k64_b3/factors.pt"
    assert "factors" not in plan.finetune_inputs(plan.compare_runs[0][3])
    # drift: spectral methods at their own k, the others at the builtin default
    assert plan.drift_inputs(milora)["factors"] == "exp/svd/builtin/k64_b0/factors.pt"


def test_a_system_with_other_augment_sources_than_the_config_is_refused():
    config = default_config(augment={"noise_prob": 0.5})
    plan = Plan(config, contract())
    settings = copy.deepcopy(plan.systems[plan.system])
    settings["augment"]["noise_dir"] = "/elsewhere"
    with pytest.raises(PlanError, match="shared by every system"):
        plan.augment_inputs(settings)
    assert plan.finetune_inputs(plan.system)["noise_manifest"] == "data/augment/noise_recordings.jsonl.gz"


def test_options_pass_exactly_the_declared_files():
    config = default_config(finetune={"dev_speakers": 4})
    plan = Plan(config, contract(reuse_from={"vox1_test": "vox1_dev"}))
    inputs = plan.finetune_inputs(plan.system)
    assert plan.finetune_options(plan.system) == (
        f"--backbone-checkpoint {inputs['backbone']} --factors {inputs['factors']} "
        f"--exclude-speakers {inputs['dev_speakers']} ")
    assert plan.scored == TRIALS + ["dev_val"]
    score = plan.score_inputs(plan.system, "vox1_O")
    assert f"--mean-scp {score['mean']}" in plan.score_options(plan.system, "vox1_O")
    embed = plan.embed_inputs(plan.system, "vox1_test")
    assert plan.embed_options(plan.system, "vox1_test") == f"--reuse {Path(embed['reuse']).parent}"


def test_a_shipped_backbone_takes_the_place_of_pretraining_in_the_plan_and_the_system_names(tmp_path):
    shipped = tmp_path / "models" / "builtin"
    shipped.mkdir(parents=True)
    here = default_config(model={"path": None}, corpus={"pretrain_root": "corpus/embedded/pretrain"})
    ship = default_config(model={"path": str(shipped)}, corpus={"pretrain_root": None})
    plan_here, plan_ship = Plan(here, contract()), Plan(ship, contract())
    assert "pretrain" in plan_here.sets and "pretrain" not in plan_ship.sets
    assert plan_here.shipped is None and plan_ship.shipped == str(shipped)
    # every stage reads the pre-trained backbone from the same place, shipped or pre-trained here
    assert plan_ship.finetune_inputs(plan_ship.system)["backbone"] == plan_here.pretrained == plan_ship.pretrained
    assert plan_here.system != plan_ship.system
    # the pretrain section made neither the shipped backbone nor the systems on it
    longer = default_config(model={"path": str(shipped)}, corpus={"pretrain_root": None}, pretrain={"epochs": 99})
    assert Plan(longer, contract()).system == plan_ship.system
    assert Plan(default_config(model={"path": None}, corpus={"pretrain_root": "corpus/embedded/pretrain"},
                               pretrain={"epochs": 99}), contract()).system != plan_here.system


def test_a_relative_shipped_backbone_is_found_in_the_checkout_when_not_in_the_work_directory(tmp_path, monkeypatch):
    (tmp_path / "checkout" / "models" / "builtin").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    config = default_config(model={"path": "models/builtin"}, corpus={"pretrain_root": None})
    assert Plan(config, contract(), str(tmp_path / "checkout")).shipped == str(tmp_path / "checkout/models/builtin")
    (tmp_path / "models" / "builtin").mkdir(parents=True)  # the work directory's own comes first
    assert Plan(config, contract(), str(tmp_path / "checkout")).shipped == "models/builtin"


def test_a_builtin_backbone_with_neither_a_shipped_one_nor_a_pretraining_corpus_is_refused():
    config = default_config(model={"path": None}, corpus={"pretrain_root": None})
    with pytest.raises(PlanError, match="needs a pre-trained backbone: model.path .* or corpus.pretrain_root"):
        Plan(config, contract())


def test_the_default_comparison_chooses_every_low_rank_lr_on_dev_val_and_shares_the_main_system():
    """conf/config.yaml's comparison: nine methods x three seeds, every method but frozen at each
    grid value with the first seed; the main job's system is the SpectralFT grid run at 0.1."""
    plan = Plan(default_config(), contract())
    grid = plan.config["compare"]["lr_grid"]
    labels = [m["label"] for m in plan.config["compare"]["methods"]]
    assert grid == [0.1, 0.3, 1.0] and len(labels) == 9 and plan.dev_speakers > 0
    runs = plan.lr_grid_runs()
    assert len(runs) == (len(labels) - 1) * len(grid) and "frozen" not in {label for label, _, _ in runs}
    assert ("spectralft", 0.1, plan.system) in runs
    # one system per (method, value, seed), frozen once per seed: 3 + 8 x 3 x 3
    assert len({system for *_, system in plan.compare_runs}) == 3 + 8 * 3 * 3
