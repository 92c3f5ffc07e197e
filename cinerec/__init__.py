"""cinerec: a hybrid recommender for a movie & TV-series web application."""

import os

# Before numpy loads (OpenBLAS reads this once): one BLAS thread per process. A request's
# small matrix products gain nothing from a second thread, whose spin-waiting only takes
# the other core from concurrent requests; implicit's ALS is 8x slower with more. Code
# that wants every core for one big product says so (EASE's inverse: threadpool_limits).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
