"""An MCP server over stdio, set up with ``llm_otel.configure()`` (so its spans and metrics go to
``OTEL_EXPORTER_OTLP_ENDPOINT``), for the MCP tests: the client's trace must continue here.

    python -m tests.apps.mcp_weather

Tools: ``get_weather(city)`` (does its work in an ``llm_otel.task`` span) and ``broken(city)``
(raises with the city in its message).
"""

from __future__ import annotations

import llm_otel


def main() -> None:
    config = llm_otel.configure(service_name="weather-mcp")
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("weather")

    @server.tool()
    def get_weather(city: str) -> str:
        """The weather in a city."""
        with llm_otel.task("lookup"):
            return f"Sunny in {city}"

    @server.tool()
    def broken(city: str) -> str:
        """A tool whose backend is down."""
        raise RuntimeError(f"weather service down for {city}")

    try:
        server.run("stdio")
    finally:
        config.shutdown()


if __name__ == "__main__":
    main()
