"""Neural network layers: evolving GCNs, memory-based dynamic GNNs, implicit layers."""
