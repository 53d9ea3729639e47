//! A small containerd Wasm shim for the real-nodes test tier.
//!
//! It runs WASI preview 1 modules with wasmtime through runwasi's
//! `containerd-shim-wasm` library. Its version is fixed at build time from
//! `FLEETTEST_SHIM_VERSION` (read with `option_env!`, so a second build with
//! another version recompiles only this crate) and printed by `-v`.
//! Before running a module it writes one line naming itself and its version to
//! the container's stderr, so `kubectl logs` shows which shim ran the pod.

use anyhow::{Context, Result};
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{Entrypoint, RuntimeContext};
use containerd_shim_wasm::shim::{Cli, Config, Shim, Version};
use wasmtime::{Config as EngineConfig, Engine, Linker, Module, Store};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

const VERSION: &str = match option_env!("FLEETTEST_SHIM_VERSION") {
    Some(v) => v,
    None => "0.0.0-dev",
};
const REVISION: &str = match option_env!("FLEETTEST_SHIM_REVISION") {
    Some(r) => r,
    None => "local",
};

struct FleetTestShim;

#[derive(Default)]
struct WasmtimeSandbox;

impl Shim for FleetTestShim {
    type Sandbox = WasmtimeSandbox;

    fn name() -> &'static str {
        "fleettest"
    }

    fn version() -> Version {
        Version {
            version: VERSION,
            revision: REVISION,
        }
    }
}

impl Sandbox for WasmtimeSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> Result<i32> {
        let Entrypoint { source, func, .. } = ctx.entrypoint();
        let bytes = source.as_bytes().context("reading the Wasm module")?;

        let engine = Engine::new(&EngineConfig::new()).map_err(wt)?;
        let module = Module::new(&engine, &bytes[..]).map_err(wt)?;

        let envs: Vec<(String, String)> = ctx
            .envs()
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut builder = WasiCtxBuilder::new();
        builder.inherit_stdio().args(ctx.args()).envs(&envs);
        builder.preopened_dir("/", "/", FsPerms::ReadWrite).map_err(wt)?;
        let wasi: WasiP1Ctx = builder.build_p1();

        eprintln!("containerd-shim-fleettest {VERSION} runs {func}");

        let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
        p1::add_to_linker_async(&mut linker, |cx| cx).map_err(wt)?;
        let mut store = Store::new(&engine, wasi);
        let instance = linker.instantiate_async(&mut store, &module).await.map_err(wt)?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, func.as_str())
            .map_err(wt)
            .with_context(|| format!("the module exports no function {func}"))?;
        match start.call_async(&mut store, ()).await {
            Ok(()) => Ok(0),
            Err(err) => match err.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(wt(err)),
            },
        }
    }
}

/// wasmtime 48's error type, as an anyhow error (this build leaves out wasmtime's `anyhow` feature).
fn wt(err: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{err:?}")
}

fn main() {
    FleetTestShim::run(Config::default());
}
