"""Speed measured, not asserted: the throughput benchmark (``welavae bench``, :mod:`~welavae.perf.throughput`)
and a same-run A/B against a reference version (:mod:`~welavae.perf.ab`)."""
