//! The one writer of a process: collects concurrent appends into batches and
//! commits each batch in one transaction (group commit), so a durable commit
//! (fsync) is paid once per batch instead of once per command. A request whose
//! caller has gone away is still written: an acknowledged or not, a sent
//! append is never half done.

use crate::telemetry;
use std::sync::Arc;

use cqrs_es::persist::SerializedEvent;
use tokio::sync::{mpsc, oneshot};

use super::{AppendError, LogBackend, StoreError};
use crate::clock::SharedClock;

const MAX_BATCH: usize = 256;

enum Message {
    Append { events: Vec<SerializedEvent>, reply: oneshot::Sender<Result<i64, AppendError>> },
    Stop(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct WriterHandle {
    sender: mpsc::Sender<Message>,
}

impl WriterHandle {
    pub async fn append(&self, events: Vec<SerializedEvent>) -> Result<i64, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.sender.send(Message::Append { events, reply }).await.map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    pub async fn stop(&self) {
        let (done, finished) = oneshot::channel();
        if self.sender.send(Message::Stop(done)).await.is_ok() {
            let _ = finished.await;
        }
    }
}

/// `log` names the log in metrics (`main`, `testmode`).
pub(crate) fn spawn(backend: Arc<dyn LogBackend>, clock: SharedClock, log: &'static str) -> WriterHandle {
    let (sender, mut receiver) = mpsc::channel::<Message>(4 * MAX_BATCH);
    tokio::spawn(async move {
        let mut last_recorded_at = i64::MIN;
        while let Some(first) = receiver.recv().await {
            let mut batch = Vec::new();
            let mut stop = None;
            match first {
                Message::Append { events, reply } => batch.push((events, reply)),
                Message::Stop(done) => stop = Some(done),
            }
            while stop.is_none() && batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(Message::Append { events, reply }) => batch.push((events, reply)),
                    Ok(Message::Stop(done)) => stop = Some(done),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                // Recorded times never run backwards within a process, whatever the wall clock does.
                let recorded_at = clock.now_ms().max(last_recorded_at);
                last_recorded_at = recorded_at;
                let requests: Vec<&[SerializedEvent]> = batch.iter().map(|(events, _)| events.as_slice()).collect();
                let started = std::time::Instant::now();
                let appended = backend.append_batch(&requests, recorded_at).await;
                metrics::histogram!(telemetry::APPEND_DURATION, "log" => log).record(started.elapsed().as_secs_f64());
                metrics::histogram!(telemetry::APPEND_BATCH, "log" => log).record(requests.len() as f64);
                match appended {
                    Ok(results) => {
                        for ((_, reply), result) in batch.into_iter().zip(results) {
                            let _ = reply.send(result.ok_or(AppendError::Conflict));
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, requests = batch.len(), "appending to the log failed");
                        let message = error.to_string();
                        for (_, reply) in batch {
                            let _ = reply.send(Err(AppendError::Store(StoreError::Failed(message.clone()))));
                        }
                    }
                }
            }
            if let Some(done) = stop {
                let _ = done.send(());
                break;
            }
        }
    });
    WriterHandle { sender }
}
