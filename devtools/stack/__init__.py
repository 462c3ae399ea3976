"""The local stack: Kafka (KRaft), PostgreSQL, Redis and anvil on this machine."""
