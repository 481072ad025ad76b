"""Evaluation: metrics, thin-part masks, the grid reference and the held-out split's evaluation."""
