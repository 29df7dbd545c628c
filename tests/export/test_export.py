"""Stage export: hf/, the ONNX/TorchScript extractor and peft/ round-trip to what the pipeline computes.

Each numerical claim of the export is pinned here: transformers' own loading of hf/ gives our
merged model's hidden states (1e-5); onnxruntime and TorchScript give spectral-embed's embeddings
on 1 s, 4 s and 20 s utterances (1e-4); peft's PeftModel on the pre-trained backbone, merged,
gives final.pt's weights (1e-5) for lora, pissa, milora and spectralft; methods without an
exact low-rank form get a message, not a crash.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).parent))
from export_fixtures import make_system  # noqa: E402

from spectral import embed  # noqa: E402
from spectral.errors import InputError  # noqa: E402
from spectral.export import export_system  # noqa: E402
from spectral.export.cli import main as export_main  # noqa: E402
from spectral.models.speaker import load_model_checkpoint  # noqa: E402

pytest.importorskip("transformers")
ort = pytest.importorskip("onnxruntime")
peft = pytest.importorskip("peft")
os.environ["HF_HUB_OFFLINE"] = "1"

SECONDS = (1, 4, 20)


def export(system, out, **kw):
    return export_system(system.final, out, system.backbone_checkpoint, system.pretrained_dir, system.factors, **kw)


@pytest.fixture(scope="module")
def systems(tmp_path_factory):
    """SpectralFT systems on the builtin backbone and on a tiny saved WavLM, exported once."""
    out = {}
    for kind in ("builtin", "wavlm"):
        root = tmp_path_factory.mktemp(f"sys_{kind}")
        # the WavLM one leaves hidden state 0 out of the weighted sum (backend.first_state)
        system = make_system(root, kind, "spectralft", alpha=4.0, first_state=int(kind == "wavlm"))
        export(system, root / "export")
        out[kind] = (system, root / "export")
    return out


def _data_dir(tmp_path: Path, kind: str) -> tuple[Path, dict[str, np.ndarray]]:
    """A Kaldi data directory of three utterances (1 s, 4 s, 20 s): fbank ark/scp or wav files."""
    rng = np.random.default_rng(5)
    data = tmp_path / f"data_{kind}"
    data.mkdir()
    inputs = {}
    if kind == "builtin":
        with kaldiio.WriteHelper(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as writer:
            for s in SECONDS:
                x = (rng.standard_normal((s * 100, 80)) + 3.0).astype(np.float32)  # not mean-free: CMN matters
                writer(f"utt{s:02d}", x)
                inputs[f"utt{s:02d}"] = x
    else:
        lines = []
        for s in SECONDS:
            x = (0.1 * rng.standard_normal(s * 16000)).astype(np.float32)
            sf.write(data / f"utt{s:02d}.wav", x, 16000, subtype="FLOAT")
            lines.append(f"utt{s:02d} {data / f'utt{s:02d}.wav'}")
            inputs[f"utt{s:02d}"] = x
        (data / "wav.scp").write_text("\n".join(lines) + "\n")
    (data / "utt2spk").write_text("".join(f"{u} spk\n" for u in inputs))
    return data, inputs


@pytest.mark.parametrize("kind", ["builtin", "wavlm"])
def test_onnx_and_torchscript_extractors_equal_spectral_embed_on_1_4_and_20_s(kind, systems, tmp_path):
    system, out = systems[kind]
    data, inputs = _data_dir(tmp_path, kind)
    scp = embed.embed_set(system.final, data, tmp_path / "emb", threads=1, progress=False)
    reference = dict(kaldiio.load_scp(str(scp)))
    session = ort.InferenceSession(str(out / "extractor.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    assert name == ("feats" if kind == "builtin" else "wave")
    scripted = torch.jit.load(str(out / "extractor.pt"))
    for utt, x in inputs.items():
        ref = reference[utt]
        onnx_emb = session.run(None, {name: x[None]})[0][0]
        with torch.no_grad():
            ts_emb = scripted(torch.from_numpy(x)[None])[0].numpy()
        assert np.linalg.norm(onnx_emb) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(onnx_emb, ref, atol=1e-4, err_msg=f"onnx {utt}")
        np.testing.assert_allclose(ts_emb, ref, atol=1e-4, err_msg=f"torchscript {utt}")


HF_PROBE = """
import sys, numpy as np, transformers
model = getattr(transformers, sys.argv[2]).from_pretrained(sys.argv[1], local_files_only=True).eval()
wave = np.load(sys.argv[3])
import torch
with torch.no_grad():
    states = model(torch.from_numpy(wave), output_hidden_states=True).hidden_states
