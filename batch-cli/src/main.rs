//! `batch`: sends operations from a file to an HTTP batch endpoint, split within the
//! server's limits, retried when the server asks, and writes one result per op.
//!
//! ```text
//! batch send --url http://127.0.0.1:3000/batch ops.jsonl > results.jsonl
//! ```
//!
//! Exit status: 0 when every op answered below 400, 1 when any op failed, 2 for a
//! usage error, an unreadable input, a transport error or a refused batch (the
//! problem is shown on stderr).

mod input;
mod output;
mod progress;

use std::io::{Read, Write};
use std::process::ExitCode;

use batch_client::{Client, Error, OpResponse, RetryPolicy, WireFormat};
use batch_core::Operation;
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::StreamExt;

use progress::Progress;

#[derive(Parser)]
#[command(
    name = "batch",
    version,
    about = "Sends operations to an HTTP batch endpoint"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sends every op of FILE, split into batches the server takes, and writes
    /// their results in input order.
    Send(Send),
}

#[derive(Args)]
struct Send {
    /// The batch endpoint, such as http://127.0.0.1:3000/batch.
    #[arg(long)]
    url: String,
    /// A native batch ({"ops": [...]}), a JSON array of ops, or JSON Lines with one
    /// op per line; `-` reads standard input.
    file: String,
    /// Batches sent at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// The wire format of the batches.
    #[arg(long, value_enum, default_value_t = FormatArg::Native)]
    format: FormatArg,
    /// A header sent with every batch, as 'name: value' (repeatable); ops inherit
    /// what the server lets them, `authorization` among them.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Retries ops with non-idempotent methods (POST, PATCH) answered 429 or 503
    /// too.
    #[arg(long)]
    retry_unsafe: bool,
    /// Sends batches without an Idempotency-Key: a batch whose answer is lost is
    /// then sent again only when all its ops have idempotent methods.
    #[arg(long)]
    no_idempotency_key: bool,
    /// How results are written on standard output.
    #[arg(long, value_enum, default_value_t = OutputArg::Jsonl)]
    output: OutputArg,
    /// Sends each op as a request of its own instead of in batches (dependencies
    /// are not honoured): what batching saves, measured.
    #[arg(long)]
    single: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Native,
    Graph,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputArg {
    Jsonl,
    Table,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not 'name: value'"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("{text:?} has no header name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// What stops a run before every op has its result.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: {1}")]
    Input(String, input::InputError),
    #[error("{0}")]
    Client(#[from] Error),
    #[error("cannot write the results: {0}")]
    Write(#[from] std::io::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Send(send) = cli.command;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(send)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(2)
        }
    }
}

/// Sends the ops and writes their results; whether every op succeeded.
async fn run(send: Send) -> Result<bool, Failure> {
    let text = read(&send.file).map_err(|err| Failure::Read(send.file.clone(), err))?;
    let ops = input::parse(&text).map_err(|err| Failure::Input(send.file.clone(), err))?;
    let mut builder = Client::builder(&send.url)
        .concurrency(usize::from(send.concurrency))
        .format(match send.format {
            FormatArg::Native => WireFormat::Native,
            FormatArg::Graph => WireFormat::Graph,
        })
        .retry(RetryPolicy::default().retry_unsafe(send.retry_unsafe))
        .idempotency_keys(!send.no_idempotency_key);
    for (name, value) in &send.headers {
        builder = builder.header(name, value);
    }
    let client = builder.build()?;
    let results = if send.single {
        single(&client, ops, usize::from(send.concurrency)).await?
    } else {
        batched(&client, ops).await?
    };
    let mut stdout = std::io::stdout().lock();
    match send.output {
        OutputArg::Jsonl => output::json_lines(&mut stdout, &results)?,
        OutputArg::Table => output::table(&mut stdout, &results)?,
    }
    stdout.flush()?;
    Ok(results.iter().all(OpResponse::is_success))
}

fn read(file: &str) -> std::io::Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file)
    }
}

/// The results in input order, the bar advancing as batches answer.
async fn batched(client: &Client, ops: Vec<Operation>) -> Result<Vec<OpResponse>, Error> {
    let total = ops.len();
    let mut progress = Progress::new(total);
    let mut slots: Vec<Option<OpResponse>> = vec![None; total];
    let mut results = client.batch().ops(ops).stream();
    while let Some(result) = results.next().await {
        let result = match result {
            Ok(result) => result,
            Err(err) => {
                progress.finish();
                return Err(err);
            }
        };
        let index = result.index;
        slots[index] = Some(result);
        progress.advance();
    }
    progress.finish();
    collect(slots)
}

/// Each op as a request of its own, `concurrency` at once.
async fn single(
    client: &Client,
    ops: Vec<Operation>,
    concurrency: usize,
) -> Result<Vec<OpResponse>, Error> {
    let total = ops.len();
    let mut progress = Progress::new(total);
    let mut slots: Vec<Option<OpResponse>> = vec![None; total];
    let mut answers = futures::stream::iter(ops.iter().enumerate())
        .map(|(index, op)| async move { (index, client.send_single(op).await) })
        .buffer_unordered(concurrency);
    while let Some((index, answer)) = answers.next().await {
        let mut answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                progress.finish();
                return Err(err);
            }
        };
        answer.index = index;
        answer.id = ops[index]
            .id
            .as_deref()
            .map_or_else(|| index.to_string(), str::to_owned);
        slots[index] = Some(answer);
        progress.advance();
    }
    progress.finish();
    collect(slots)
}

fn collect(slots: Vec<Option<OpResponse>>) -> Result<Vec<OpResponse>, Error> {
    slots
        .into_iter()
        .enumerate()
        .map(|(index, slot)| slot.ok_or_else(|| Error::Answer(format!("no result for op {index}"))))
        .collect()
}
