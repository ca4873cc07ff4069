"""How ``llm-otel traces`` draws a trace list and one trace in a terminal (rich)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from llm_otel._traces import Span, TraceSummary, summarize, transcript, walk

__all__ = ["print_list", "print_trace"]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms"


def _usd(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def _tokens(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _root(summary: TraceSummary, service: str) -> str:
    """The root span, without the service's name when it is the listed service's."""
    return summary.root.removeprefix(f"{service}: ")


WIDE = 130  # columns from which the list is a table; narrower, two lines per trace


def print_list(console: Console, service: str, summaries: Sequence[TraceSummary]) -> None:
    if console.width < WIDE:
        _print_narrow(console, service, summaries)
        return
    table = Table(title=f"traces of {service}", title_justify="left", header_style="bold")
    table.add_column("trace id", no_wrap=True, style="cyan")
    table.add_column("start (UTC)", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("root", overflow="ellipsis", max_width=40)
    table.add_column("LLM calls", justify="right")
    table.add_column("tokens in/out", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("slowest call", overflow="ellipsis", max_width=32)
    table.add_column("errors", justify="right")
    for s in summaries:
        slowest = f"{s.slowest_call} {_ms(s.slowest_call_ms)}" if s.slowest_call else "-"
        root = _root(s, service)
        table.add_row(
            s.trace_id,
            s.start[5:19].replace("T", " "),
            _ms(s.duration_ms),
            Text(root),
            str(s.llm_calls),
            f"{_tokens(s.input_tokens)} / {_tokens(s.output_tokens)}",
            _usd(s.cost_usd),
            Text(slowest),
            Text(str(s.errors), style="bold red" if s.errors else ""),
        )
    console.print(table)


def _print_narrow(console: Console, service: str, summaries: Sequence[TraceSummary]) -> None:
    console.print(Text(f"traces of {service}", style="italic"))
    for s in summaries:
        root = _root(s, service)
        console.print(Text.assemble((s.trace_id, "cyan"), f"  {s.start[5:19].replace('T', ' ')}",
                                    f"  {_ms(s.duration_ms)}  ", (root, "bold")),
                      overflow="ellipsis", no_wrap=True)  # fmt: skip
        calls = f"{s.llm_calls} LLM call" + ("" if s.llm_calls == 1 else "s")
        slowest = f"slowest {s.slowest_call} {_ms(s.slowest_call_ms)}" if s.slowest_call else ""
        errors = f"{s.errors} error" + ("" if s.errors == 1 else "s")
        console.print(Text.assemble(
            f"    {calls} · tokens {_tokens(s.input_tokens)}/{_tokens(s.output_tokens)} · "
            f"cost {_usd(s.cost_usd)} · ", (errors, "bold red" if s.errors else ""),
            f" · {slowest}" if slowest else "",
        ), overflow="ellipsis", no_wrap=True)  # fmt: skip


def _label(span: Span) -> Text:
    text = Text()
    text.append(span.operation, style="bold red" if span.error else "bold")
    text.append(f"  {_ms(span.duration_ms)}", style="dim")
    if span.gen_ai_operation:
        facts: list[str] = []
        if span.model:
            facts.append(f"model={span.model}")
        ttfc = span.number("gen_ai.response.time_to_first_chunk")
        if ttfc is not None:
            facts.append(f"ttfc={_ms(ttfc * 1000)}")
        tokens_in = span.integer("gen_ai.usage.input_tokens")
        tokens_out = span.integer("gen_ai.usage.output_tokens")
        if tokens_in is not None or tokens_out is not None:
            facts.append(f"tokens={_tokens(tokens_in)}/{_tokens(tokens_out)}")
        cost = span.number("llm_otel.usage.cost")
        if cost is not None:
            facts.append(f"cost={_usd(cost)}")
        reasons = span.listing("gen_ai.response.finish_reasons")
        if reasons:
            facts.append("finish=" + ",".join(str(r) for r in reasons))
        if facts:
            text.append("  " + "  ".join(facts), style="cyan")
    if span.error:
        text.append(f"  error={span.error}", style="bold red")
    return text


def _add(tree: Tree, span: Span, service: str | None) -> None:
    label = _label(span)
    if span.service != service:
        label = Text.assemble((f"[{span.service}] ", "magenta"), label)
    node = tree.add(label)
    for child in span.children:
        _add(node, child, span.service)


def _part(part: dict[str, Any]) -> Text:
    kind = part.get("type")
    if kind == "text":
        return Text(str(part.get("content", "")))
    if kind == "tool_call":
        args = part.get("arguments")
        args = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        return Text.assemble(("→ call ", "yellow"), (str(part.get("name", "?")), "bold yellow"),
                             f"({args})", (f"  id={part.get('id')}", "dim"))  # fmt: skip
    if kind == "tool_call_response":
        result = part.get("response", part.get("result"))
        result = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
        return Text.assemble(("← result ", "green"), result, (f"  id={part.get('id')}", "dim"))
    if kind == "reasoning":
        return Text(str(part.get("content", "")), style="italic dim")
    return Text(json.dumps(part, ensure_ascii=False), style="dim")


_ROLE_STYLE = {"system": "magenta", "user": "blue", "assistant": "green", "tool": "yellow"}


def _transcript(span: Span) -> Group | None:
    messages = transcript(span)
    if not messages:
        return None
    panels = []
    for message in messages:
        role = str(message.get("role", "?"))
        body = [_part(p) for p in message.get("parts") or [] if isinstance(p, dict)]
        title = role + (f" (finish: {message['finish_reason']})"
                        if message.get("finish_reason") else "")  # fmt: skip
        panels.append(Panel(Group(*body) if body else Text("(empty)", style="dim"),
                            title=title, title_align="left",
                            border_style=_ROLE_STYLE.get(role, "white")))  # fmt: skip
    return Group(*panels)


def print_trace(console: Console, trace_id: str, roots: Sequence[Span], content: bool) -> None:
    summary = summarize(trace_id, roots)
    console.print(Text.assemble(("trace ", "bold"), (trace_id, "bold cyan"),
                                f"  {summary.start[:23].replace('T', ' ')} UTC",
                                f"  {_ms(summary.duration_ms)}",
                                f"  services: {', '.join(summary.services)}"))  # fmt: skip
    tree = Tree(Text("spans", style="dim"), guide_style="dim")
    for root in roots:
        _add(tree, root, None)
    console.print(tree)
    totals = Table(show_header=False, box=None, pad_edge=False)
    totals.add_column(style="bold")
    totals.add_column()
    totals.add_row("LLM calls", str(summary.llm_calls))
    totals.add_row("models", ", ".join(summary.models) or "-")
    totals.add_row("tokens in / out", f"{summary.input_tokens:,} / {summary.output_tokens:,}")
    totals.add_row("estimated cost", _usd(summary.cost_usd))
    slowest = summary.slowest_call
    totals.add_row(
        "slowest call", f"{slowest} ({_ms(summary.slowest_call_ms)})" if slowest else "-"
    )
    totals.add_row("errors", Text(str(summary.errors), style="bold red" if summary.errors else ""))
    console.print(Panel(totals, title="totals", title_align="left", expand=False))
    if not content:
        return
    shown = False
    for span in walk(roots):
        if not span.is_llm_call:
            continue
        conversation = _transcript(span)
        if conversation is None:
            continue
        shown = True
        console.print(Text.assemble(("\n", ""), (span.operation, "bold"),
                                    (f"  span {span.span_id}", "dim")))  # fmt: skip
        console.print(conversation)
    if not shown:
        console.print(Text("no message content was captured in this trace (content capture is "
                           "off: docs/content.md)", style="dim"))  # fmt: skip
