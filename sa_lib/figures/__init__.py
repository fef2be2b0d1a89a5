"""Figures and reports: attention maps, explanations, the notebook explorer, the paper's figures, the training
report, the model card and the `make paper` runner."""
