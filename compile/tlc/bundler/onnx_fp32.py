"""The FP32 ONNX artifact: the exported graph itself, run by ONNX Runtime."""

from __future__ import annotations

import shutil

from tlc_runtime.integrity import file_entry
from tlc_runtime.manifest import Artifact

from .context import BuildContext, BuiltArtifact

MODEL_FILE = "model.fp32.onnx"


def build_onnx_fp32(ctx: BuildContext) -> BuiltArtifact:
    shutil.copyfile(ctx.fp32_onnx, ctx.staging / MODEL_FILE)
    options = {"providers": list(ctx.target.onnxruntime.providers),
               "intra_op_num_threads": ctx.target.onnxruntime.intra_op_threads,
               "graph_optimization_level": ctx.target.onnxruntime.graph_optimization}
    artifact = Artifact(name="onnx-fp32", format="onnx", backend="onnxruntime", precision="fp32",
                        files={"model": file_entry(ctx.staging, MODEL_FILE)}, options=options)
    return BuiltArtifact(artifact=artifact, report={"artifact": MODEL_FILE})
