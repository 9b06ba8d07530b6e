export * from "./load";
export * from "./schema";
export { readVersions } from "./versions";
export * from "./template-image";
