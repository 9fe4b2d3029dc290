//! The HTTP webhook audit target: records are POSTed to an `http://` endpoint, one JSON object
//! per POST (`batch_size` 1, `application/json`) or up to `batch_size` records as NDJSON
//! (`application/x-ndjson`).
//!
//! Requests hand records to a bounded in-memory queue (`try_send`; full → dropped, counted).
//! A worker task delivers them. When a delivery fails, the batch and everything after it become
//! *pending*: kept in memory (bounded by the queue length) or, with a spill directory, appended
//! to spill files on disk (bounded by `spill_bytes_max`); the worker keeps draining the queue
//! into the pending store while it retries the oldest pending batch with exponential backoff
//! ([`RETRY_BACKOFF_MIN`] doubling to [`RETRY_BACKOFF_MAX`]). Spill files left by an earlier
//! run are delivered first.
//!
//! Invariants: records are delivered in the order they were logged; a record leaves the spill
//! only after the endpoint answered 2xx for it (delivery is at-least-once: a crash between the
//! answer and the removal resends); a slow or dead endpoint costs requests nothing beyond the
//! `try_send`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

use crate::audit::{AuditTarget, TargetStats};
use crate::error::ObsError;

/// First retry delay after a failed delivery.
pub const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest retry delay.
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Time one POST may take.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Records per spill file.
pub const SPILL_FILE_RECORDS_MAX: usize = 1000;
const _: () = assert!(RETRY_BACKOFF_MIN.as_millis() < RETRY_BACKOFF_MAX.as_millis());

/// Settings of the webhook target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `http://host:port/path`.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer ...` when set.
    pub auth_token: Option<String>,
    /// Records the in-memory queue (and the in-memory pending store) holds.
    pub queue_len: usize,
    /// Records per POST; 1 sends plain JSON, more sends NDJSON.
    pub batch_size: usize,
    /// Where pending records go while the endpoint is down; `None` keeps them in memory.
    pub spill_dir: Option<PathBuf>,
    /// Most bytes the spill directory holds.
    pub spill_bytes_max: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
}

/// Posts records to an HTTP endpoint from a worker task.
pub struct WebhookTarget {
    tx: mpsc::Sender<Bytes>,
    counters: Arc<Counters>,
}

impl WebhookTarget {
    /// Checks the endpoint, opens the spill directory (loading what an earlier run left) and
    /// starts the worker on the current runtime.
    pub fn start(config: WebhookConfig) -> Result<WebhookTarget, ObsError> {
        let uri: http::Uri = config.endpoint.parse().map_err(|_| ObsError::WebhookEndpoint {
            endpoint: config.endpoint.clone(),
        })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(ObsError::WebhookEndpoint {
                endpoint: config.endpoint.clone(),
            });
        }
        let counters = Arc::new(Counters::default());
        let pending = match &config.spill_dir {
            Some(dir) => Pending::Spill(Spill::open(dir, config.spill_bytes_max)?),
            None => Pending::Memory(VecDeque::new(), config.queue_len.max(1)),
        };
        counters.queued.store(pending.len() as u64, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(config.queue_len.max(1));
        let worker = Worker {
            client: Client::builder(TokioExecutor::new()).build_http(),
            uri,
            auth: config.auth_token.clone(),
            batch_size: config.batch_size.max(1),
            counters: Arc::clone(&counters),
            pending,
        };
        tokio::spawn(worker.run(rx));
        Ok(WebhookTarget { tx, counters })
    }
}

impl AuditTarget for WebhookTarget {
    fn enqueue(&self, line: Bytes) {
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(line).is_err() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stats(&self) -> TargetStats {
        TargetStats {
            name: "webhook".to_owned(),
            sent: self.counters.sent.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            queued: self.counters.queued.load(Ordering::Relaxed),
        }
    }
}

/// Records not yet delivered, oldest first.
enum Pending {
    /// In memory, at most `.1` records.
    Memory(VecDeque<Bytes>, usize),
    /// In spill files.
    Spill(Spill),
}

impl Pending {
    fn len(&self) -> usize {
        match self {
            Pending::Memory(q, _) => q.len(),
            Pending::Spill(s) => s.n_records,
        }
    }