np.save(sys.argv[4], np.stack([s.numpy() for s in states]))
assert not any(m == "spectral" or m.startswith("spectral.") for m in sys.modules), "spectral was imported"
"""


@pytest.mark.parametrize("kind", ["wavlm", "hubert"])
def test_hf_directory_loads_with_transformers_alone_and_gives_our_hidden_states(kind, systems, tmp_path):
    if kind == "wavlm":
        system, out = systems["wavlm"]
    else:
        system = make_system(tmp_path / "sys", "hubert", "lora")
        out = tmp_path / "export"
        export(system, out, what=("hf",))
    assert (out / "hf" / "config.json").is_file() and (out / "hf" / "model.safetensors").is_file()
    model, _ = load_model_checkpoint(system.final)
    wave = 0.1 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(1))
    normalised = (wave - wave.mean(1, keepdim=True)) / torch.sqrt(wave.var(1, keepdim=True) + 1e-7)
    with torch.no_grad():
        ours = torch.stack(model.backbone(wave)).numpy()
    np.save(tmp_path / "wave.npy", normalised.numpy())
    cls = "WavLMModel" if kind == "wavlm" else "HubertModel"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    subprocess.run([sys.executable, "-c", HF_PROBE, str(out / "hf"), cls, str(tmp_path / "wave.npy"),
                    str(tmp_path / "states.npy")], check=True, env=env, cwd=tmp_path, capture_output=True)
    theirs = np.load(tmp_path / "states.npy")
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, atol=1e-5)


def test_backend_safetensors_and_json_rebuild_the_embedding_from_hf_hidden_states(systems):
    import transformers
    from safetensors.torch import load_file

    from spectral.models import BackendConfig
    from spectral.models.backend import SpeakerBackend

    system, out = systems["wavlm"]
    meta = json.loads((out / "backend.json").read_text())
    backend = SpeakerBackend(meta["num_hidden_states"], meta["hidden_size"], BackendConfig.from_dict(meta["backend"]))
    backend.load_state_dict(load_file(str(out / "backend.safetensors")))
    backend.eval()
    hf = transformers.WavLMModel.from_pretrained(str(out / "hf"), local_files_only=True).eval()
    wave = 0.1 * torch.randn(1, 16000, generator=torch.Generator().manual_seed(2))
    normalised = (wave - wave.mean(1, keepdim=True)) / torch.sqrt(wave.var(1, keepdim=True) + 1e-7)
    scripted = torch.jit.load(str(out / "extractor.pt"))
    with torch.no_grad():
        emb = torch.nn.functional.normalize(backend(list(hf(normalised, output_hidden_states=True).hidden_states)), dim=-1)
        assert torch.allclose(emb, scripted(wave), atol=1e-5)


def _pretrained_root(system):
    from spectral.export.peft_format import pretrained_backbone

    ckpt = torch.load(system.final, weights_only=True)
    backbone = pretrained_backbone(ckpt, system.backbone_checkpoint, system.pretrained_dir)
    return ckpt, (backbone.model if hasattr(backbone, "model") else backbone)


@pytest.mark.parametrize(
    "kind,method,alpha",
    [("builtin", "lora", 4.0), ("builtin", "pissa", 4.0), ("builtin", "milora", None), ("builtin", "spectralft", None),
     ("wavlm", "spectralft", 4.0), ("wavlm", "pissa", None)],
)
def test_peft_adapter_merged_onto_the_pretrained_backbone_gives_our_weights(kind, method, alpha, tmp_path):
    from peft import PeftModel

    system = make_system(tmp_path / "sys", kind, method, alpha=alpha, seed=3)
    out = tmp_path / "export"
    manifest = export(system, out, what=("peft",), peft="require")
    assert manifest["written"] == ["peft/"]
    config = json.loads((out / "peft" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == (2 if method == "lora" else 4)
    ckpt, root = _pretrained_root(system)
    prefix = "backbone.model." if kind != "builtin" else "backbone."
    before = {k: v.clone() for k, v in root.state_dict().items()}
    merged = PeftModel.from_pretrained(root, str(out / "peft")).merge_and_unload()
    state = merged.state_dict()
    changed = 0
    for key, value in state.items():
        ours = ckpt["model"][prefix + key]
        assert torch.allclose(value, ours, atol=1e-5), key
        changed += not torch.allclose(before[key], ours, atol=1e-4)
    assert changed == 2 * 2  # q_proj and k_proj of both layers moved, nothing else


def test_unmerged_peft_adapter_acts_on_the_builtin_backbone(tmp_path):
    from peft import PeftModel

    system = make_system(tmp_path / "sys", "builtin", "spectralft", seed=4)
    export(system, tmp_path / "export", what=("peft",))
    _, root = _pretrained_root(system)
    model, _ = load_model_checkpoint(system.final)
    feats = torch.randn(1, 50, 80, generator=torch.Generator().manual_seed(0))
    peft_model = PeftModel.from_pretrained(root, str(tmp_path / "export" / "peft")).eval()
    with torch.no_grad():
        for a, b in zip(peft_model(feats), model.backbone(feats)):
            assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(
    "method,keep_residual,words",
    [("dora", True, "rescales every row"), ("spectralft_rot", True, "rotates"), ("full", True, "every weight"),
     ("frozen", True, "nothing in the backbone"), ("spectralft", False, "keep_residual=false")],
)
def test_methods_without_a_low_rank_form_get_a_clear_message(method, keep_residual, words, tmp_path, capsys):
    system = make_system(tmp_path / "sys", "builtin", method, keep_residual=keep_residual)
    manifest = export(system, tmp_path / "export", what=("peft", "backend"))
    assert not (tmp_path / "export" / "peft").exists()
    assert "no exact low-rank" in manifest["not_written"]["peft"] or "full-rank" in manifest["not_written"]["peft"]
    assert words in manifest["not_written"]["peft"] and "hf/" in manifest["not_written"]["peft"]
    assert json.loads((tmp_path / "export" / "export.json").read_text())["not_written"] == manifest["not_written"]
    with pytest.raises(InputError, match=words):
        export(system, tmp_path / "export2", what=("peft",), peft="require")
    rc = export_main([str(system.final), str(tmp_path / "export3"), "--what", "peft", "--peft", "require",
                      "--backbone-checkpoint", str(system.backbone_checkpoint)])
    assert rc == 1 and words in capsys.readouterr().err
    assert not (tmp_path / "export3").exists()


def test_peft_refuses_a_backbone_the_system_was_not_trained_from(tmp_path):
    system = make_system(tmp_path / "sys", "builtin", "lora")
    other = make_system(tmp_path / "other", "builtin", "lora", seed=9)
    with pytest.raises(InputError, match="differ"):
        export_system(system.final, tmp_path / "export", other.backbone_checkpoint, what=("peft",))
    assert not (tmp_path / "export").exists()


def test_cli_help_has_an_example_and_the_stage_script_checks_its_inputs(tmp_path):
    with pytest.raises(SystemExit):
        export_main(["--help"])
    root = Path(__file__).resolve().parents[2]
    help_text = subprocess.run(["bash", str(root / "steps/export.sh"), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "Usage" in help_text.stdout and "e.g." in help_text.stdout
    missing = subprocess.run(["bash", str(root / "steps/export.sh"), str(tmp_path / "nope.pt"), str(tmp_path / "out")],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "nope.pt" in missing.stderr
    assert not (tmp_path / "out").exists()


def test_unmerged_peft_lora_is_bypassed_by_transformers_wavlm_attention_so_merge_or_load_hf(tmp_path):
    """What the README warns about: WavLM hands q_proj.weight to F.multi_head_attention_forward."""
    import transformers
    from peft import PeftModel

    system = make_system(tmp_path / "sys", "wavlm", "lora", seed=5)
    export(system, tmp_path / "export", what=("peft", "hf"))
    wave = torch.randn(1, 8000, generator=torch.Generator().manual_seed(3))

    def states(model):
        with torch.no_grad():
            return torch.stack(model(wave, output_hidden_states=True).hidden_states)

    def plain():
        return transformers.WavLMModel.from_pretrained(str(system.pretrained_dir), local_files_only=True).eval()

    pretrained = states(plain())
    unmerged = PeftModel.from_pretrained(plain(), str(tmp_path / "export" / "peft")).eval()
    merged = PeftModel.from_pretrained(plain(), str(tmp_path / "export" / "peft")).merge_and_unload().eval()
    hf = transformers.WavLMModel.from_pretrained(str(tmp_path / "export" / "hf"), local_files_only=True).eval()
    assert torch.allclose(states(unmerged.base_model.model), pretrained, atol=1e-6)  # the adapter does not act
    assert float((states(merged) - pretrained).abs().max()) > 1e-4  # merged, it acts
    assert torch.allclose(states(merged), states(hf), atol=1e-5)


def test_a_missing_export_extra_is_named_before_any_work(tmp_path, monkeypatch):
    import importlib.util

    system = make_system(tmp_path / "sys", "builtin", "lora")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(InputError, match=r"onnx.*\[export\]"):
        export(system, tmp_path / "export")
    assert not (tmp_path / "export").exists()
