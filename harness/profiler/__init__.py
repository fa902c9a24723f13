"""The query profiler: the API's slow-query log, plans with full scans flagged, and index
advice measured on the real database (``harness db``)."""
