module wasm-shim-fleet/agent

go 1.23
