"""``python -m llm_otel``: the ``llm-otel`` command line."""

import sys

from llm_otel._cli import main

sys.exit(main())
