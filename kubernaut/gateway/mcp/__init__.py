"""The MCP server at ``/mcp`` (issue 16): Kubernaut's reads, dry analysis and approvals for assistants and agents,
over the official SDK's streamable HTTP transport, as the principals the REST API knows."""
