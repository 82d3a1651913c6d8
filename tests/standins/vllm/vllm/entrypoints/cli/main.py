"""Stand-in for ``vllm`` (vllm/entrypoints/cli/main.py upstream): ``vllm serve [model_tag]
[options]``, the ENTRYPOINT of vllm/vllm-openai:v0.34.0. Test double only."""

from __future__ import annotations

import sys

from vllm.entrypoints.openai.api_server import cli_main


def main() -> int:
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
