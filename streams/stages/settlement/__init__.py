"""Settlement (consumes ``fraud.scored``): ``batching`` gives each approved
payment a sequence number and a batch (pure: no asyncio, no chain); ``submit``
sends a batch to the chain with bounded retries and says what became of it."""
