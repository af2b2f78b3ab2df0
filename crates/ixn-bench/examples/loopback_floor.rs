//! What this machine allows before any server logic: closed-loop request/answer round trips
//! over loopback TCP between two processes, with Tokio on both sides, the way the bench and the
//! server talk (one connection per client, a small frame each way, no batching).
//!
//! ```text
//! cargo run --release -p ixn-bench --example loopback_floor -- [CLIENTS] [SECONDS] [BYTES]
//! ```
//!
//! It starts an echo server as a child process (itself, with `serve`), connects CLIENTS
//! connections (default 36: the bench's 4 media servers and 32 desktops), keeps one request in
//! flight on each for SECONDS (default 10) and prints round trips per second and the CPU both
//! processes used. One lifecycle of `ixn bench lifecycle` is four such round trips (submit,
//! invite + accept, stop, and the submitter's notice of the stop) plus the server's work, so a
//! quarter of this rate is a ceiling no server could pass over the same connections.
#![allow(clippy::print_stdout)]

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ixn_bench::procstat;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.first().map(String::as_str) == Some("serve") {
        return rt.block_on(serve());
    }
    let number = |i: usize, default: u64| -> anyhow::Result<u64> {
        args.get(i).map_or(Ok(default), |s| Ok(s.parse()?))
    };
    let clients = usize::try_from(number(0, 36)?)?;
    let seconds = number(1, 10)?.clamp(1, 600);
    let bytes = usize::try_from(number(2, 256)?)?.clamp(1, 65_536);

    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let addr = line.trim().to_owned();
    let result = rt.block_on(drive(
        &addr,
        clients,
        Duration::from_secs(seconds),
        bytes,
        child.id(),
    ));
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Echoes every frame (4-byte length, then the body) on every connection.
async fn serve() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                let Ok(len) = s.read_u32().await else { return };
                buf.resize(4 + len as usize, 0);
                buf[..4].copy_from_slice(&len.to_be_bytes());
                if s.read_exact(&mut buf[4..]).await.is_err() || s.write_all(&buf).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn drive(
    addr: &str,
    clients: usize,
    duration: Duration,
    bytes: usize,
    server_pid: u32,
) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (stop, done) = (stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut frame = vec![b'x'; 4 + bytes];
            frame[..4].copy_from_slice(&u32::try_from(bytes).unwrap_or(u32::MAX).to_be_bytes());
            let mut answer = vec![0; 4 + bytes];
            while !stop.load(Ordering::Relaxed) {
                s.write_all(&frame).await?;
                s.read_exact(&mut answer).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let cpu = |pid: u32| procstat::sample(pid).map_or(0.0, |s| s.cpu_s);
    let (s0, c0, t0) = (cpu(server_pid), cpu(std::process::id()), Instant::now());
    let n0 = done.load(Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    let n1 = done.load(Ordering::Relaxed);
    let (s1, c1, elapsed) = (cpu(server_pid), cpu(std::process::id()), t0.elapsed());
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    let secs = elapsed.as_secs_f64();
    let rate = (n1 - n0) as f64 / secs;
    println!("clients {clients}, frame {bytes} B, {secs:.1} s");
    println!("round trips/s        {rate:.0}");
    println!(
        "echo server CPU      {:.0} % of one core",
        (s1 - s0) / secs * 100.0
    );
    println!(
        "clients CPU          {:.0} % of one core",
        (c1 - c0) / secs * 100.0
    );
    println!(
        "CPU per round trip   {:.1} µs (both processes, user + system)",
        (s1 - s0 + c1 - c0) / (n1 - n0).max(1) as f64 * 1e6
    );
    println!(
        "ceiling at 4 round trips per lifecycle: {:.0} lifecycles/s",
        rate / 4.0
    );
    Ok(())
}
