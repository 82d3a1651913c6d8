#!/usr/bin/env python3
"""Minimal ``curl`` for the vLLM stand-in image (the real vllm/vllm-openai image ships curl).

Only what compose health checks use: ``-f -s -S -o FILE -H HDR -X METHOD -d DATA -I -L -k
-m SECS --connect-timeout SECS`` and one URL. Exit codes follow curl: 0 ok, 2 bad option,
3 bad URL, 7 cannot connect, 22 HTTP error with --fail, 28 timeout.
Installed as /usr/local/bin/curl in the stand-in image; test double only.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

SHORT_FLAGS = {"f": "fail", "s": "silent", "S": "show_error", "I": "head", "L": "", "k": ""}
SHORT_VALUES = {"o": "output", "H": "header", "X": "request", "d": "data", "m": "max_time"}
LONG_FLAGS = {
    "--fail": "fail",
    "--silent": "silent",
    "--show-error": "show_error",
    "--head": "head",
    "--location": "",
    "--insecure": "",
}
LONG_VALUES = {
    "--output": "output",
    "--header": "header",
    "--request": "request",
    "--data": "data",
    "--max-time": "max_time",
    "--connect-timeout": "max_time",
}


class Options:
    def __init__(self) -> None:
        self.fail = False
        self.silent = False
        self.show_error = False
        self.head = False
        self.output: str | None = None
        self.headers: list[str] = []
        self.request: str | None = None
        self.data: str | None = None
        self.max_time = 30.0
        self.url: str | None = None

    def set_value(self, name: str, value: str) -> None:
        if name == "header":
            self.headers.append(value)
        elif name == "max_time":
            self.max_time = float(value)
        else:
            setattr(self, name, value)


def parse(argv: Sequence[str]) -> Options:
    options = Options()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg.startswith("--"):
            name, _, inline = arg.partition("=")
            if name in LONG_FLAGS:
                if LONG_FLAGS[name]:
                    setattr(options, LONG_FLAGS[name], True)
            elif name in LONG_VALUES:
                options.set_value(LONG_VALUES[name], inline or args.pop(0))
            else:
                raise ValueError(f"option {name}: is unknown")
        elif arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            while letters:
                letter, letters = letters[0], letters[1:]
                if letter in SHORT_FLAGS:
                    if SHORT_FLAGS[letter]:
                        setattr(options, SHORT_FLAGS[letter], True)
                elif letter in SHORT_VALUES:
                    options.set_value(SHORT_VALUES[letter], letters or args.pop(0))
                    letters = ""
                else:
                    raise ValueError(f"option -{letter}: is unknown")
        else:
            options.url = arg
    return options


def main(argv: Sequence[str]) -> int:
    try:
        options = parse(argv)
    except (ValueError, IndexError) as exc:
        print(f"curl: {exc or 'option needs a value'}", file=sys.stderr)
        return 2

    def error(code: int, message: str) -> int:
        if not options.silent or options.show_error:
            print(f"curl: ({code}) {message}", file=sys.stderr)
        return code

    if not options.url:
        return error(2, "no URL specified")
    url = options.url if "://" in options.url else "http://" + options.url
    data = options.data.encode() if options.data is not None else None
    method = options.request or ("HEAD" if options.head else ("POST" if data else "GET"))
    request = urllib.request.Request(url, data=data, method=method)
    for header in options.headers:
        key, _, value = header.partition(":")
        request.add_header(key.strip(), value.strip())
    try:
        with urllib.request.urlopen(request, timeout=options.max_time) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except ValueError as exc:
        return error(3, f"URL rejected: {exc}")
    except TimeoutError:
        return error(28, "Operation timed out")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return error(28, "Operation timed out")
        return error(7, f"Failed to connect: {reason}")
    if options.fail and status >= 400:
        return error(22, f"The requested URL returned error: {status}")
    if options.output and options.output != "-":
        with open(options.output, "wb") as handle:
            handle.write(body)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
