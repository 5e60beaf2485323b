// The official MCP TypeScript SDK's client against a running stub: every call of a scenario,
// each success validated by the SDK against the tool's outputSchema (callTool throws when
// structuredContent does not conform). Run by tests/stub/test_stub_ts_client.py:
//   node check.mjs <stub /mcp url> <calls.json>    calls: [{"tool": ..., "arguments": {...}}, ...]
// Prints one JSON array: per call, what the client saw (or what it threw); exits 1 if any threw.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, callsFile] = process.argv.slice(2);
const calls = JSON.parse(readFileSync(callsFile, "utf8"));
const client = new Client({ name: "pm-agent-ts-check", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const listed = (await client.listTools()).tools;
const seen = [];
let failed = false;
for (const { tool, arguments: args } of calls) {
  try {
    const result = await client.callTool({ name: tool, arguments: args });
    seen.push({
      tool,
      isError: result.isError === true,
      structured: result.structuredContent ?? null,
      text: result.content?.[0]?.text ?? null,
    });
  } catch (error) {
    failed = true;
    seen.push({ tool, thrown: String(error?.message ?? error) });
  }
}
await client.close();
process.stdout.write(
  JSON.stringify({
    tools: listed.map((t) => ({ name: t.name, hasOutputSchema: Boolean(t.outputSchema), annotations: t.annotations })),
    calls: seen,
  }),
);
process.exit(failed ? 1 : 0);
