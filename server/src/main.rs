//! The `sotto-server` binary: reads the configuration, then serves until Ctrl-C or SIGTERM.

use clap::Parser;
use sotto_server::config::{Cli, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let mut cli = Cli::parse();
    // A command's output is its stdout: its log goes to stderr, warnings only by default.
    let admin = cli.command.is_some();
    let filter = || {
        EnvFilter::try_from_env("SOTTO_LOG")
            .unwrap_or_else(|_| EnvFilter::new(if admin { "warn" } else { "info" }))
    };
    let writer = move || -> Box<dyn std::io::Write> {
        if admin {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    };
    match cli.log_format.as_deref() {
        None | Some("text") => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(writer)
            .init(),
        // One JSON object per line, with the request's span (its request_id) on each.
        Some("json") => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter())
            .with_writer(writer)
            .init(),
        Some(other) => {
            eprintln!("sotto-server: log format {other:?}: use text or json");
            std::process::exit(2);
        }
    }
    let command = cli.command.take();
    let config = match Config::load(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sotto-server: {e}");
            std::process::exit(2);
        }
    };
    match command {
        Some(sotto_server::config::Command::Admin(args)) => {
            std::process::exit(sotto_server::cli::run(config, args).await);
        }
        Some(sotto_server::config::Command::CopyDatabase { to }) => {
            let target = sotto_server::db::Location::parse(&to);
            match sotto_server::db::copy::run(&config.database, &target).await {
                Ok(tables) => {
                    for (table, rows) in tables {
                        println!("{table}: {rows} rows");
                    }
                    println!("copied into {target}; point every node's `database` at it");
                    std::process::exit(0);
                }
                Err(e) => {
                    eprintln!("sotto-server: copy-database: {e}");
                    std::process::exit(1);
                }
            }
        }
        None => {}
    }
    let demo = config.demo;
    let serves_site = config.static_dir.is_some();
    let result = sotto_server::serve(config, shutdown_signal(), |addr| {
        // One line on stdout that scripts and tests read to learn the port.
        println!("sotto-server listening on http://{addr}");
        if demo && serves_site {
            println!("Demo ready: open http://{addr}/ in two browser windows and sign in as two different users.");
        }
    })
    .await;
    if let Err(e) = result {
        eprintln!("sotto-server: {e}");
        std::process::exit(1);
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
