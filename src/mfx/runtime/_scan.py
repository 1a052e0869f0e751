"""A minimal, read-only walk of an ONNX ``ModelProto`` (no onnx package, no protobuf library).

The runtime must refuse unsafe or foreign files *before* onnxruntime opens them, without the
``onnx`` package. This module decodes just enough of the protobuf wire format to find:

* ``metadata_props`` (the mfx contract's key/value strings), and
* every ``TensorProto.external_data`` ``location``, in the main graph, in subgraphs held by node
  attributes (``If``/``Loop`` bodies), in sparse initializers, in training-info graphs and in
  functions.

Everything else is skipped by its length prefix, so a model with hundreds of megabytes of
weights is walked in a few milliseconds: the walk touches one field header per tensor, not one
per weight. A real parse (rather than scanning the raw bytes for ``"location"``) cannot be fooled
by weights that happen to contain those bytes, and cannot miss a location that a byte scan would
not recognise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Protobuf wire types.
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5

# Field numbers from onnx.proto (stable since IR version 3).
_MODEL_GRAPH, _MODEL_METADATA, _MODEL_TRAINING, _MODEL_FUNCTIONS = 7, 14, 20, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTRIBUTE = 5
_FUNCTION_NODE = 7
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TRAINING_INIT, _TRAINING_ALGORITHM = 1, 2
_ENTRY_KEY, _ENTRY_VALUE = 1, 2

#: Graphs nest through node attributes; deeper than this is not a model anyone exported.
_MAX_DEPTH = 64


class ScanError(ValueError):
    """The bytes are not a well-formed protobuf message (corrupt or truncated)."""


@dataclass
class ExternalRef:
    """One tensor stored outside the ``.onnx`` file."""

    tensor: str
    location: str | None


@dataclass
class ModelScan:
    """What :func:`scan_model` found."""

    has_graph: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    external: list[ExternalRef] = field(default_factory=list)


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ScanError(f"truncated at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ScanError(f"malformed number at byte {pos}")


def _fields(buf: bytes, start: int, end: int):
    """Yield ``(field number, wire type, value)``; a length-delimited value is ``(start, end)``."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ScanError(f"invalid field number 0 at byte {pos}")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == _LENGTH:
            length, pos = _varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise ScanError(f"field {number} at byte {pos} runs past the end of its message")
            yield number, wire, (pos, stop)
            pos = stop
        elif wire == _FIXED64:
            pos += 8
        elif wire == _FIXED32:
            pos += 4
        else:  # groups (3, 4) are not used by ONNX; 6 and 7 do not exist
            raise ScanError(f"invalid wire type {wire} at byte {pos}")
        if pos > end:
            raise ScanError(f"truncated at byte {end}")


def _text(buf: bytes, span: tuple[int, int]) -> str:
    try:
        # Decoded from a view: a large value is not first copied out of the file's bytes.
        return str(memoryview(buf)[span[0] : span[1]], "utf-8")
    except UnicodeDecodeError:
        raise ScanError(f"invalid UTF-8 text at byte {span[0]}") from None


def _entry(buf: bytes, span: tuple[int, int]) -> tuple[str, str]:
    key = value = ""
    for number, wire, val in _fields(buf, *span):
        if wire != _LENGTH:
            continue
        if number == _ENTRY_KEY:
            key = _text(buf, val)
        elif number == _ENTRY_VALUE:
            value = _text(buf, val)
    return key, value


class _Walker:
    def __init__(self, buf: bytes, scan: ModelScan) -> None:
        self.buf = buf
        self.scan = scan

    def tensor(self, span: tuple[int, int]) -> None:
        name = ""
        location: str | None = None
        external = False
        for number, wire, val in _fields(self.buf, *span):
            if number == _TENSOR_NAME and wire == _LENGTH:
                name = _text(self.buf, val)
            elif number == _TENSOR_EXTERNAL and wire == _LENGTH:
                external = True
                key, value = _entry(self.buf, val)
                if key == "location":
                    location = value
            elif number == _TENSOR_LOCATION and wire == _VARINT and val != 0:
                external = True
        if external:
            self.scan.external.append(ExternalRef(name, location))

    def sparse(self, span: tuple[int, int]) -> None:
        for number, wire, val in _fields(self.buf, *span):
            if number in (_SPARSE_VALUES, _SPARSE_INDICES) and wire == _LENGTH:
                self.tensor(val)

    def graph(self, span: tuple[int, int], depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ScanError("graphs nested too deeply")
        for number, wire, val in _fields(self.buf, *span):
            if wire != _LENGTH:
                continue
            if number == _GRAPH_NODE:
                self.node(val, depth)
            elif number == _GRAPH_INITIALIZER:
                self.tensor(val)
            elif number == _GRAPH_SPARSE:
                self.sparse(val)

    def node(self, span: tuple[int, int], depth: int) -> None:
        for number, wire, val in _fields(self.buf, *span):
            if number == _NODE_ATTRIBUTE and wire == _LENGTH:
                self.attribute(val, depth)

    def attribute(self, span: tuple[int, int], depth: int) -> None:
        for number, wire, val in _fields(self.buf, *span):
            if wire != _LENGTH:
                continue
            if number in (_ATTR_T, _ATTR_TENSORS):
                self.tensor(val)
            elif number in (_ATTR_G, _ATTR_GRAPHS):
                self.graph(val, depth + 1)
            elif number in (_ATTR_SPARSE, _ATTR_SPARSES):
                self.sparse(val)

    def model(self) -> None:
        buf = self.buf
        for number, wire, val in _fields(buf, 0, len(buf)):
            if wire != _LENGTH:
                continue
            if number == _MODEL_GRAPH:
                self.scan.has_graph = True
                self.graph(val, 0)
            elif number == _MODEL_METADATA:
                key, value = _entry(buf, val)
                self.scan.metadata[key] = value
            elif number == _MODEL_TRAINING:
                for sub, sub_wire, sub_val in _fields(buf, *val):
                    if sub in (_TRAINING_INIT, _TRAINING_ALGORITHM) and sub_wire == _LENGTH:
                        self.graph(sub_val, 1)
            elif number == _MODEL_FUNCTIONS:
                for sub, sub_wire, sub_val in _fields(buf, *val):
                    if sub == _FUNCTION_NODE and sub_wire == _LENGTH:
                        self.node(sub_val, 1)


def scan_model(data: bytes) -> ModelScan:
    """Metadata and external-data references of a serialized ``ModelProto``.

    Raises
    ------
    ScanError
        When ``data`` is not a well-formed protobuf message.
    """
    scan = ModelScan()
    _Walker(data, scan).model()
    return scan
