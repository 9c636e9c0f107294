// Runs one query twice with Apollo Client and its persisted-queries link (Automatic Persisted Queries),
// each time from a fresh client, and prints one JSON line: every HTTP exchange the link made (method,
// whether the document was sent, the hash, the answer's error codes) and the two results' data.
// Usage: node apq.mjs <http-url> <post|get> <document> [variables-json]
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { createHash } from "node:crypto";

const [url, method, documentText, variablesJson] = process.argv.slice(2);
const variables = variablesJson ? JSON.parse(variablesJson) : {};
const exchanges = [];

async function loggingFetch(uri, options) {
  const response = await fetch(uri, options);
  const text = await response.clone().text();
  const sent = options.method === "GET"
    ? Object.fromEntries(new URL(uri).searchParams)
    : JSON.parse(options.body);
  const extensions = typeof sent.extensions === "string" ? JSON.parse(sent.extensions) : sent.extensions;
  let codes = [];
  try {
    codes = (JSON.parse(text).errors || []).map((e) => (e.extensions || {}).code);
  } catch {
    codes = ["<not JSON>"];
  }
  exchanges.push({
    method: options.method,
    sentQuery: typeof sent.query === "string" && sent.query.length > 0,
    hash: extensions && extensions.persistedQuery ? extensions.persistedQuery.sha256Hash : null,
    status: response.status,
    codes,
  });
  return response;
}

function client() {
  const persisted = new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: method === "get",
  });
  return new ApolloClient({
    cache: new InMemoryCache(),
    link: persisted.concat(new HttpLink({ uri: url, fetch: loggingFetch })),
  });
}

const query = gql(documentText);
const results = [];
for (let i = 0; i < 2; i++) {
  const result = await client().query({ query, variables, fetchPolicy: "no-cache" });
  results.push(result.data);
}
console.log(JSON.stringify({ exchanges, results }));
