"""TensorRT and Jetson support: compatibility check, build settings, trtexec line, engine build.

Modules (each imported only when used, so ``import tlc`` stays cheap):
compat (check_tensorrt_compat, with ops.py per-release op table and qdq.py QDQ rules),
prepare (opset / uint8-input rewrites), settings (target → BuildSettings), trtexec (command line),
engine (TensorRT Python API build where TensorRT and a matching GPU exist), build (build_tensorrt).
"""