    /// Appends a record; `false` when full (the record is dropped).
    fn push(&mut self, line: Bytes) -> bool {
        match self {
            Pending::Memory(q, cap) => {
                if q.len() >= *cap {
                    return false;
                }
                q.push_back(line);
                true
            }
            Pending::Spill(s) => match s.push(&line) {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::warn!(error = %e, "audit spill write failed");
                    false
                }
            },
        }
    }

    /// Makes spilled records durable in their file (a no-op in memory).
    fn flush(&mut self) {
        if let Pending::Spill(s) = self
            && let Err(e) = s.flush()
        {
            tracing::warn!(error = %e, "audit spill write failed");
        }
    }

    /// The oldest up to `n` records.
    fn front(&mut self, n: usize) -> Vec<Bytes> {
        match self {
            Pending::Memory(q, _) => q.iter().take(n).cloned().collect(),
            Pending::Spill(s) => s.front(n),
        }
    }

    /// Removes the oldest `n` records (delivered).
    fn pop(&mut self, n: usize) {
        match self {
            Pending::Memory(q, _) => {
                q.drain(..n.min(q.len()));
            }
            Pending::Spill(s) => {
                if let Err(e) = s.pop(n) {
                    tracing::warn!(error = %e, "removing a delivered audit spill file failed");
                }
            }
        }
    }
}

/// Spill files `DIR/<seq, 20 digits>.ndjson`, each at most [`SPILL_FILE_RECORDS_MAX`] records.
struct Spill {
    dir: PathBuf,
    bytes_max: u64,
    /// Sequence numbers of the files, oldest first.
    files: VecDeque<u64>,
    /// Records of the oldest file, loaded, and how many of them were delivered.
    front_lines: Option<(Vec<Bytes>, usize)>,
    /// Records in the newest file (appended to until full).
    n_tail_records: usize,
    /// Undelivered records in all files.
    n_records: usize,
    size_bytes: u64,
    /// The newest file, open for appending (buffered until [`Spill::flush`]), and its number.
    tail_file: Option<(u64, std::io::BufWriter<std::fs::File>)>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ObsError + '_ {
    move |source| ObsError::AuditIo {
        path: path.to_owned(),
        source,
    }
}

/// The complete JSON lines of a spill file (a torn last line from a crash is skipped).
fn read_lines(path: &Path) -> std::io::Result<Vec<Bytes>> {
    let data = Bytes::from(std::fs::read(path)?);
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            let line = data.slice(start..i);
            if serde_json::from_slice::<serde::de::IgnoredAny>(&line).is_ok() {
                out.push(line);
            }
            start = i + 1;
        }
    }
    Ok(out)
}

