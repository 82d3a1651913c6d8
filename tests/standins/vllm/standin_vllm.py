#!/usr/bin/env python3
"""The ``vllm`` command of the vLLM stand-in image (installed as /usr/local/bin/vllm, as the
real image's console script): runs vllm.entrypoints.cli.main. Test double only."""

import sys

from vllm.entrypoints.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
