// The official MCP TypeScript SDK's own request timeout ending a long-poll, against a running stub.
// Run by tests/stub/test_stub_ts_cancel.py:
//   node cancel.mjs <stub /mcp url> <agent_id> <skill> <wait_seconds> <timeout_ms>
// Registers the agent, calls request_next_task with wait_seconds and the SDK's `timeout`
// option below it: the SDK gives up at timeout_ms, sends `notifications/cancelled` for the
// call and keeps its HTTP request open (it never aborts the fetch). Prints one JSON line
// saying what the call threw, then keeps the process (and so that request) alive until its
// stdin closes, so the stub sees a cancellation and never a disconnect.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, agentId, skill, waitSeconds, timeoutMs] = process.argv.slice(2);
const client = new Client({ name: "pm-agent-ts-cancel", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
await client.callTool({
  name: "register_agent",
  arguments: { agent_id: agentId, name: "TS canceller", role: "checker", skills: [skill] },
});
const started = Date.now();
let outcome;
try {
  const result = await client.callTool(
    { name: "request_next_task", arguments: { agent_id: agentId, wait_seconds: Number(waitSeconds) } },
    undefined,
    { timeout: Number(timeoutMs) },
  );
  outcome = { answered: result.structuredContent ?? null };
} catch (error) {
  outcome = { thrown: String(error?.message ?? error), code: error?.code ?? null };
}
outcome.elapsed_ms = Date.now() - started;
process.stdout.write(JSON.stringify(outcome) + "\n");
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
