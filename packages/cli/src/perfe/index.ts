/** perfe: the route/cost matrix exporter to Elasticsearch. */
export * from "./Command.js"
export * from "./Documents.js"
export * from "./Elastic.js"
export * from "./Perfe.js"
