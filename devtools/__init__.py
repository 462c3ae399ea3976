"""Developer tooling, apart from the product: the local stack, the benchmark, the demo
and the harness they share. Nothing in schemas/, services/ or streams/ imports it."""
