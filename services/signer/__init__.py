"""The approval signer (``paystream signer``): the only holder of the approval
keys, which approves a batch only within its policy file."""
