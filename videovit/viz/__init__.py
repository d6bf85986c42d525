"""Pictures of a run and of a model's predictions: curves, confusion matrices, annotated videos and
timelines."""
