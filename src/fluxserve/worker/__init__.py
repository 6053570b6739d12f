"""The claim -> run -> finish loop, leases and heartbeats, crash recovery. The only part that joins
the task store, the engines and storage."""
