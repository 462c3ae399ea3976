"""Running the pipeline for people and tests: a worker process, funding payers
on chain, publishing requests, collecting outcomes, and the summary."""
