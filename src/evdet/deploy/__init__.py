"""Deployment: ONNX export of the recurrent detector (one step per call, explicit LSTM states) and
ONNX Runtime inference."""
