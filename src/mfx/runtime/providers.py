"""Execution providers: what onnxruntime really has, and the ordered list a Predictor asks for.

The same code serves the CPU wheel (``pip install onnxruntime``) and the GPU wheel
(``pip install onnxruntime-gpu``; install one or the other, never both: they share the
``onnxruntime`` module and the last one installed silently wins). Nothing here fails to import on
a machine without CUDA; :func:`cuda_available` is the probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnxruntime as ort

from mfx.errors import DeviceError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

#: ``providers=`` shorthands.
CHOICES = ("auto", "cpu", "cuda")

#: A provider name, or ``(name, options)`` as onnxruntime takes it.
ProviderSpec = str | tuple[str, dict[str, Any]]


def available_providers() -> list[str]:
    """Providers this onnxruntime build offers, in its order of preference."""
    return list(ort.get_available_providers())


def cuda_available() -> bool:
    """True when onnxruntime was built with CUDA (the ``onnxruntime-gpu`` wheel).

    This says the provider exists, not that a GPU and the CUDA libraries are usable; a
    :class:`~mfx.runtime.Predictor` finds that out when it creates its session.
    """
    return CUDA in available_providers()


def _missing(name: str, available: list[str]) -> DeviceError:
    hint = ""
    if name == CUDA:
        hint = (
            "; this onnxruntime build has no CUDA support: install the GPU build with "
            "'pip uninstall onnxruntime && pip install onnxruntime-gpu' (never both), "
            "or use providers='cpu'"
        )
    return DeviceError(
        f"execution provider {name} is not available (available: {', '.join(available)}){hint}"
    )


def resolve_providers(
    providers: str | Sequence[ProviderSpec] = "auto",
) -> tuple[list[str], list[dict[str, Any]], bool]:
    """The ordered provider names and options to open a session with.

    Parameters
    ----------
    providers
        ``"auto"``: CUDA when this onnxruntime build has it, else CPU. ``"cpu"``: CPU only.
        ``"cuda"``: CUDA with CPU for any operator CUDA lacks. Or an explicit ordered list of
        onnxruntime provider names (each optionally ``(name, options)``).

    Returns
    -------
    names, options, explicit
        ``explicit`` is False for ``"auto"``, whose CUDA choice may fall back to CPU.

    Raises
    ------
    DeviceError
        When a requested provider is not in :func:`available_providers`, naming those that are.
    """
    available = available_providers()
    if isinstance(providers, str):
        choice = providers.lower()
        if choice == "auto":
            names = [CUDA, CPU] if CUDA in available else [CPU]
            return names, [{} for _ in names], False
        if choice == "cpu":
            return [CPU], [{}], True
        if choice == "cuda":
            if CUDA not in available:
                raise _missing(CUDA, available)
            return [CUDA, CPU], [{}, {}], True
        if providers in available:
            return [providers], [{}], True
        raise DeviceError(
            f"providers={providers!r}: choose auto, cpu, cuda or a list of onnxruntime provider "
            f"names (available: {', '.join(available)})"
        )
    names: list[str] = []
    options: list[dict[str, Any]] = []
    for spec in providers:
        if isinstance(spec, str):
            name, opts = spec, {}
        elif (
            isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str)
            and isinstance(spec[1], dict)
        ):
            name, opts = spec[0], dict(spec[1])
        else:
            raise DeviceError(f"provider {spec!r} must be a name or a (name, options) pair")
        if name not in available:
            raise _missing(name, available)
        if name in names:
            raise DeviceError(f"provider {name} is listed twice")
        names.append(name)
        options.append(opts)
    if not names:
        raise DeviceError("the provider list is empty; pass 'auto', 'cpu', 'cuda' or names")
    return names, options, True
