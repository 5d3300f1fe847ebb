//! In-process load generation for the intake benchmark: a minimal HTTP/1.1 keep-alive client, a
//! closed-loop generator for throughput at saturation (used when `wrk` is missing) and a paced,
//! open-loop generator for latency at a fixed rate (`wrk2` is not packaged by Debian).
//! It knows nothing about sluice or GitHub beyond the bytes of one signed request.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// An answer slower than this counts as a transport error, so a stuck server cannot hang the run.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// One webhook request, split around the delivery id so every request can carry a unique one.
pub struct RequestTemplate {
    head_before_delivery_id: Vec<u8>,
    head_after_delivery_id_and_body: Vec<u8>,
}

impl RequestTemplate {
    pub fn new(address: SocketAddr, path: &str, signature: &str, body: &[u8]) -> RequestTemplate {
        let head_before_delivery_id = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: GitHub-Hookshot/bench\r\n\
             Content-Type: application/json\r\nX-GitHub-Event: push\r\n\
             X-Hub-Signature-256: {signature}\r\nContent-Length: {length}\r\nX-GitHub-Delivery: ",
            length = body.len()
        )
        .into_bytes();
        let mut head_after_delivery_id_and_body = b"\r\n\r\n".to_vec();
        head_after_delivery_id_and_body.extend_from_slice(body);
        RequestTemplate {
            head_before_delivery_id,
            head_after_delivery_id_and_body,
        }
    }

    pub fn render(&self, delivery_id: &str) -> Vec<u8> {
        let mut request = Vec::with_capacity(
            self.head_before_delivery_id.len()
                + delivery_id.len()
                + self.head_after_delivery_id_and_body.len(),
        );
        request.extend_from_slice(&self.head_before_delivery_id);
        request.extend_from_slice(delivery_id.as_bytes());
        request.extend_from_slice(&self.head_after_delivery_id_and_body);
        request
    }
}

/// Hands out delivery ids that are unique within a process run and across runs.
pub struct DeliveryIds {
    prefix: String,
    next: AtomicU64,
}

impl DeliveryIds {
    pub fn new(prefix: &str) -> DeliveryIds {
        DeliveryIds {
            prefix: prefix.to_owned(),
            next: AtomicU64::new(0),
        }
    }

    pub fn next_id(&self) -> String {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{number}", self.prefix)
    }
}

/// A keep-alive HTTP/1.1 connection that sends one request at a time.
pub struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
}

