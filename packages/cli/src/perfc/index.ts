/** perfc: mesh-wide route overview over each site's ManagementService. */

export * from "./CliOptions.js"
export * from "./Command.js"
export * from "./ManagementClient.js"
export * from "./PathPing.js"
export * from "./Perfc.js"
export * from "./Render.js"
export * from "./Snapshot.js"
export * from "./Targets.js"
