"""Which ONNX ops TensorRT's ONNX parser imports, and since which TensorRT release.

Sources: onnx-tensorrt ``docs/operators.md`` (the support matrix of the 8.2/8.4, 8.5 and 10.x
releases) and its ``docs/Changelog.md`` (ops added per release). ``SUPPORTED_SINCE`` maps an op
of the default ONNX domain to the first release whose parser imports it; ops missing from the map
are not supported by any release (they need a plugin). Restrictions that go beyond "is the op
there" (QDQ placement, dtypes, dynamic shapes) are checked in ``compat.py``.
"""

from __future__ import annotations

# Supported in every release tlc targets (TensorRT 8.2, the Jetson Nano's, and later).
_BASE_8_2 = """
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil
Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace
DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GRU
HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean Min Mul Neg
NonMaxSuppression Not Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomUniform
RandomUniformLike Range ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin
ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN Round ScaledTanh Scan
Scatter ScatterElements ScatterND Selu Shape Sigmoid Sign Sin Sinh Size Slice Softmax Softplus
Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose
Unsqueeze Upsample Where
"""

_ADDED: dict[str, str] = {
    "8.4": "Xor Shrink",
    "8.5": "RandomNormal RandomNormalLike MeanVarianceNormalization RoiAlign Mod Trilu GridSample NonZero "
           "HardSwish OneHot Reciprocal",
    "8.6": "GroupNormalization LayerNormalization IsInf",
    "9.2": "Hardmax",
    "10.0": "Gelu CastLike",
    "10.1": "DeformConv",
    "10.4": "BlackmanWindow HammingWindow HannWindow",
    "10.5": "STFT",
    "10.14": "Attention",
    "10.15": "RotaryEmbedding RMSNormalization TensorScatter",
}

SUPPORTED_SINCE: dict[str, str] = {op: "8.2" for op in _BASE_8_2.split()}
for _version, _ops in _ADDED.items():
    SUPPORTED_SINCE.update({op: _version for op in _ops.split()})

# Max default-domain opset each parser release imports (first line of operators.md per release).
MAX_OPSET: dict[str, int] = {"8.0": 13, "8.2": 13, "8.4": 13, "8.5": 17, "8.6": 17, "10.0": 20, "10.15": 24}

# ONNX graph input/output element types TensorRT cannot bind, with the first release that can.
IO_TYPES_SINCE: dict[str, str | None] = {
    "float32": "8.2", "float16": "8.2", "int32": "8.2", "int8": "8.2", "bool": "8.2",
    "uint8": "8.5", "int64": "9.0", "bfloat16": "9.0",
    "float64": None, "uint16": None, "uint32": None, "uint64": None, "int16": None, "string": None,
    "complex64": None, "complex128": None,
}

# Tensor types no TensorRT release computes with (initializers, Cast targets).
UNSUPPORTED_TENSOR_TYPES = frozenset({"uint16", "uint32", "uint64", "int16", "string", "complex64", "complex128"})
