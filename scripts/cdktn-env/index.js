// Preloaded into every node process npm and npx start in this repository (.npmrc node-options), so that
// `npx cdktn synth` and `npx cdktn diff` behave as `make synth` and `make diff` do:
// - no telemetry or version checks from the CDK CLI: nothing leaves the machine but provider downloads;
// - a TF_CLI_CONFIG_FILE that names a missing file is dropped: it would only make terraform/tofu print warnings.
// The operator's own settings win: a variable already set is kept.
"use strict";
const fs = require("node:fs");

const env = process.env;
env.CHECKPOINT_DISABLE ??= "1";
env.DISABLE_VERSION_CHECK ??= "true";
if (env.TF_CLI_CONFIG_FILE && !fs.existsSync(env.TF_CLI_CONFIG_FILE)) delete env.TF_CLI_CONFIG_FILE;
