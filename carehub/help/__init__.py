"""The help centre: answer articles in English and French, hybrid search, the residents' pages and what they teach.

One BLAS thread for numpy: a search embeds one short query, a few small matrix products where a second thread
costs more in hand-offs than it saves (measured on 2 shared cores: p95 of a query's embedding 21 ms with two
threads, 10 ms with one). Set here, before carehub.help.embedding loads numpy; a deployment may set it itself."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
