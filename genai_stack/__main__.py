from __future__ import annotations

import sys

from genai_stack.cli import main

sys.exit(main())
