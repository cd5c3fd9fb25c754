//! `api-gateway`: the HTTP companion of the `api_gateway` PostgreSQL extension.
use api_gateway_front::config::Cli;
use clap::Parser;

// The front allocates many small buffers per request; with mimalloc it answered about 1.1x the
// requests per second it did with glibc's malloc (docs/http.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    api_gateway_front::memory::disable_transparent_huge_pages();
    let cli = Cli::parse();
    api_gateway_front::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.worker_threads())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("api-gateway: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(api_gateway_front::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("api-gateway: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
