"""tlc — edge model compiler for transfer-learned image classifiers.

Importing tlc is cheap: heavy packages (torch, onnx, onnxruntime, openvino, tensorrt) are imported
by the modules that need them, when they are used.
"""

__version__ = "0.1.0"