impl Spill {
    fn open(dir: &Path, bytes_max: u64) -> Result<Spill, ObsError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut files = Vec::new();
        let mut size_bytes = 0;
        let mut n_records = 0;
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".ndjson"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let path = entry.path();
            size_bytes += entry.metadata().map_err(io_err(&path))?.len();
            n_records += read_lines(&path).map_err(io_err(&path))?.len();
            files.push(seq);
        }
        files.sort_unstable();
        Ok(Spill {
            dir: dir.to_owned(),
            bytes_max,
            files: files.into(),
            front_lines: None,
            // Never append to a file of an earlier run (it may end in a torn line).
            n_tail_records: SPILL_FILE_RECORDS_MAX,
            n_records,
            size_bytes,
            tail_file: None,
        })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.ndjson"))
    }

    fn push(&mut self, line: &[u8]) -> std::io::Result<bool> {
        let len = line.len() as u64 + 1;
        if self.size_bytes + len > self.bytes_max {
            return Ok(false);
        }
        // The front file is read once loaded; new records go to a newer file.
        let tail_is_front = self.files.len() == 1 && self.front_lines.is_some();
        if self.files.is_empty() || self.n_tail_records >= SPILL_FILE_RECORDS_MAX || tail_is_front {
            let seq = self.files.back().map_or(0, |s| s + 1);
            self.files.push_back(seq);
            self.n_tail_records = 0;
        }
        let seq = self.files.back().copied().unwrap_or(0);
        let mut file = match self.tail_file.take() {
            Some((open_seq, f)) if open_seq == seq => f,
            other => {
                if let Some((_, mut old)) = other {
                    std::io::Write::flush(&mut old)?;
                }
                std::io::BufWriter::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(self.path(seq))?,
                )
            }
        };
        {
            use std::io::Write;
            file.write_all(line)?;
            file.write_all(b"\n")?;
        }
        self.tail_file = Some((seq, file));
        self.n_tail_records += 1;
        self.n_records += 1;
        self.size_bytes += len;
        Ok(true)
    }

    /// Writes buffered records out to the newest file.
    fn flush(&mut self) -> std::io::Result<()> {
        match self.tail_file.as_mut() {
            Some((_, f)) => std::io::Write::flush(f),
            None => Ok(()),
        }
    }

    fn front(&mut self, n: usize) -> Vec<Bytes> {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "audit spill write failed");
        }
        loop {
            let Some(&seq) = self.files.front() else {
                return Vec::new();
            };
            if self.front_lines.is_none() {
                match read_lines(&self.path(seq)) {
                    Ok(lines) => self.front_lines = Some((lines, 0)),
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable audit spill file skipped");
                        self.files.pop_front();
                        continue;
                    }
                }
            }
            if let Some((lines, done)) = &self.front_lines
                && *done < lines.len()
            {
                return lines[*done..lines.len().min(done + n)].to_vec();
            }
            // Everything in it delivered (or empty): remove it and look at the next.
            if self.remove_front().is_err() {
                return Vec::new();
            }
        }
    }

    fn remove_front(&mut self) -> std::io::Result<()> {
        let Some(seq) = self.files.pop_front() else {
            return Ok(());
        };
        let path = self.path(seq);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        self.front_lines = None;
        if self
            .tail_file
            .as_ref()
            .is_some_and(|(open_seq, _)| *open_seq == seq)
        {
            self.tail_file = None;
        }
        if self.files.is_empty() {
            self.n_tail_records = SPILL_FILE_RECORDS_MAX;
        }
        self.size_bytes = self.size_bytes.saturating_sub(size);
        std::fs::remove_file(&path)
    }

    fn pop(&mut self, n: usize) -> std::io::Result<()> {
        self.n_records = self.n_records.saturating_sub(n);
        if let Some((lines, done)) = &mut self.front_lines {
            *done += n;
            if *done >= lines.len() {
                return self.remove_front();
            }
        }
        Ok(())
    }
}

struct Worker {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: http::Uri,
    auth: Option<String>,
    batch_size: usize,
    counters: Arc<Counters>,
    pending: Pending,
}

