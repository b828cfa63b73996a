"""The embedding model on ONNX Runtime: exported once from the sentence-transformers model, cached, run with its tokenizer.

A query costs one forward pass; torch spends ~12 ms on it here, ONNX Runtime ~3 ms (fp32) or
less (dynamic int8). The whole sentence-transformers pipeline (transformer, pooling,
normalisation) is exported with torch's own exporter, so the graph returns the final vector.
The export lands in a cache folder keyed by the model files, the exporter and runtime versions
and EXPORT_FORMAT, so a second start only loads it. int8 is quantised from the fp32 export after
onnxruntime's transformer optimizer fused it (attention, layer norms, GELU): dynamic quantisation
then covers the fused attention too (docs/performance.md has the figures).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rolesearch.encoder.base import encode_in_groups

log = logging.getLogger(__name__)

ONNX_BACKENDS = ("onnx", "onnx-int8")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Part of the cache key: a change to how the graphs are made must never load a graph made the old way.
# 2: eager attention in the export (the optimizer recognises it), int8 from the fused graph.
EXPORT_FORMAT = 2


class ExportError(RuntimeError):
    """The model could not be exported to ONNX (the caller falls back to torch)."""


def default_cache_dir() -> Path:
    """Where exports live unless told otherwise: ~/.cache/rolesearch/onnx (XDG_CACHE_HOME respected)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "rolesearch" / "onnx"


def export_key(model_path: str) -> str:
    """Cache key of an export: the model's config files, its weights' size and time, the exporter and runtime."""
    from importlib.metadata import PackageNotFoundError, version

    # The installed versions, read from package metadata: importing torch only for its version costs seconds of
    # every start (an ingest or a server that loads a cached export never needs torch).
    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "none"

    h = hashlib.sha256()
    root = Path(model_path)
    for name in sorted(p.name for p in root.iterdir()) if root.is_dir() else [model_path]:
        f = root / name
        if f.is_file():
            st = f.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    h.update(f"torch={installed('torch')};ort={installed('onnxruntime')};format={EXPORT_FORMAT}".encode())
    return h.hexdigest()[:16]


