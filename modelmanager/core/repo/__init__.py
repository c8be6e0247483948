"""The repository: config, immutable manifests, labels, writer lock; the only writer of them."""
