"""A TensorRT engine as a tlc_runtime Session, over a small pool of execution contexts.

A call checks out an idle execution context (with its CUDA stream and device buffers sized for the
engine's largest profile batch; tensor addresses bound once) and returns it afterwards, so GPU memory
is bounded by ``max_contexts`` however many threads come and go; calls beyond that wait for one.
A call copies the batch to the device, runs ``execute_async_v3`` and copies the logits back (no
other copies; batches above the profile's max batch run in chunks).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import BundleError, InferenceError, TlcRuntimeError
from ..manifest import InputSpec
from .base import Session, SessionInfo
from .trt_cuda import DeviceBuffer, Stream

# graph input types the runtime may feed from the manifest's dtype by an exact host-side cast
# (TensorRT < 8.5 has no uint8 inputs, so such bundles carry a float32-input copy of the model)
_EXACT_CASTS = {("uint8", "float32"), ("uint8", "float16")}
DEFAULT_MAX_CONTEXTS = 4  # concurrent calls on one GPU; more would only queue on the device


def check_max_contexts(value: Any) -> int:
    """The ``max_contexts`` option, validated (TlcRuntimeError unless an integer ≥ 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TlcRuntimeError(f"max_contexts must be an integer ≥ 1, got {value!r}")
    return value


class _ContextState:
    """One execution context with its stream and the device buffers bound to its input and output
    (``inp``/``out``: tensor name and buffer bytes); used by one call at a time."""

    def __init__(self, engine: Any, inp: tuple[str, int], out: tuple[str, int]) -> None:
        self.context = engine.create_execution_context()
        if self.context is None:
            raise InferenceError("TensorRT could not create an execution context (out of GPU memory?)")
        self.stream: Stream | None = None
        self.inp: DeviceBuffer | None = None
        self.out: DeviceBuffer | None = None
        try:
            self.stream, self.inp, self.out = Stream(), DeviceBuffer(inp[1]), DeviceBuffer(out[1])
        except BaseException:
            self.close()  # what was allocated before the failure
            raise
        self.context.set_tensor_address(inp[0], self.inp.ptr)
        self.context.set_tensor_address(out[0], self.out.ptr)

    def close(self) -> None:
        for buffer in (self.inp, self.out):
            if buffer is not None:
                buffer.free()
        if self.stream is not None:
            self.stream.destroy()
        self.context = None


class _ContextPool:
    """At most ``size`` contexts, made on demand (one at a time), lent to one call each."""

    def __init__(self, make: Callable[[], _ContextState], size: int) -> None:
        self._make, self.size = make, size
        self._idle: list[_ContextState] = []
        self._alive = 0  # idle or lent
        self._closed = False
        self._cond = threading.Condition()
        self._making = threading.Lock()  # context creation is serialised; execution is not

    @contextlib.contextmanager
    def lend(self) -> Iterator[_ContextState]:
        """A context for one call; one whose call failed is freed rather than lent again."""
        state = self._acquire()
        try:
            yield state
        except BaseException:
            self._give_back(state, keep=False)
            raise
        self._give_back(state, keep=True)

    def _acquire(self) -> _ContextState:
        with self._cond:
            while not self._idle and self._alive >= self.size and not self._closed:
                self._cond.wait()
            if self._closed:
                raise InferenceError("the TensorRT session is closed")
            if self._idle:
                return self._idle.pop()
            self._alive += 1
        try:
            with self._making:
                return self._make()
        except BaseException:
            with self._cond:
                self._alive -= 1
                self._cond.notify()
            raise

    def _give_back(self, state: _ContextState, keep: bool) -> None:
        with self._cond:
            keep = keep and not self._closed
            if keep:
                self._idle.append(state)
            else:
                self._alive -= 1
            self._cond.notify()
        if not keep:
            state.close()

    def close(self) -> None:
        """Free the idle contexts now and the lent ones when their calls end; lend no more."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._alive -= len(idle)
            self._cond.notify_all()
        for state in idle:
            state.close()


class TensorRtSession(Session):
    def __init__(self, trt: Any, runtime: Any, engine: Any, input_spec: InputSpec, info: SessionInfo,
                 max_contexts: int = DEFAULT_MAX_CONTEXTS) -> None:
        super().__init__(input_spec, info)
        check_max_contexts(max_contexts)
        self._trt, self._runtime, self._engine = trt, runtime, engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BundleError(f"engine has inputs {inputs} and outputs {outputs}; tlc engines have one of each")
        self.in_name, self.out_name = inputs[0], outputs[0]
        self.in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.in_name)))
        self.out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.out_name)))
        self.min_batch, self.max_batch = self._batch_range(engine)
        in_shape = tuple(engine.get_tensor_shape(self.in_name))
        expected = (input_spec.height, input_spec.width, input_spec.channels)
        if tuple(in_shape[1:]) != expected:
            raise BundleError(f"engine input {self.in_name!r} has shape {in_shape}, the manifest says N×"
                              f"{expected[0]}×{expected[1]}×{expected[2]}; rebuild the bundle")
        if self.in_dtype != np.dtype(input_spec.dtype) and (input_spec.dtype, self.in_dtype.name) not in _EXACT_CASTS:
            raise BundleError(f"engine input dtype {self.in_dtype} cannot take the manifest's {input_spec.dtype} pixels")
        self.num_classes = int(tuple(engine.get_tensor_shape(self.out_name))[-1])
        self.in_sample_bytes = int(np.prod(expected)) * self.in_dtype.itemsize
        self.out_sample_bytes = self.num_classes * self.out_dtype.itemsize
        tensors = ((self.in_name, self.max_batch * self.in_sample_bytes),
                   (self.out_name, self.max_batch * self.out_sample_bytes))
        self._pool = _ContextPool(functools.partial(_ContextState, engine, *tensors), max_contexts)

    @property
    def max_contexts(self) -> int:
        return self._pool.size

    def _batch_range(self, engine: Any) -> tuple[int, int]:
        shape = tuple(engine.get_tensor_shape(self.in_name))
        if shape[0] != -1:
            return shape[0], shape[0]
        lo, _opt, hi = engine.get_tensor_profile_shape(self.in_name, 0)
        return int(lo[0]), int(hi[0])

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        if batch.dtype != self.in_dtype:
            batch = batch.astype(self.in_dtype)  # exact: uint8 values into a float input
        with self._pool.lend() as state:
            results = [self._run(state, batch[i:i + self.max_batch]) for i in range(0, len(batch), self.max_batch)]
        return results[0] if len(results) == 1 else np.concatenate(results)

    def _run(self, state: _ContextState, chunk: np.ndarray) -> np.ndarray:
        n = len(chunk)
        if n < self.min_batch:  # pad up to the profile's smallest batch
            pad = np.zeros((self.min_batch - n, *chunk.shape[1:]), dtype=chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        chunk = np.ascontiguousarray(chunk)
        if not state.context.set_input_shape(self.in_name, chunk.shape):
            raise InferenceError(f"TensorRT refused input shape {chunk.shape}")
        state.inp.upload(chunk, state.stream)
        if not state.context.execute_async_v3(state.stream.handle):
            raise InferenceError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        out = np.empty((len(chunk), self.num_classes), dtype=self.out_dtype)
        state.out.download(out, state.stream)
        state.stream.synchronize()
        return out[:n]

    def close(self) -> None:
        """Free every context and its device buffers (the session is unusable afterwards)."""
        self._pool.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: CUDA may already be gone
            self.close()
