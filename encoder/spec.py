"""EncoderSpec: how to load an encoder (small and picklable), and load(), the one factory of encoders."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rolesearch.encoder.base import BACKENDS, DEFAULT_BACKEND, DEFAULT_MODEL, Encoder, resolve_model
from rolesearch.encoder.onnx_encoder import ExportError, load_onnx
from rolesearch.encoder.torch_encoder import TorchEncoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderSpec:
    """How to load an encoder: small and picklable, so a worker process can load the same model the same way."""

    model: str = DEFAULT_MODEL
    device: str = "cpu"
    batch_size: int = 32
    backend: str = DEFAULT_BACKEND  # "torch", "onnx" or "onnx-int8" (ONNX Runtime: encoder.onnx_encoder)
    threads: int = 0  # ONNX Runtime intra-op threads (0: its default, one per core)
    onnx_cache: str | None = None  # folder of ONNX exports (None: ~/.cache/rolesearch/onnx)

    def load(self) -> "Encoder":
        """The encoder this spec describes; torch when the model cannot run on ONNX Runtime (logged)."""
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.backend != "torch":
            try:
                return load_onnx(self, resolve_model(self.model))
            except ExportError as exc:
                log.warning("model %s cannot run on ONNX Runtime (%s); falling back to torch", self.model, exc)
        return TorchEncoder(self)
