"""The EVM side of paystream: contract artifacts, the async chain client,
nonces, fees, approvals, deployment and the gas report."""
