"""``llm-otel traces``: arguments to Jaeger queries, answers to output and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys

from llm_otel._traces import (
    EXIT_NOT_FOUND,
    EXIT_UNREACHABLE,
    Jaeger,
    JaegerError,
    parse_trace,
    summarize,
    walk,
)

__all__ = ["run_traces"]


def _jaeger(args: argparse.Namespace) -> Jaeger:
    context = None
    if args.ca_file or args.insecure:
        context = ssl.create_default_context(cafile=args.ca_file)
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    return Jaeger(args.jaeger, dict(args.header), ssl_context=context)


def _tags(args: argparse.Namespace) -> dict[str, str]:
    tags = {
        "gen_ai.request.model": args.model,
        "gen_ai.provider.name": args.provider,
        "gen_ai.conversation.id": args.conversation,
        "user.id": args.user,
    }
    return {k: v for k, v in tags.items() if v}


def run_traces(args: argparse.Namespace) -> int:
    from rich.console import Console

    from llm_otel._traces_view import print_list, print_trace

    jaeger = _jaeger(args)
    # Piped output is not cut to 80 columns: a script or grep sees whole lines.
    wide = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
    console = Console(highlight=False, width=wide)
    try:
        if args.trace_id:
            data = jaeger.trace(args.trace_id)
            if data is None:
                print(f"llm-otel traces: no trace {args.trace_id} in Jaeger at {args.jaeger}",
                      file=sys.stderr)  # fmt: skip
                return EXIT_NOT_FOUND
            trace_id, roots = parse_trace(data)
            if args.json:
                print(json.dumps({
                    "trace_id": trace_id,
                    "totals": summarize(trace_id, roots).as_dict(),
                    "spans": [s.as_dict(not args.no_content) for s in walk(roots)],
                }, indent=2))  # fmt: skip
            else:
                print_trace(console, trace_id, roots, content=not args.no_content)
            return 0
        start, end = args.start, args.end  # the time range, already resolved by the parser
        # Jaeger cannot search on a span's status (its "error" tag is made from it): --errors
        # searches deeper and keeps the traces with an error.
        depth = max(args.limit * 10, 200) if args.errors else args.limit
        found = jaeger.find(args.service, _tags(args), min_duration=args.min_duration,
                            start=start, end=end, limit=depth)  # fmt: skip
        summaries = sorted((summarize(*parse_trace(t)) for t in found),
                           key=lambda s: s.start, reverse=True)  # fmt: skip
        if args.errors:
            summaries = [s for s in summaries if s.errors][: args.limit]
        if args.json:
            print(json.dumps({"service": args.service,
                              "traces": [s.as_dict() for s in summaries]}, indent=2))  # fmt: skip
        elif summaries:
            print_list(console, args.service, summaries)
        if not summaries:
            known = jaeger.services()
            hint = "" if args.service in known else (
                f" (Jaeger knows no service {args.service!r}; it knows: "
                f"{', '.join(known) or 'none'})")  # fmt: skip
            print(f"llm-otel traces: no trace of {args.service} matches{hint}", file=sys.stderr)
            return EXIT_NOT_FOUND
        return 0
    except JaegerError as exc:
        print(f"llm-otel traces: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
