"""Reduced-precision artifacts: INT8 QDQ ONNX (ONNX Runtime, TensorRT) and OpenVINO IR (fp32/fp16/int8).

- calibration: stratified, seeded calibration sample and an onnxruntime batch reader.
- ort_int8: ``build_ort_int8(ctx)`` — static QDQ quantization with accuracy-aware fallback.
- sensitivity / mixed / fallback: rank quantized nodes, keep the most sensitive in float, bounded search.
- openvino_build: ``build_openvino(ctx)`` — OpenVINO IR, INT8 through NNCF (with accuracy control).
- fp16: FP16 ONNX (TensorRT / ONNX Runtime).

Importing this package is cheap; onnxruntime, onnx, openvino and nncf load inside the builders.
"""

from .calibration import ArrayDataReader, check_calibration, select_calibration

__all__ = ["ArrayDataReader", "check_calibration", "select_calibration"]
