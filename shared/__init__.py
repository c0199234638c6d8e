"""Code shared by the web process and the backup worker: config, logging, the store."""
