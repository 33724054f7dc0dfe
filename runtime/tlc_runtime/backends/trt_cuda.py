"""The few CUDA runtime calls the TensorRT backend needs, through cuda-python (no torch, no pycuda).

``cuda-python`` is imported lazily: ``cuda.bindings.runtime`` (cuda-python >= 12.6) or the older
``cuda.cudart``. Every call's error code is checked and becomes a tlc_runtime error.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, InferenceError

INSTALL_HINT = "pip install cuda-python (the CUDA runtime bindings the TensorRT backend uses)"


def cudart() -> Any:
    """The cuda-python runtime module, or BackendUnavailableError saying what to install."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise BackendUnavailableError(f"the CUDA runtime bindings are not installed; {INSTALL_HINT}")


def check(result: Any, what: str) -> Any:
    """Unpack a cuda-python ``(error, *values)`` result; raise InferenceError on a CUDA error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise InferenceError(f"CUDA {what} failed: {getattr(err, 'name', err)}")
    return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "8.7"
    total_memory_mib: int


@functools.lru_cache(maxsize=1)
def gpu_probe() -> tuple[int, str]:
    """(number of visible CUDA devices, why there is none: empty when some are), asked once per process.

    Never raises: missing bindings, a driver that cannot load and a host without a GPU all count 0.
    """
    try:
        err, count = cudart().cudaGetDeviceCount()
    except Exception as exc:  # missing bindings or a driver that cannot load: no usable GPU
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        return 0, f"the CUDA runtime cannot be used ({first})"
    if int(err) != 0 or not count:
        return 0, f"no CUDA GPU is visible (cudaGetDeviceCount: {getattr(err, 'name', err)})"
    return int(count), ""


def gpu_count() -> int:
    """Number of visible CUDA devices; 0 when bindings, driver or GPU are missing (see ``gpu_probe``)."""
    return gpu_probe()[0]


def gpu_info(device: int = 0) -> GpuInfo:
    """Name, compute capability and memory of CUDA device ``device``."""
    rt = cudart()
    props = check(rt.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode("utf-8", "replace")
    return GpuInfo(name=str(name), compute_capability=f"{props.major}.{props.minor}",
                   total_memory_mib=int(props.totalGlobalMem) >> 20)


class DeviceBuffer:
    """A device allocation of fixed size, freed by ``free()`` (idempotent)."""

    def __init__(self, nbytes: int) -> None:
        self._rt = cudart()
        self.nbytes = max(int(nbytes), 1)
        self.ptr = int(check(self._rt.cudaMalloc(self.nbytes), "cudaMalloc"))

    def upload(self, host: np.ndarray, stream: Stream) -> None:
        if host.nbytes > self.nbytes:
            raise InferenceError(f"batch of {host.nbytes} bytes exceeds the device buffer ({self.nbytes})")
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        check(self._rt.cudaMemcpyAsync(self.ptr, host.ctypes.data, host.nbytes, kind, stream.raw),
              "cudaMemcpyAsync (host to device)")

    def download(self, host: np.ndarray, stream: Stream) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        check(self._rt.cudaMemcpyAsync(host.ctypes.data, self.ptr, host.nbytes, kind, stream.raw),
              "cudaMemcpyAsync (device to host)")

    def free(self) -> None:
        if self.ptr:
            self._rt.cudaFree(self.ptr)
            self.ptr = 0


class Stream:
    """A CUDA stream; ``handle`` is the integer TensorRT's execute_async_v3 takes."""

    def __init__(self) -> None:
        self._rt = cudart()
        self.raw = check(self._rt.cudaStreamCreate(), "cudaStreamCreate")
        self.handle = int(self.raw)

    def synchronize(self) -> None:
        check(self._rt.cudaStreamSynchronize(self.raw), "cudaStreamSynchronize")

    def destroy(self) -> None:
        if self.raw is not None:
            self._rt.cudaStreamDestroy(self.raw)
            self.raw = None