impl Connection {
    pub async fn open(address: SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::new(stream),
            line: String::new(),
        })
    }

    /// Sends the request and reads the whole answer; returns the status code and whether the
    /// server keeps the connection open.
    pub async fn exchange(&mut self, request: &[u8]) -> io::Result<(u16, bool)> {
        self.stream.get_mut().write_all(request).await?;
        self.line.clear();
        self.read_line().await?;
        let status = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| invalid(format!("status line {:?}", self.line.trim_end())))?;
        let mut content_length = 0usize;
        let mut chunked = false;
        let mut keep_alive = true;
        loop {
            self.line.clear();
            self.read_line().await?;
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value
                    .parse()
                    .map_err(|_| invalid(format!("content-length {value:?}")))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            }
        }
        if chunked {
            self.skip_chunked_body().await?;
        } else {
            self.skip_bytes(content_length).await?;
        }
        Ok((status, keep_alive))
    }

    async fn read_line(&mut self) -> io::Result<()> {
        if self.stream.read_line(&mut self.line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    async fn skip_bytes(&mut self, mut remaining: usize) -> io::Result<()> {
        let mut scratch = [0u8; 4096];
        while remaining > 0 {
            let wanted = remaining.min(scratch.len());
            let read = self.stream.read(&mut scratch[..wanted]).await?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection inside a body",
                ));
            }
            remaining -= read;
        }
        Ok(())
    }

    async fn skip_chunked_body(&mut self) -> io::Result<()> {
        loop {
            self.line.clear();
            self.read_line().await?;
            let size_text = self.line.trim_end().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text.trim(), 16)
                .map_err(|_| invalid(format!("chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    self.line.clear();
                    self.read_line().await?;
                    if self.line.trim_end().is_empty() {
                        return Ok(());
                    }
                }
            }
            self.skip_bytes(size + 2).await?;
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Counts of answers by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcomes {
    pub successes: u64,
    /// Answers outside 2xx.
    pub bad_statuses: u64,
    /// Connection or protocol failures.
    pub transport_errors: u64,
}

impl Outcomes {
    pub fn errors(&self) -> u64 {
        self.bad_statuses + self.transport_errors
    }
}

/// Throughput measured by a closed loop: `connections` clients, each sending its next request as
/// soon as the previous answer arrived.
pub struct Saturation {
    pub outcomes: Outcomes,
    pub elapsed: Duration,
}

impl Saturation {
    pub fn requests_per_second(&self) -> f64 {
        self.outcomes.successes as f64 / self.elapsed.as_secs_f64()
    }
}

pub fn saturate(
    address: SocketAddr,
    template: Arc<RequestTemplate>,
    delivery_ids: Arc<DeliveryIds>,
    connections: usize,
    duration: Duration,
) -> Saturation {
    let runtime = generator_runtime();
    runtime.block_on(async move {
        let started = Instant::now();
        let deadline = started + duration;
        let mut clients = Vec::new();
        for _ in 0..connections {
            let template = template.clone();
            let delivery_ids = delivery_ids.clone();
            clients.push(tokio::spawn(async move {
                let mut outcomes = Outcomes::default();
                let mut connection = None;
                while Instant::now() < deadline {
                    if connection.is_none() {
                        match Connection::open(address).await {
                            Ok(opened) => connection = Some(opened),
                            Err(_) => {
                                outcomes.transport_errors += 1;
                                continue;
                            }
                        }
                    }
                    let open = connection.as_mut().expect("opened above");
                    let request = template.render(&delivery_ids.next_id());
                    match tokio::time::timeout(ANSWER_TIMEOUT, open.exchange(&request)).await {
                        Ok(Ok((status, keep_alive))) => {
                            if (200..300).contains(&status) {
                                outcomes.successes += 1;
                            } else {
                                outcomes.bad_statuses += 1;
                            }
                            if !keep_alive {
                                connection = None;
                            }
                        }
                        Ok(Err(_)) | Err(_) => {
                            outcomes.transport_errors += 1;
                            connection = None;
                        }
                    }
                }
                outcomes
            }));
        }
        let mut total = Outcomes::default();
        for client in clients {
            let outcomes = client.await.expect("client task does not panic");
            total.successes += outcomes.successes;
            total.bad_statuses += outcomes.bad_statuses;
            total.transport_errors += outcomes.transport_errors;
        }
        Saturation {
            outcomes: total,
            elapsed: started.elapsed(),
        }
    })
}

/// Latencies at a fixed offered rate, measured from the moment each request was due (so a stall
/// of the server counts against every request it delays, not just the one it hit).
pub struct Paced {
    pub outcomes: Outcomes,
    /// Sorted latencies of the successful requests sent after the warm-up.
    pub latencies: Vec<Duration>,
    /// How late the pacer itself woke up, at worst (it is part of every latency).
    pub worst_pacer_lateness: Duration,
    pub achieved_rate: f64,
}

impl Paced {
    pub fn percentile(&self, fraction: f64) -> Option<Duration> {
        percentile(&self.latencies, fraction)
    }
}

pub fn percentile(sorted: &[Duration], fraction: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Offers `rate` requests per second for `warm_up + duration`; only the requests due after the
/// warm-up are measured. A pacing thread sleeps until each due time and hands the request to a
/// separate runtime, where it takes an idle connection or opens a new one, so a slow answer never
/// holds back the next request (open loop).
pub fn pace(
    address: SocketAddr,
    template: Arc<RequestTemplate>,
    delivery_ids: Arc<DeliveryIds>,
    rate: u32,
    warm_up: Duration,
    duration: Duration,
) -> Paced {
    let runtime = generator_runtime();
    let idle_connections: Arc<Mutex<Vec<Connection>>> = Arc::new(Mutex::new(Vec::new()));
    let (results_sender, mut results_receiver) =
        tokio::sync::mpsc::unbounded_channel::<(bool, Result<u16, ()>, Duration)>();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let total_requests = ((warm_up + duration).as_secs_f64() * f64::from(rate)).round() as u64;
    let warm_up_requests = (warm_up.as_secs_f64() * f64::from(rate)).round() as u64;
    let (worst_pacer_lateness, sending_elapsed) = std::thread::scope(|scope| {
        let pacer = scope.spawn(|| {
            set_fine_timer_slack();
            let started = Instant::now();
            let mut worst_pacer_lateness = Duration::ZERO;
            for index in 0..total_requests {
                let due = started + interval.mul_f64(index as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                worst_pacer_lateness =
                    worst_pacer_lateness.max(Instant::now().saturating_duration_since(due));
                let measured = index >= warm_up_requests;
                let request = template.render(&delivery_ids.next_id());
                let idle_connections = idle_connections.clone();
                let results_sender = results_sender.clone();
                runtime.spawn(async move {
                    let outcome =
                        send_on_idle_connection(address, &idle_connections, &request).await;
                    let _ = results_sender.send((measured, outcome, due.elapsed()));
                });
            }
            (worst_pacer_lateness, started.elapsed())
        });
        pacer.join().expect("the pacer does not panic")
    });
    drop(results_sender);
    runtime.block_on(async move {
        let mut outcomes = Outcomes::default();
        let mut latencies = Vec::with_capacity(total_requests as usize);
        while let Some((measured, outcome, latency)) = results_receiver.recv().await {
            if !measured {
                continue;
            }
            match outcome {
                Ok(status) if (200..300).contains(&status) => {
                    outcomes.successes += 1;
                    latencies.push(latency);
                }
                Ok(_) => outcomes.bad_statuses += 1,
                Err(()) => outcomes.transport_errors += 1,
            }
        }
        latencies.sort_unstable();
        Paced {
            outcomes,
            latencies,
            worst_pacer_lateness,
            achieved_rate: total_requests as f64 / sending_elapsed.as_secs_f64(),
        }
    })
}

async fn send_on_idle_connection(
    address: SocketAddr,
    idle_connections: &Mutex<Vec<Connection>>,
    request: &[u8],
) -> Result<u16, ()> {
    let reused = idle_connections.lock().await.pop();
    let mut connection = match reused {
        Some(connection) => connection,
        None => Connection::open(address).await.map_err(|_| ())?,
    };
    let (status, keep_alive) = tokio::time::timeout(ANSWER_TIMEOUT, connection.exchange(request))
        .await
        .map_err(|_| ())?
        .map_err(|_| ())?;
    if keep_alive {
        idle_connections.lock().await.push(connection);
    }
    Ok(status)
}

/// Linux lets a sleeping thread wake up to 50 µs late by default ("timer slack"); the pacer asks
/// for 1 ns so each request leaves when it is due without spinning on the server's cores.
fn set_fine_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK only changes the calling thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// The generator's own runtime and thread, apart from the server's workers.
fn generator_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("load-generator")
        .enable_all()
        .build()
        .expect("build the load generator's runtime")
}
