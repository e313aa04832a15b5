"""Stage 5: the accuracy x latency x size study over datasets x model families x variants."""
