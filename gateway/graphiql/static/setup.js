// broker-gateway: the GraphiQL explorer, configured from the JSON the page embeds (see
// gateway/graphiql/__init__.py). Everything it loads comes from this gateway.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("gateway-graphiql-config").textContent);
  var url = new URL(config.endpoint, window.location.href);
  var subscriptionUrl = new URL(config.endpoint, window.location.href);
  subscriptionUrl.protocol = url.protocol === "https:" ? "wss:" : "ws:";

  // Queries and mutations: POST /graphql. Subscriptions: graphql-transport-ws on the same path; the
  // header editor's headers (Authorization) go in the connection_init payload.
  var fetcher = GraphiQL.createFetcher({ url: url.toString(), subscriptionUrl: subscriptionUrl.toString() });

  var props = {
    fetcher: fetcher,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    defaultHeaders: config.headers,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: true,
    inputValueDeprecation: true
  };
  if (config.tabs.length > 0) {
    props.defaultTabs = config.tabs;
  }
  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(GraphiQL, props));
})();
