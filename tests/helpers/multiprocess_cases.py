"""The checks each process of ``multiprocess_worker`` reports, in order (one test id each)."""
CASES = ("8 global devices, 4 local", "sharded forward spikes equal one process",
         "sharded forward state equals one process", "forward output keeps the population sharding",
         "training step: the loss equals one process", "training step: the updated weights equal one process",
         "training step: the weights stay sharded", "training step: the weights changed")