def export_model(st_model, target: Path) -> None:
    """Export a loaded SentenceTransformer (token ids in, normalised sentence vector out) to target."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            features = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return self.model(features)["sentence_embedding"]

    sample = st_model.tokenize(["an example sentence", "another"])
    missing = [k for k in _INPUTS if k not in sample]
    if missing:
        raise ExportError(f"the tokenizer does not produce {', '.join(missing)}")
    args = tuple(sample[k] for k in _INPUTS)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # two processes exporting at once never share it
    axes = {k: {0: "batch", 1: "tokens"} for k in _INPUTS} | {"embedding": {0: "batch"}}
    try:
        with torch.no_grad():
            torch.onnx.export(Pipeline(st_model.eval()), args, str(tmp), input_names=list(_INPUTS),
                              output_names=["embedding"], dynamic_axes=axes, opset_version=17, dynamo=False)
    except Exception as exc:  # the exporter raises many kinds; all mean "not exportable"
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{type(exc).__name__}: {exc}") from exc
    os.replace(tmp, target)


def fuse(source: Path, target: Path, model_path: str) -> bool:
    """The fp32 export with onnxruntime's BERT fusions applied, into target; False when nothing fused (not BERT-like)."""
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        config = json.loads((Path(model_path) / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    # 0 lets the optimizer read them from the graph.
    heads, hidden = int(config.get("num_attention_heads", 0)), int(config.get("hidden_size", 0))
    try:
        model = optimize_model(str(source), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1)
    except Exception as exc:  # an unfamiliar graph: quantise the plain export instead
        log.info("no transformer fusions for %s (%s: %s)", model_path, type(exc).__name__, exc)
        return False
    if not model.get_fused_operator_statistics().get("Attention"):
        return False
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # two processes exporting at once never share it
    model.save_model_to_file(str(tmp))
    os.replace(tmp, target)
    return True


def quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of an fp32 graph (weights int8, activations quantised per batch)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # two processes exporting at once never share it
    # Per-channel weights: cosine to fp32 >= 0.987 on role-article text (per-tensor: 0.946). Shape inference
    # does not type the fused graph's contrib ops' outputs: they are float.
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    os.replace(tmp, target)


_export_lock = threading.Lock()


def cached_export(model_path: str, quantized: bool, cache_dir: Path,
                  load_st: Callable[[], object]) -> tuple[Path, bool]:
    """The path of the model's ONNX export (exported now when not cached) and whether it was exported now."""
    cache_dir = Path(cache_dir)
    folder = cache_dir / export_key(model_path)  # fp32 and int8 side by side: int8 is made from fp32
    target = folder / ("model-int8.onnx" if quantized else "model.onnx")
    if target.exists():
        return target, False
    with _export_lock:
        folder.mkdir(parents=True, exist_ok=True)
        fp32 = folder / "model.onnx"
        if not fp32.exists():
            log.info("exporting %s to ONNX in %s (once; later starts load it)", model_path, folder)
            export_model(load_st(), fp32)
        if quantized and not target.exists():
            fused = folder / "model-fused.onnx"
            quantize(fused if fused.exists() or fuse(fp32, fused, model_path) else fp32, target)
        (folder / "source.json").write_text(json.dumps({"model": model_path, "int8": quantized}))
    return target, True


class OnnxEncoder:
    """The Encoder interface on ONNX Runtime: same vectors (fp32) or nearly (int8), a fraction of the time."""

    def __init__(self, spec, model_path: str, onnx_path: Path, tokenizer_file: Path, max_tokens: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.spec = spec
        self.name = spec.model
        self.batch_size = spec.batch_size
        self.backend = spec.backend
        self.onnx_path = onnx_path
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if spec.threads:
            options.intra_op_num_threads = spec.threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.max_tokens = max_tokens
        self._counter = Tokenizer.from_file(str(tokenizer_file))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.enable_padding()
        self.dimension = int(self._run(["dimension probe"]).shape[1])
        # Vectors of the int8 graph differ from fp32's (cosine ~0.99): caches and indexes keep them apart.
        # The int8 graph changes with EXPORT_FORMAT (format 2 quantises the fused graph), and so do its vectors:
        # a cache or an index filled by another format's int8 is never reused for this one.
        self.vectors = self.name + (f"#int8-f{EXPORT_FORMAT}" if spec.backend == "onnx-int8" else "")
        # Dynamic int8 scales activations by the whole batch, so batch-mates would move a query's vector.
        self.batch_invariant = spec.backend != "onnx-int8"

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        vectors = self.session.run(None, feed)[0].astype(np.float32, copy=False)
        # Normalised here too: a model without a Normalize module still gives cosine-ready vectors.
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def count_tokens(self, text: str) -> int:
        """Tokens the model would see for text, special tokens included, before any truncation."""
        return len(self._counter.encode(text).ids)

    def encode(self, texts: Sequence[str], progress: bool = False,
               on_progress: Callable[[int, int], None] | None = None,
               on_vectors: Callable[[list[int], np.ndarray], None] | None = None) -> np.ndarray:
        """Normalised embeddings, one row per text, in length-sorted batches (see Encoder.encode)."""
        def group(batch: list[str]) -> np.ndarray:
            return np.concatenate([self._run(batch[b:b + self.batch_size]) for b in range(0, len(batch), self.batch_size)])

        return encode_in_groups(texts, self.dimension, self.batch_size, group, progress, on_progress, on_vectors,
                                self.token_lengths(texts))

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text is encoded with (truncated to the model's limit): what batches are sorted by."""
        return [min(len(e.ids), self.max_tokens) for e in self._counter.encode_batch(list(texts))]

    def encode_query(self, query: str) -> np.ndarray:
        """One normalised query vector, shape (1, dimension)."""
        return self._run([query])

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Several queries in one forward pass, one row each (the server batches concurrent queries)."""
        return self._run(queries)


def load_onnx(spec, model_path: str) -> OnnxEncoder:
    """An OnnxEncoder for spec, exporting the model first when no cached export exists (ExportError if it can't)."""
    root = Path(model_path)
    tokenizer_file = root / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ExportError(f"{model_path} has no tokenizer.json (a fast tokenizer is needed outside torch)")
    try:
        config = json.loads((root / "sentence_bert_config.json").read_text())
        max_tokens = int(config["max_seq_length"])
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"{model_path} has no usable sentence_bert_config.json ({exc})") from exc

    def load_st():
        from sentence_transformers import SentenceTransformer

        # Eager attention: torch's SDPA path exports as a pattern the transformer optimizer cannot fuse.
        return SentenceTransformer(model_path, device="cpu", model_kwargs={"attn_implementation": "eager"})

    cache_dir = Path(spec.onnx_cache) if spec.onnx_cache else default_cache_dir()
    onnx_path, exported = cached_export(model_path, spec.backend == "onnx-int8", cache_dir, load_st)
    log.info("%s ONNX model %s", "exported" if exported else "loaded cached", onnx_path)
    return OnnxEncoder(spec, model_path, onnx_path, tokenizer_file, max_tokens)
