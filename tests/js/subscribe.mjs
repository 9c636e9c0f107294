// Subscribes with the graphql-ws library (the graphql-transport-ws protocol) and prints every
// result as one JSON line. Usage: node subscribe.mjs <ws-url> <document-file> <variables-json> [api-key]
import { readFileSync } from "node:fs";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, file, variables, apiKey] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: apiKey ? { Authorization: `Bearer ${apiKey}` } : undefined,
  retryAttempts: 0,
});
const query = readFileSync(file, "utf8");
console.log(JSON.stringify({ ready: true }));
for await (const result of client.iterate({ query, variables: JSON.parse(variables) })) {
  console.log(JSON.stringify(result));
}
