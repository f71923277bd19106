"""Speed measured, not asserted: the throughput benchmark (``welavae bench``, :mod:`~welavae.perf.throughput`)."""
