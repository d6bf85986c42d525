"""What users run on a trained model: the video classifier and ``from_pretrained``, folder prediction,
sliding windows, exports and ONNX (docs/deployment.md)."""
