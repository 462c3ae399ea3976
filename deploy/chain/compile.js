// Compile paystream's contracts with the pinned solc (npm) into ABI/bytecode
// artifacts under services/chain/artifacts/.
//   node compile.js          write the artifacts
//   node compile.js --check  exit 1 if the committed artifacts are stale
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const CONTRACTS = ["PaymentSettlement", "TestStablecoin"];
const SRC_DIR = path.join(__dirname, "contracts");
const OUT_DIR = path.join(__dirname, "..", "..", "services", "chain", "artifacts");

function findImport(importPath) {
  const candidates = [path.join(__dirname, "node_modules", importPath), path.join(SRC_DIR, importPath)];
  for (const file of candidates) {
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
  }
  return { error: `not found: ${importPath}` };
}

const input = {
  language: "Solidity",
  sources: Object.fromEntries(
    CONTRACTS.map((name) => [`${name}.sol`, { content: fs.readFileSync(path.join(SRC_DIR, `${name}.sol`), "utf8") }]),
  ),
  settings: {
    optimizer: { enabled: true, runs: 10000 },
    viaIR: true,
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

let stale = false;
for (const name of CONTRACTS) {
  const c = output.contracts[`${name}.sol`][name];
  const artifact = {
    contractName: name,
    compiler: `solc ${solc.version()}`,
    settings: input.settings,
    abi: c.abi,
    bytecode: "0x" + c.evm.bytecode.object,
    deployedBytecode: "0x" + c.evm.deployedBytecode.object,
  };
  const text = JSON.stringify(artifact, null, 2) + "\n";
  const file = path.join(OUT_DIR, `${name}.json`);
  if (process.argv.includes("--check")) {
    if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) {
      console.error(`stale artifact: ${file} (run: node deploy/chain/compile.js)`);
      stale = true;
    }
  } else {
    fs.mkdirSync(OUT_DIR, { recursive: true });
    fs.writeFileSync(file, text);
    console.log(`wrote ${file}`);
  }
}
process.exit(stale ? 1 : 0);
