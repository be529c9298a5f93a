"""Runnable examples: ``python -m hopfieldkit.examples.et_completion`` (Energy Transformer image completion)."""
