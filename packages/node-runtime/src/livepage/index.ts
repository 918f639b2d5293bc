/** The daemon's live mesh page: a pure HTML string plus the JSON shape it polls. */
export * from "./LivePage.js"
