"""Text to normalised vectors: the `Encoder` protocol (`base`), its torch, ONNX Runtime, batched-query and Ray
implementations, and `EncoderSpec.load()`, the one factory. Imports nothing of rolesearch but the Ray session."""
