"""Evaluation: the metrics, the training-free baselines, the evaluator of Tables 1 and 2, the complexity benchmark."""
