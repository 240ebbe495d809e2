"""What is served: SDK evaluation counts (`ingest`), their read models and the stale rule (`report`), and the
code references uploaded by ``setpoint refs --upload`` (`refs`)."""
