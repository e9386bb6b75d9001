// The example dApp's build. `@attesta/sdk` is the TypeScript sdk's source in this repository
// (sdk/ts/src), compiled with the page; `dedupe` makes the sdk use this package's viem, so the
// page ships one copy. The magika labels (models/magika-1.0.3/config.min.json, fetched by
// tools/fetch-models) are served as /magika-config.json when present.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

const sdk = fileURLToPath(new URL("../sdk/ts/src/index.ts", import.meta.url));
const labels = fileURLToPath(new URL("../models/magika-1.0.3/config.min.json", import.meta.url));

function magikaLabels(): Plugin {
  return {
    name: "attesta-magika-labels",
    configureServer(server) {
      server.middlewares.use("/magika-config.json", (_req, res, next) => {
        if (!existsSync(labels)) return next();
        res.setHeader("content-type", "application/json");
        res.end(readFileSync(labels));
      });
    },
    generateBundle() {
      if (existsSync(labels)) this.emitFile({ type: "asset", fileName: "magika-config.json", source: readFileSync(labels) });
    },
  };
}

export default defineConfig({
  resolve: { alias: { "@attesta/sdk": sdk }, dedupe: ["viem"] },
  plugins: [magikaLabels()],
  build: { target: "es2022", chunkSizeWarningLimit: 1024 },
});
