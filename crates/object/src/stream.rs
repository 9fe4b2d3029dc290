//! `ObjectStream`: the lazy body of an object being read.
//!
//! Small (inline) objects are decoded before the stream is built and come out as one chunk.
//! Larger ones are read by a task that starts on the first poll, reads and decodes one erasure
//! block at a time and hands it over a channel of [`READ_AHEAD_BLOCKS`] slots, so a slow
//! client holds at most that many blocks in memory and a dropped stream stops the reads.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use strata_drive::Drive;
use strata_erasure::{BLOCK_SIZE_BYTES, Erasure};
use tokio::sync::mpsc;

use crate::background::HealHint;
use crate::error::ObjectError;
use crate::record::PartRecordRef;
use crate::set::read_block;

/// Blocks decoded ahead of the client.
pub const READ_AHEAD_BLOCKS: usize = 2;

/// What a part-data read needs: the coder, the shard sources and the parts to serve.
pub struct ReadPlan {
    /// Memory taken from the budget for this read, released when the read ends.
    pub memory: Option<crate::memory::MemoryPermit>,
    pub erasure: Erasure,
    /// Drive holding each shard index.
    pub sources: Vec<Option<Arc<dyn Drive>>>,
    /// The object's parts, in order.
    pub parts: Vec<PartRecordRef>,
    /// First object byte served.
    pub offset: u64,
    /// Bytes served.
    pub length: u64,
    /// Where to report damage met while reading.
    pub heal: Option<HealSender>,
}

/// Reports a key to the heal queue (at most once per stream).
pub struct HealSender {
    pub tx: mpsc::Sender<HealHint>,
    pub bucket: String,
    pub key: String,
}

enum State {
    Ready(Option<Bytes>),
    Planned(Box<ReadPlan>),
    Running(mpsc::Receiver<Result<Bytes, ObjectError>>),
    /// Bytes from elsewhere (a remote tier), passed through.
    Remote(Pin<Box<dyn Stream<Item = Result<Bytes, ObjectError>> + Send>>),
}

/// The body of an object being read: a stream of chunks, produced lazily.
pub struct ObjectStream {
    state: State,
}

impl ObjectStream {
    /// A body already in memory.
    pub(crate) fn ready(bytes: Bytes) -> Self {
        let chunk = if bytes.is_empty() { None } else { Some(bytes) };
        ObjectStream {
            state: State::Ready(chunk),
        }
    }

    /// A body streamed from elsewhere (a remote tier object).
    pub(crate) fn remote(stream: Pin<Box<dyn Stream<Item = Result<Bytes, ObjectError>> + Send>>) -> Self {
        ObjectStream {
            state: State::Remote(stream),
        }
    }

    /// A body read from shard files when first polled.
    pub(crate) fn planned(plan: ReadPlan) -> Self {
        ObjectStream {
            state: State::Planned(Box::new(plan)),
        }
    }
}

impl std::fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObjectStream")
    }
}

impl Stream for ObjectStream {
    type Item = Result<Bytes, ObjectError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match &mut self.state {
                State::Ready(chunk) => return Poll::Ready(chunk.take().map(Ok)),
                State::Running(rx) => return rx.poll_recv(cx),
                State::Remote(stream) => return stream.as_mut().poll_next(cx),
                State::Planned(_) => {
                    let (tx, rx) = mpsc::channel(READ_AHEAD_BLOCKS);
                    let State::Planned(plan) = std::mem::replace(&mut self.state, State::Running(rx)) else {
                        continue;
                    };
                    tokio::spawn(run(*plan, tx));
                }
            }
        }
    }
}

async fn run(mut plan: ReadPlan, tx: mpsc::Sender<Result<Bytes, ObjectError>>) {
    // Held until the read ends, however it ends.
    let _memory = plan.memory.take();
    let mut heal = plan.heal.take();
    let block_size = BLOCK_SIZE_BYTES as u64;
    let end = plan.offset + plan.length;
    let mut part_start = 0u64;
    for part in &plan.parts {
        let part_end = part_start + part.size;
        if part_end <= plan.offset || part.size == 0 {
            part_start = part_end;
            continue;
        }
        if part_start >= end {
            break;
        }
        let first_in_part = plan.offset.saturating_sub(part_start);
        let last_in_part = (end - part_start).min(part.size); // exclusive
        let mut block_idx = first_in_part / block_size;
        while block_idx * block_size < last_in_part {
            let result = read_block(&plan.erasure, &plan.sources, part, block_idx).await;
            let result = result.map(|(block, damaged)| {
                if damaged && let Some(heal) = heal.take() {
                    let _ = heal.tx.try_send(HealHint {
                        bucket: heal.bucket,
                        key: heal.key,
                    });
                }
                block
            });
            let chunk = result.map(|block| {
                let block_start = block_idx * block_size;
                let from = first_in_part.saturating_sub(block_start) as usize;
                let to = ((last_in_part - block_start) as usize).min(block.len());
                block.slice(from..to)
            });
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
            block_idx += 1;
        }
        part_start = part_end;
    }
}
