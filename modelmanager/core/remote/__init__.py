"""Remote repositories, the engine side: what a remote is, how to reach it, what it holds.

``spec`` describes a remote; ``credentials`` keeps S3 keys in the OS keyring; ``client`` builds
the one blob store a remote is read and written through; ``layout`` reads a remote repository
(with ``cache`` keeping its manifests); ``journals`` reconciles label journals across the
two sides; ``labels`` is the older rule for labels without a journal;
``transfer`` moves chunks several at a time; ``versions`` knows a version across sides by its
content whatever its number; ``lease`` is the lock that claims numbers on a server without
conditional writes. The use cases (add, list, push, pull) live in
``modelmanager.services.remotes``.
"""