impl Worker {
    async fn post(&self, batch: &[Bytes]) -> Result<(), String> {
        let (body, content_type) = if batch.len() == 1 && self.batch_size == 1 {
            (batch[0].clone(), "application/json")
        } else {
            let mut b = BytesMut::new();
            for line in batch {
                b.extend_from_slice(line);
                b.extend_from_slice(b"\n");
            }
            (b.freeze(), "application/x-ndjson")
        };
        let mut req = http::Request::post(self.uri.clone()).header(http::header::CONTENT_TYPE, content_type);
        if let Some(token) = &self.auth {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        match tokio::time::timeout(POST_TIMEOUT, self.client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
            Ok(Ok(resp)) => Err(format!("status {}", resp.status())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    }

    fn delivered(&self, n: usize) {
        self.counters.sent.fetch_add(n as u64, Ordering::Relaxed);
        self.counters.queued.fetch_sub(n as u64, Ordering::Relaxed);
    }

    /// Moves a record from the queue into the pending store (or drops it).
    fn keep_pending(&mut self, line: Bytes) {
        if !self.pending.push(line) {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Bytes>) {
        let mut backoff = RETRY_BACKOFF_MIN;
        let mut retry_at = tokio::time::Instant::now();
        let mut open = true;
        loop {
            if self.pending.len() == 0 {
                if !open {
                    return;
                }
                // Healthy: deliver straight from the queue.
                let Some(first) = rx.recv().await else { return };
                let mut batch = vec![first];
                while batch.len() < self.batch_size {
                    match rx.try_recv() {
                        Ok(line) => batch.push(line),
                        Err(_) => break,
                    }
                }
                match self.post(&batch).await {
                    Ok(()) => self.delivered(batch.len()),
                    Err(e) => {
                        tracing::warn!(error = %e, "audit webhook delivery failed; retrying with backoff");
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        for line in batch {
                            self.keep_pending(line);
                        }
                        self.pending.flush();
                        backoff = RETRY_BACKOFF_MIN;
                        retry_at = tokio::time::Instant::now() + backoff;
                    }
                }
                continue;
            }
            // Pending records: keep draining the queue into the store while waiting to retry.
            tokio::select! {
                line = rx.recv(), if open => match line {
                    Some(line) => {
                        // Take what else is queued too, and write it out in one go.
                        self.keep_pending(line);
                        for _ in 0..SPILL_FILE_RECORDS_MAX {
                            match rx.try_recv() {
                                Ok(line) => self.keep_pending(line),
                                Err(_) => break,
                            }
                        }
                        self.pending.flush();
                    }
                    None => open = false,
                },
                () = tokio::time::sleep_until(retry_at) => {
                    let batch = self.pending.front(self.batch_size);
                    if batch.is_empty() {
                        continue;
                    }
                    match self.post(&batch).await {
                        Ok(()) => {
                            self.pending.pop(batch.len());
                            self.delivered(batch.len());
                            backoff = RETRY_BACKOFF_MIN;
                            retry_at = tokio::time::Instant::now();
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "audit webhook still failing");
                            self.counters.failed.fetch_add(1, Ordering::Relaxed);
                            backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
                            retry_at = tokio::time::Instant::now() + backoff;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A tiny HTTP receiver: answers 200 and keeps each POST body, or 503 while `down`.
    struct Receiver {
        addr: std::net::SocketAddr,
        bodies: Arc<Mutex<Vec<String>>>,
        down: Arc<std::sync::atomic::AtomicBool>,
    }

    async fn receiver() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (b, d) = (bodies.clone(), down.clone());
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let (b, d) = (b.clone(), d.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // Read one request: headers, then Content-Length bytes.
                        let mut chunk = [0u8; 4096];
                        let head_end = loop {
                            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break p + 4;
                            }
                            let n = s.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        while buf.len() < head_end + len {
                            let n = s.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
                        buf.drain(..head_end + len);
                        let status = if d.load(Ordering::SeqCst) {
                            "503 Service Unavailable"
                        } else {
                            b.lock().unwrap().push(body);
                            "200 OK"
                        };
                        let resp = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                        if s.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { addr, bodies, down }
    }

    fn records(r: &Receiver) -> Vec<u64> {
        r.bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.lines().map(str::to_owned).collect::<Vec<_>>())
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(&l).unwrap()["i"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    async fn wait_for(f: impl Fn() -> bool) {
        for _ in 0..1000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not met in 10 s");
    }

    fn config(addr: std::net::SocketAddr, spill: Option<PathBuf>, batch_size: usize) -> WebhookConfig {
        WebhookConfig {
            endpoint: format!("http://{addr}/audit"),
            auth_token: None,
            queue_len: 16,
            batch_size,
            spill_dir: spill,
            spill_bytes_max: 1 << 20,
        }
    }

    fn line(i: u64) -> Bytes {
        Bytes::from(format!("{{\"i\":{i}}}"))
    }

    #[tokio::test]
    async fn delivers_in_order_one_per_post_and_batched() {
        for batch_size in [1, 8] {
            let r = receiver().await;
            let t = WebhookTarget::start(config(r.addr, None, batch_size)).unwrap();
            for i in 0..40 {
                t.enqueue(line(i));
                if i % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            wait_for(|| t.stats().sent + t.stats().dropped == 40).await;
            let got = records(&r);
            let s = t.stats();
            assert_eq!(got.len() as u64, s.sent);
            assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
            if batch_size == 1 {
                assert_eq!(r.bodies.lock().unwrap().len(), got.len());
            }
        }
    }

    #[tokio::test]
    async fn spill_keeps_everything_while_down_and_survives_restart() {
        let r = receiver().await;
        let dir = tempfile::tempdir().unwrap();
        r.down.store(true, Ordering::SeqCst);
        let t = WebhookTarget::start(config(r.addr, Some(dir.path().to_owned()), 1)).unwrap();
        // Far more than the queue holds, paced so the worker can spill them.
        for i in 0..300 {
            t.enqueue(line(i));
            if i % 8 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        wait_for(|| t.stats().failed >= 2).await;
        assert_eq!(t.stats().dropped, 0);
        assert_eq!(t.stats().sent, 0);
        assert!(std::fs::read_dir(dir.path()).unwrap().count() >= 1);

        // A second target over the same spill directory (a restart) sees the backlog too.
        let spilled = Spill::open(dir.path(), 1 << 20).unwrap().n_records;
        assert!(spilled > 0 && spilled <= 300);

        r.down.store(false, Ordering::SeqCst);
        wait_for(|| t.stats().sent == 300).await;
        assert_eq!(records(&r), (0..300).collect::<Vec<_>>());
        assert_eq!(t.stats().queued, 0);
        wait_for(|| std::fs::read_dir(dir.path()).unwrap().count() == 0).await;
    }

    #[tokio::test]
    async fn without_spill_memory_bound_drops_and_counts() {
        let r = receiver().await;
        r.down.store(true, Ordering::SeqCst);
        let t = WebhookTarget::start(config(r.addr, None, 1)).unwrap();
        for i in 0..200 {
            t.enqueue(line(i));
            if i % 8 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        wait_for(|| t.stats().dropped > 0).await;
        r.down.store(false, Ordering::SeqCst);
        wait_for(|| t.stats().queued == 0).await;
        let s = t.stats();
        assert_eq!(s.sent + s.dropped, 200);
        let got = records(&r);
        assert_eq!(got.len() as u64, s.sent);
        assert!(got.windows(2).all(|w| w[0] < w[1]));
    }

    #[tokio::test]
    async fn spill_bound_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(format!("{:020}.ndjson", 7)),
            b"{\"i\":1}\n{\"i\":2}\n{\"i\"",
        )
        .unwrap();
        let mut s = Spill::open(dir.path(), 60).unwrap();
        assert_eq!(s.n_records, 2);
        assert_eq!(s.front(10), vec![line(1), line(2)]);
        // 20 bytes used (the torn line too); each new record takes 8.
        let mut n = 0;
        while s.push(&line(3)).unwrap() {
            n += 1;
        }
        assert_eq!(n, 5);
        s.pop(2).unwrap();
        assert_eq!(s.front(10).len(), 5);
        assert_eq!(s.n_records, 5);
        assert!(!dir.path().join(format!("{:020}.ndjson", 7)).exists());
        assert!(
            WebhookTarget::start(WebhookConfig {
                endpoint: "https://x/".into(),
                ..config("127.0.0.1:1".parse().unwrap(), None, 1)
            })
            .is_err()
        );
    }
}
