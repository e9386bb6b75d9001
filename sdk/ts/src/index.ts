/** Attesta TypeScript SDK: the same surface as the Rust sdk (`attesta_sdk`), on viem. */
export * from "./abi/index.js";
export * from "./attestation.js";
export * from "./canonical.js";
export * from "./client.js";
export * from "./deployment.js";
export * from "./errors.js";
export * from "./hash.js";
export * from "./input.js";
export * from "./merkle.js";
export * from "./operator.js";
export * from "./quorum.js";
export * from "./relay.js";
export { STATUS_NAMES, decodeRevertData, statusName, toAttestaError } from "./revert.js";
