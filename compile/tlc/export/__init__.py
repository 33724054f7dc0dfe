"""Export of a trained run to ONNX with preprocessing inside the graph."""
