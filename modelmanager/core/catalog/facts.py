"""A version's structured facts, read from its manifest alone (no file data is read).

What search filters on and lists: architecture, layer count, hidden size, vocabulary size,
context length, weight formats, quantization, framework, license and base model. Each comes
from the version's metadata when the import recorded it (config.json, the model card, a GGUF
file's own keys), else from the tensor names and shapes every manifest holds, so ``reindex``
fills them for versions imported before they existed: the token embedding gives vocabulary
and hidden size (GGUF's ``token_embd`` too, whose files rarely state a vocabulary size), the
numbered blocks the layer count (a Keras file's: its layers), a learned position embedding
the context length (the positions it has rows for: OPT's has two more than its config says).
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from modelmanager.core.analysis.structure import KERAS_LAYERS, summary
from modelmanager.core.repo.manifest import Manifest

#: Tensor names that hold the token embedding (its shape is vocabulary x hidden size).
_EMBEDDING = re.compile(r"(^|\.)(embed_tokens|word_embeddings|wte|embed|tok_embeddings)\.weight$")
#: GGUF's token embedding (llama.cpp's name; its shape is vocabulary x hidden size too).
_GGUF_EMBEDDING = "token_embd.weight"
#: Learned absolute position embeddings (positions x hidden size): BERT, GPT-2, OPT, BART.
_POSITIONS = re.compile(r"(^|\.)(position_embeddings|embed_positions|wpe)\.weight$")
#: The block index in a tensor name: ``model.layers.12.``, ``transformer.h.3.``, ``blk.0.``.
_BLOCK = re.compile(r"(?:^|\.)(?:layers|layer|h|blk|blocks|block)\.(\d+)\.")
#: GGUF tensor types that are quantized (llama.cpp's names): Q4_K, Q8_0, IQ2_XS, TQ1_0, ...
_QUANTIZED = re.compile(r"^(I?Q\d|TQ\d)", re.IGNORECASE)
#: Spellings of one dtype across formats and people -> the name filters use.
DTYPE_ALIASES = {
    "bfloat16": "bf16", "float16": "f16", "fp16": "f16", "half": "f16", "float32": "f32",
    "fp32": "f32", "float": "f32", "float64": "f64", "fp64": "f64", "double": "f64",
    "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8",
}  # fmt: skip
#: Formats of files that hold no tensors of a known kind (config, tokenizer, README).
NOT_WEIGHTS = frozenset({"generic"})


@functools.lru_cache(maxsize=256)
def dtype_name(dtype: str) -> str:
    """The one spelling filters compare: lower case, ``bfloat16`` and ``BF16`` alike (cached:
    a few dtypes, named once per row of a 10,000-row search)."""
    low = dtype.strip().lower()
    return DTYPE_ALIASES.get(low, low)


@dataclass(frozen=True)
class Facts:
    """What a version is, as the catalog stores it (0 or "" where nothing says)."""

    architecture: str = ""
    model_type: str = ""
    layers: int = 0
    hidden_size: int = 0
    vocab_size: int = 0
    context_length: int = 0
    formats: tuple[str, ...] = ()
    quantization: tuple[str, ...] = ()
    framework: str = ""
    license: str = ""
    base_model: str = ""

    def to_json(self) -> dict[str, Any]:
        """The facts as the fronts' JSON names them (field by field: ``asdict`` deep-copies
        and took 3 s of a 10,000-model rebuild)."""
        out = {name: getattr(self, name) for name in _FIELDS}
        out["formats"], out["quantization"] = list(self.formats), list(self.quantization)
        return out


#: The names of :class:`Facts`' fields, in order (what ``to_json`` writes).
_FIELDS = tuple(f.name for f in fields(Facts))


@functools.lru_cache(maxsize=1024)
def facts_from_json(text: str) -> Facts:
    """The facts a catalog row stores as JSON text. Cached by that text, as Facts cannot be
    changed: a model's versions nearly always state the same facts, and parsing them was two
    thirds of the time to make a search row (a broad search prints 10,000)."""
    stated = json.loads(text)
    stated["formats"] = tuple(stated.get("formats", ()))
    stated["quantization"] = tuple(stated.get("quantization", ()))
    return Facts(**stated)


def _int(value: Any) -> int:
    """A positive integer stated as a number or its text; 0 otherwise."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return 0


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _gguf_keys(m: Manifest) -> dict[str, str]:
    """The scalar metadata of the version's GGUF files (the first file stating a key wins)."""
    out: dict[str, str] = {}
    for f in m.files:
        if f.format == "gguf":
            for key, value in f.metadata.items():
                out.setdefault(key, value)
    return out


def _keras_layers(m: Manifest) -> int:
    """The layers of the version's first Keras HDF5 file with a layer list (0: none)."""
    for f in m.files:
        if f.format == "hdf5" and (found := summary(f.metadata, KERAS_LAYERS)) is not None:
            return found[1]
    return 0


def _from_tensors(m: Manifest) -> tuple[int, int, int, int]:
    """(layers, hidden size, vocabulary size, positions) read off tensor names and shapes."""
    blocks: set[int] = set()
    hidden = vocab = positions = 0
    for f, t in m.tensors:
        found = _BLOCK.search(t.name)
        if found:
            blocks.add(int(found.group(1)))
        if len(t.shape) != 2:
            continue
        embedding = (t.name == _GGUF_EMBEDDING if f.format == "gguf"
                     else bool(_EMBEDDING.search(t.name)))  # fmt: skip
        if not vocab and embedding:
            vocab, hidden = int(t.shape[0]), int(t.shape[1])
        if not positions and f.format != "gguf" and _POSITIONS.search(t.name):
            positions = int(t.shape[0])
    layers = max(blocks) + 1 if blocks else _keras_layers(m)
    return layers, hidden, vocab, positions


def facts_of(m: Manifest) -> Facts:
    """The facts of version ``m``: stated ones first (config, card, GGUF keys), then what its
    tensors show."""
    meta: Mapping[str, Any] = m.metadata
    gguf = _gguf_keys(m)
    arch = _text(gguf.get("general.architecture"))

    def stated(hf_key: str, gguf_key: str) -> int:
        return _int(meta.get(hf_key)) or _int(gguf.get(f"{arch}.{gguf_key}"))

    layers, hidden, vocab, positions = _from_tensors(m)
    quant: Counter[str] = Counter()
    for f in m.files:
        if f.format == "gguf":
            for t in f.tensors:
                if _QUANTIZED.match(t.dtype):
                    quant[t.dtype.upper()] += t.end - t.start
    return Facts(
        architecture=_text(meta.get("architecture")),
        model_type=_text(meta.get("model_type")) or arch,
        layers=stated("num_hidden_layers", "block_count") or layers,
        hidden_size=stated("hidden_size", "embedding_length") or hidden,
        vocab_size=stated("vocab_size", "vocab_size") or vocab,
        context_length=stated("max_position_embeddings", "context_length") or positions,
        formats=tuple(sorted({f.format for f in m.files} - NOT_WEIGHTS)),
        quantization=tuple(q for q, _n in sorted(quant.items(), key=lambda kv: (-kv[1], kv[0]))),
        framework=_text(meta.get("framework")),
        license=_text(meta.get("license")),
        base_model=_text(meta.get("base_model")),
    )
