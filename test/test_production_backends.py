"""The paper's production models through their real loaders, on tiny/random checkpoints saved here.

No weights can be downloaded on CI, so the tests write randomly initialised weight files exactly where
the real loaders look and check that what the loaders built holds those weights.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

DEEPFACE_SCRIPT = textwrap.dedent("""
    import os, sys, numpy as np, torch
    home = sys.argv[1]
    os.environ["DEEPFACE_HOME"] = home
    os.environ["DEEPFACE_BACKEND_ENGINE"] = "pytorch"
    weights = os.path.join(home, ".deepface", "weights")
    os.makedirs(weights, exist_ok=True)
    torch.manual_seed(0)
    from deepface.models.facial_recognition.pytorch.Facenet import InceptionResNetV1
    from retinaface.model.retinaface_pth_model import RetinaFace
    facenet = InceptionResNetV1(dimension=512).state_dict()
    torch.save(facenet, os.path.join(weights, "facenet512_weights.pth"))
    torch.save(RetinaFace().state_dict(), os.path.join(weights, "retinaface.pth"))

    from egomem_ros.retrieval.face import FaceBox, FaceEngine, make_face_backend
    backend = make_face_backend("deepface")
    from deepface import DeepFace
    loaded = DeepFace.build_model("Facenet512").model.state_dict()
    assert all(torch.equal(loaded[k], facenet[k]) for k in facenet), "Facenet512 weights not from our file"
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    boxes = backend.detect(img)            # random RetinaFace: any number of boxes, but no crash
    emb = backend.embed(img, FaceBox(100, 60, 220, 200))
    assert emb.shape == (512,) and np.all(np.isfinite(emb))
    again = backend.embed(img, FaceBox(100, 60, 220, 200))
    assert np.allclose(emb, again)
    engine = FaceEngine(backend)
    assert engine.threshold == 0.30 and backend.metric == "cosine"
    print("OK", len(boxes))
""")


def test_deepface_facenet512_retinaface_loader(tmp_path):
    pytest.importorskip("deepface")
    r = subprocess.run([sys.executable, "-c", DEEPFACE_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout[-1500:] + r.stderr[-3000:]


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("wavlm-sv-tiny")
    cfg = transformers.WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, tdnn_dim=(32, 32, 64), tdnn_kernel=(5, 3, 1), tdnn_dilation=(1, 2, 1),
        xvector_output_dim=24, num_buckets=32, max_bucket_distance=64)
    import torch

    torch.manual_seed(0)
    transformers.WavLMForXVector(cfg).save_pretrained(path)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(path)
    return path


def test_wavlm_sv_loader_on_tiny_random_checkpoint(tiny_wavlm):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    from egomem_ros.retrieval.voice import VoiceEngine, make_voice_backend

    backend = make_voice_backend("wavlm", str(tiny_wavlm))
    assert backend.dim == 24 and backend.model_name == f"wavlm_sv:{tiny_wavlm.name}"
    engine = VoiceEngine(backend, use_vad=False, min_voiced_s=0.1)
    rng = np.random.default_rng(0)
    a = engine.observe(rng.normal(size=16000).astype(np.float32) * 0.1, 16000).embedding
    b = engine.observe(rng.normal(size=16000).astype(np.float32) * 0.1, 16000).embedding
    assert a.shape == (24,) and np.all(np.isfinite(a)) and not np.allclose(a, b)


def test_speechbrain_backend_refuses_clearly_without_torchaudio():
    try:
        import torchaudio  # noqa: F401
        pytest.skip("torchaudio imports here; the refusal path does not apply")
    except Exception:  # noqa: BLE001
        pass
    from egomem_ros.retrieval.voice import make_voice_backend

    with pytest.raises(RuntimeError, match="torchaudio.*wavlm"):
        make_voice_backend("speechbrain")


def test_unknown_backends_are_named():
    from egomem_ros.retrieval.face import make_face_backend
    from egomem_ros.retrieval.voice import make_voice_backend

    with pytest.raises(ValueError, match="unknown face backend"):
        make_face_backend("opencv")
    with pytest.raises(ValueError, match="unknown voice backend"):
        make_voice_backend("x")
