"""A TensorRT engine as a tlc_runtime Session: one execution context per thread.

Each thread gets its own execution context, CUDA stream and device buffers sized for the engine's
largest profile batch, allocated once; tensor addresses are bound once per context. A call copies
the batch to the device, runs ``execute_async_v3`` and copies the logits back (no other copies;
batches above the profile's max batch run in chunks).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

from ..errors import BundleError, InferenceError
from ..manifest import InputSpec
from .base import Session, SessionInfo
from .trt_cuda import DeviceBuffer, Stream

# graph input types the runtime may feed from the manifest's dtype by an exact host-side cast
# (TensorRT < 8.5 has no uint8 inputs, so such bundles carry a float32-input copy of the model)
_EXACT_CASTS = {("uint8", "float32"), ("uint8", "float16")}


class _ThreadState:
    """One thread's execution context, stream and device buffers."""

    def __init__(self, engine: Any, session: TensorRtSession) -> None:
        self.context = engine.create_execution_context()
        if self.context is None:
            raise InferenceError("TensorRT could not create an execution context (out of GPU memory?)")
        self.stream = Stream()
        self.inp = DeviceBuffer(session.max_batch * session.in_sample_bytes)
        self.out = DeviceBuffer(session.max_batch * session.out_sample_bytes)
        self.context.set_tensor_address(session.in_name, self.inp.ptr)
        self.context.set_tensor_address(session.out_name, self.out.ptr)

    def close(self) -> None:
        self.inp.free()
        self.out.free()
        self.stream.destroy()
        self.context = None


class TensorRtSession(Session):
    def __init__(self, trt: Any, runtime: Any, engine: Any, input_spec: InputSpec, info: SessionInfo) -> None:
        super().__init__(input_spec, info)
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
        self._local = threading.local()
        self._states: list[_ThreadState] = []
        self._lock = threading.Lock()

    def _batch_range(self, engine: Any) -> tuple[int, int]:
        shape = tuple(engine.get_tensor_shape(self.in_name))
        if shape[0] != -1:
            return shape[0], shape[0]
        lo, _opt, hi = engine.get_tensor_profile_shape(self.in_name, 0)
        return int(lo[0]), int(hi[0])

    def _state(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:
            with self._lock:  # context creation is serialised; execution is not
                state = _ThreadState(self._engine, self)
                self._states.append(state)
            self._local.state = state
        return state

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        if batch.dtype != self.in_dtype:
            batch = batch.astype(self.in_dtype)  # exact: uint8 values into a float input
        state = self._state()
        results = [self._run(state, batch[i:i + self.max_batch]) for i in range(0, len(batch), self.max_batch)]
        return results[0] if len(results) == 1 else np.concatenate(results)

    def _run(self, state: _ThreadState, chunk: np.ndarray) -> np.ndarray:
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
        """Free every thread's context and device buffers (the session is unusable afterwards)."""
        with self._lock:
            for state in self._states:
                state.close()
            self._states.clear()
        self._local = threading.local()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: CUDA may already be gone
            self.close()
