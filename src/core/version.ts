import pkg from "../../package.json" with { type: "json" };

/** The package version, bundled into the binary at build time. */
export const version: string = pkg.version;
