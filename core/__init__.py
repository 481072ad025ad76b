"""DeepSDF Explorer core: data, model, training, meshing, TTO and metrics (no Qt)."""
