"""Stage svd (spectral-svd and steps/svd.sh) on tiny saved models: our final.pt and a transformers WavLM."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from spectral.adapters import AdapterConfig, adapter_layers, apply_adapters  # noqa: E402
from spectral.svd import load_factors, main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = ("factors.pt", "spectra.json", "spectra.png")


class TinyEncoder(nn.Module):
    """Two layers with q_proj/k_proj (k_proj non-square) and a v_proj the targets skip."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(2):
            layer = nn.Module()
            layer.q_proj = nn.Linear(16, 16)
            layer.k_proj = nn.Linear(16, 24)
            layer.v_proj = nn.Linear(16, 16)
            self.layers.append(layer)
        self.norm = nn.LayerNorm(16)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny matrices: one thread is faster, and immune to OpenMP spinning on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def final_pt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = TinyEncoder()
    path = tmp_path_factory.mktemp("pretrain") / "final.pt"
    torch.save({"model": {f"backbone.{k}": v for k, v in model.state_dict().items()}, "config": {"hidden": 16}}, path)
    return path


@pytest.fixture(scope="module")
def wavlm_dir(tmp_path_factory) -> Path:
    transformers = pytest.importorskip("transformers")
    config = transformers.WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_buckets=32, max_bucket_distance=64,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("wavlm") / "tiny_wavlm"
    transformers.WavLMModel(config).save_pretrained(path)
    return path


def test_final_pt_gives_factors_report_and_plot(final_pt, tmp_path):
    out = tmp_path / "svd"
    assert main(["--top-k", "8", "--strip-prefix", "backbone.", str(final_pt), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # no temporary left behind
    factors = load_factors(out / "factors.pt")
    names = ["layers.0.q_proj", "layers.0.k_proj", "layers.1.q_proj", "layers.1.k_proj"]
    assert list(factors) == names
    state = torch.load(final_pt, weights_only=True)["model"]
    w = state["backbone.layers.0.k_proj.weight"].double()
    f = factors["layers.0.k_proj"]
    assert f["U"].shape == (24, 8) and f["S"].shape == (16,) and f["Vh"].shape == (8, 16)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    assert torch.allclose(f["S"].double(), s, rtol=1e-6)
    assert torch.allclose((f["U"].double() * f["S"][:8].double()) @ f["Vh"].double(), (u[:, :8] * s[:8]) @ vh[:8], atol=1e-6)
    report = json.loads((out / "spectra.json").read_text())
    assert report["top_k"] == 8 and report["method"] == "full"
    entry = report["matrices"]["layers.0.k_proj"]
    energy = float((s[:8] ** 2).sum() / (s**2).sum())
    assert entry["shape"] == [24, 16]
    assert entry["energy_top_k"] == pytest.approx(energy, rel=1e-9)
    assert entry["reconstruction_error"] == pytest.approx((1 - energy) ** 0.5, rel=1e-6)
    assert 1 < entry["effective_rank"] <= 16
    assert (out / "spectra.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_transformers_directory_factors_feed_apply_adapters(wavlm_dir, tmp_path):
    from transformers import WavLMModel

    out = tmp_path / "svd"
    assert main(["--top-k", "8", "--bottom", "4", str(wavlm_dir), str(out)]) == 0
    factors = load_factors(out / "factors.pt")
    assert len(factors) == 4 and "encoder.layers.1.attention.q_proj" in factors
    x = torch.randn(1, 1600, generator=torch.Generator().manual_seed(0))
    model = WavLMModel.from_pretrained(wavlm_dir, local_files_only=True).eval()
    with torch.no_grad():
        before = model(x).last_hidden_state
    for method in ("spectralft", "milora"):
        model = WavLMModel.from_pretrained(wavlm_dir, local_files_only=True).eval()
        apply_adapters(model, AdapterConfig(method=method, rank=2, top_k=8), factors=factors)
        assert len(adapter_layers(model)) == 4
        with torch.no_grad():
            after = model(x).last_hidden_state
        assert torch.allclose(after, before, rtol=1e-5, atol=1e-5), method


def test_lowrank_method_finds_the_full_subspace_of_a_decaying_spectrum(tmp_path):
    torch.manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(64, 48))
    v, _ = torch.linalg.qr(torch.randn(48, 48))
    weight = (u * torch.logspace(0, -3, 48)) @ v.T
    ckpt = tmp_path / "final.pt"
    torch.save({"model": {"enc.q_proj.weight": weight}, "config": {}}, ckpt)
    assert main(["--top-k", "6", str(ckpt), str(tmp_path / "full")]) == 0
    assert main(["--top-k", "6", "--method", "lowrank", "--niter", "2", str(ckpt), str(tmp_path / "low")]) == 0
    full = load_factors(tmp_path / "full" / "factors.pt")["enc.q_proj"]
    low = load_factors(tmp_path / "low" / "factors.pt")["enc.q_proj"]
    assert torch.linalg.svdvals(full["U"].double().T @ low["U"].double()).min() > 0.9999
    report = json.loads((tmp_path / "low" / "spectra.json").read_text())["matrices"]["enc.q_proj"]
    assert report["effective_rank"] is None and len(report["singular_values"]) == 6


@pytest.mark.parametrize(
    "setup,args,message",
    [
        ("missing", [], "no such checkpoint"),
        ("corrupt", [], "cannot read the checkpoint"),
        ("no_model_key", [], "not a final.pt checkpoint"),
        ("good", ["--targets", "query"], "no weight matrix matches"),
        ("good", ["--top-k", "20"], "layers.0.q_proj (16x16): --top-k 20"),
        ("no_config_dir", [], "needs config.json"),
    ],
)
def test_bad_input_names_the_file_and_writes_nothing(setup, args, message, final_pt, tmp_path, capsys):
    ckpt = tmp_path / "final.pt"
    if setup == "corrupt":
        ckpt.write_bytes(b"PK\x03\x04 truncated")
    elif setup == "no_model_key":
        torch.save({"weights": {}}, ckpt)
    elif setup == "good":
        ckpt = final_pt
    elif setup == "no_config_dir":
        ckpt = tmp_path / "model_dir"
        ckpt.mkdir()
    out = tmp_path / "svd"
    assert main([*args, str(ckpt), str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err
    if setup != "good":
        assert str(ckpt) in err
    assert not out.exists() or not any(out.iterdir())


def test_bottom_with_lowrank_is_a_usage_error(final_pt, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--method", "lowrank", "--bottom", "2", str(final_pt), str(tmp_path / "svd")])
    assert exc.value.code == 2


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "example:" in out and "--top-k" in out and "--strip-prefix" in out


def test_shell_stage_checks_inputs_and_runs(final_pt, tmp_path):
    script = REPO / "steps" / "svd.sh"
    usage = subprocess.run(["bash", str(script)], cwd=REPO, capture_output=True, text=True)
    assert usage.returncode == 1 and "Usage:" in usage.stderr
    missing = subprocess.run(["bash", str(script), str(tmp_path / "nope.pt"), str(tmp_path / "o")], cwd=REPO, capture_output=True, text=True)
    assert missing.returncode == 1 and "nope.pt missing" in missing.stderr
    out = tmp_path / "svd"
    run = subprocess.run(
        ["bash", str(script), "--top-k", "4", "--targets", "q_proj k_proj", "--strip-prefix", "backbone.", str(final_pt), str(out)],
        cwd=REPO, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"{script} --top-k 4")
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    assert len(load_factors(out / "factors.pt")) == 4
