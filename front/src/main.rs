//! `api-gateway`: the HTTP companion of the `api_gateway` PostgreSQL extension.
use api_gateway_front::config::Cli;
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    api_gateway_front::telemetry::init();
    match api_gateway_front::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("api-gateway: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
