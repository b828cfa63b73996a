"""The encoder on ONNX Runtime: exported once and cached, the same vectors as torch, torch when it can't run."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from rolesearch.encoder.base import resolve_model
from rolesearch.encoder.onnx_encoder import EXPORT_FORMAT
from rolesearch.encoder.spec import EncoderSpec

TEXTS = ["Who owns model rollback?", "The MLOps engineer manages model versions and rolls back a bad release. " * 3,
         "Feature engineering"]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def torch_embedder():
    """The reference: the model on torch."""
    return EncoderSpec(backend="torch").load()


def test_export_is_cached_and_reused(onnx_cache, torch_embedder, caplog):
    embedder = torch_embedder
    spec = EncoderSpec(backend="onnx", onnx_cache=str(onnx_cache))
    with caplog.at_level(logging.INFO, logger="rolesearch.encoder.onnx_encoder"):
        first = spec.load()
    assert "exporting" in caplog.text
    exported = list(onnx_cache.glob("*/model.onnx"))
    assert len(exported) == 1 and first.onnx_path == exported[0]
    stamp = exported[0].stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rolesearch.encoder.onnx_encoder"):
        second = spec.load()
    assert "exporting" not in caplog.text and "loaded cached" in caplog.text
    assert exported[0].stat().st_mtime_ns == stamp
    # fp32 on ONNX Runtime gives torch's vectors (same vector space, so caches are shared).
    cosines = (second.encode(TEXTS) * embedder.encode(TEXTS)).sum(1)
    assert cosines.min() > 0.9999, cosines
    assert second.vectors == embedder.vectors
    assert [second.count_tokens(t) for t in TEXTS] == [embedder.count_tokens(t) for t in TEXTS]
    assert second.max_tokens == embedder.max_tokens and second.dimension == embedder.dimension
    np.testing.assert_allclose(second.encode_query(TEXTS[0]), second.encode([TEXTS[0]]), atol=1e-6)


def test_int8_is_close_to_fp32_and_kept_apart_in_caches(onnx_cache, torch_embedder, caplog):
    import onnx

    embedder = torch_embedder
    with caplog.at_level(logging.INFO, logger="rolesearch.encoder.onnx_encoder"):
        int8 = EncoderSpec(backend="onnx-int8", onnx_cache=str(onnx_cache)).load()
    assert "exporting" not in caplog.text  # made from the cached fp32 export, not exported again
    cosines = (int8.encode(TEXTS) * embedder.encode(TEXTS)).sum(1)
    assert cosines.min() > 0.97, cosines
    assert int8.vectors != embedder.vectors  # the embedding cache and incremental builds never mix them
    assert int8.vectors == f"{embedder.name}#int8-f{EXPORT_FORMAT}"  # nor another export format's int8 vectors
    # Quantised after the transformer fusions: the attention itself runs in int8, not only the dense layers.
    assert int8.onnx_path.name == "model-int8.onnx" and (int8.onnx_path.parent / "model-fused.onnx").is_file()
    ops = {n.op_type for n in onnx.load(str(int8.onnx_path), load_external_data=False).graph.node}
    assert {"QAttention", "MatMulInteger"} <= ops, ops
    assert not int8.batch_invariant  # its vectors depend on batch-mates: the server never batches it


def test_cache_key_names_the_export_format(monkeypatch):
    from rolesearch.encoder import onnx_encoder

    path = resolve_model("all-MiniLM-L6-v2")
    key = onnx_encoder.export_key(path)
    assert onnx_encoder.export_key(path) == key
    # Graphs made another way (an older format) live under another key: never loaded for the new graph.
    monkeypatch.setattr(onnx_encoder, "EXPORT_FORMAT", onnx_encoder.EXPORT_FORMAT - 1)
    assert onnx_encoder.export_key(path) != key


def test_model_that_cannot_be_exported_falls_back_to_torch(tmp_path, caplog):
    # A model without a fast tokenizer file cannot run outside torch here; torch still loads it (vocab.txt).
    model = tmp_path / "model"
    model.mkdir()
    source = Path(resolve_model("all-MiniLM-L6-v2"))
    for f in source.iterdir():
        if f.name != "tokenizer.json":
            os.symlink(f, model / f.name)
    with caplog.at_level(logging.WARNING, logger="rolesearch.encoder.spec"):
        embedder = EncoderSpec(model=str(model), backend="onnx", onnx_cache=str(tmp_path / "cache")).load()
    assert embedder.backend == "torch"
    assert "falling back to torch" in caplog.text and "tokenizer.json" in caplog.text
    assert embedder.encode(TEXTS[:1]).shape == (1, 384)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        EncoderSpec(backend="tensorrt").load()
