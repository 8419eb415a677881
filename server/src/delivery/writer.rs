//! Group commit for the delivery queue. Storing a send's envelopes and deleting
//! acknowledged ones are the server's hot writes, and with `synchronous = FULL` each
//! transaction waits for the disk. One task takes every such write that is waiting, runs
//! them in a single transaction (a refused send writes nothing, so it does not undo the
//! others; on PostgreSQL each send also has a savepoint) and commits once. A send is answered only after the commit that
//! holds its envelopes, so "stored" still means on disk; under load, many sends share one
//! sync instead of queueing for one each.

use super::queue;
use super::registry::Registry;
use crate::auth::shared_limit::Budget;
use crate::db::Db;
use crate::error::ApiError;
use sotto_core::protocol::{DeliveredEnvelope, OutgoingEnvelope, ServerFrame};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 1024;

type Stored = Result<(i64, Vec<i64>), ApiError>;

enum Job {
    Enqueue {
        org: String,
        sender_user: String,
        sender_device: String,
        visitor: bool,
        envelopes: Vec<OutgoingEnvelope>,
        /// The sender's budget across nodes, counted in this commit (several nodes only).
        budget: Option<Budget>,
        reply: oneshot::Sender<Stored>,
    },
    Ack {
        device_id: String,
        seq: i64,
    },
    Retry {
        user_id: String,
        device_id: String,
        seq: i64,
    },
    /// Answered once every job before it is committed.
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writing task; `registry` is told of deliveries once they are committed.
    pub fn start(db: Db, registry: Arc<Registry>) -> Writer {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(db, registry, rx));
        Writer { jobs }
    }

    /// Stores one send's envelopes (all or none), counting it against `budget` if given;
    /// resolves once they are committed.
    pub async fn enqueue(
        &self,
        org: String,
        sender_user: String,
        sender_device: String,
        visitor: bool,
        envelopes: Vec<OutgoingEnvelope>,
        budget: Option<Budget>,
    ) -> Stored {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Enqueue {
                org,
                sender_user,
                sender_device,
                visitor,
                envelopes,
                budget,
                reply,
            })
            .map_err(|_| ApiError::internal("the queue writer has stopped"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("the queue writer dropped a send"))?
    }

    /// Deletes an acknowledged envelope (only its own device may) and, once that is
    /// committed, tells the sending device it was delivered. Nothing waits for it: a lost
    /// deletion only means the envelope comes again, and clients drop repeats.
    pub fn ack(&self, device_id: String, seq: i64) {
        let _ = self.jobs.send(Job::Ack { device_id, seq });
    }

    /// Waits until every write handed over before this call is committed (or failed).
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.jobs.send(Job::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }

    /// `device_id` (of `user_id`) could not open envelope `seq`: deletes it like an ack,
    /// but instead of "delivered" its sender gets a retry request, queued durably like any
    /// envelope, so it sends the message again on a fresh session.
    pub fn retry(&self, user_id: String, device_id: String, seq: i64) {
        let _ = self.jobs.send(Job::Retry {
            user_id,
            device_id,
            seq,
        });
    }
}

async fn run(db: Db, registry: Arc<Registry>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Flushes write nothing: they are answered once the batch they came with is done.
        let mut flushes = Vec::new();
        batch.retain_mut(|job| match job {
            Job::Flush(done) => {
                let (placeholder, _) = oneshot::channel();
                flushes.push(std::mem::replace(done, placeholder));
                false
            }
            _ => true,
        });
        let (replies, notices) = db
            .call(move |conn| Ok::<_, ApiError>(write(conn, batch)))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e.message, "queue batch failed");
                (Vec::new(), Notices::default())
            });
        let Notices {
            stored,
            delivered,
            woken,
        } = notices;
        for (device, envelope) in stored {
            registry.deliver(&device, envelope);
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
        for (sender_device, seq) in delivered {
            registry.push(&sender_device, &ServerFrame::Delivered { seq });
        }
        for device in woken {
            registry.wake(&device);
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

type Replies = Vec<(oneshot::Sender<Stored>, Stored)>;

/// Who to tell once a batch is committed.
#[derive(Default)]
struct Notices {
    /// Each envelope stored, with the device it is for.
    stored: Vec<(String, DeliveredEnvelope)>,
    /// (sender device, seq) of each envelope acknowledged.
    delivered: Vec<(String, i64)>,
    /// Devices whose queue grew otherwise (retry requests).
    woken: Vec<String>,
}

/// Runs a batch in one transaction. If the commit itself fails, every send in it fails.
fn write(conn: &mut crate::db::Conn, batch: Vec<Job>) -> (Replies, Notices) {
    let mut replies = Vec::new();
    let mut notices = Notices::default();
    let started = std::time::Instant::now();
    let committed = (|| -> Result<(), crate::db::Error> {
        let tx = conn.transaction()?;
        // Every queue this batch writes to, locked up front in one order (see
        // `queue::lock_queues`): the sends' recipients and the senders that retry
        // requests go to.
        if tx.is_postgres() {
            let mut queues: Vec<String> = Vec::new();
            for job in &batch {
                match job {
                    Job::Enqueue { envelopes, .. } => {
                        queues.extend(envelopes.iter().map(|e| e.device_id.clone()))
                    }
                    Job::Retry { device_id, seq, .. } => {
                        queues.extend(queue::sender_of(&tx, device_id, *seq)?)
                    }
                    Job::Ack { .. } | Job::Flush(_) => {}
                }
            }
            queue::lock_queues(&tx, queues.iter().map(String::as_str))?;
        }
        // Senders' budgets across nodes, counted up front in one order too (two nodes'
        // batches can wait for each other's counter of one session, never deadlock; the
        // clean-up sweep skips counters held), so a refusal is known before the send is
        // tried. A send refused later on (a full queue) still counted: it was made. On
        // PostgreSQL each count has a savepoint, so a failed count (a lock timeout) fails
        // that send alone.
        let mut over_budget: Vec<Option<ApiError>> = Vec::new();
        over_budget.resize_with(batch.len(), || None);
        let mut budgets: Vec<(usize, &Budget)> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, job)| match job {
                Job::Enqueue {
                    budget: Some(b), ..
                } => Some((i, b)),
                _ => None,
            })
            .collect();
        budgets.sort_by(|a, b| a.1.key().cmp(b.1.key()));
        for (i, budget) in budgets {
            over_budget[i] = if tx.is_postgres() {
                let savepoint = tx.savepoint()?;
                match budget.take(&savepoint) {
                    Ok(counted) => {
                        savepoint.commit()?;
                        counted.err()
                    }
                    Err(e) => Some(ApiError::from(e)),
                }
            } else {
                budget.take(&tx)?.err()
            };
        }
        for (job, over_budget) in batch.into_iter().zip(over_budget) {
            match job {
                Job::Enqueue {
                    org,
                    sender_user,
                    sender_device,
                    visitor,
                    envelopes,
                    budget: _,
                    reply,
                } => {
                    if let Some(refused) = over_budget {
                        replies.push((reply, Err(refused)));
                        continue;
                    }
                    // A refused send wrote nothing. On SQLite a database error fails the
                    // batch; on PostgreSQL (where a statement can also time out on a lock)
                    // each send keeps a savepoint, so such an error fails that send alone.
                    let savepoint = if tx.is_postgres() {
                        Some(tx.savepoint()?)
                    } else {
                        None
                    };
                    let conn: &crate::db::Conn = savepoint.as_deref().unwrap_or(&tx);
                    let result = match queue::enqueue(
                        conn,
                        &org,
                        &sender_user,
                        &sender_device,
                        visitor,
                        &envelopes,
                    ) {
                        Ok(result) => result,
                        // Dropping the savepoint rolls this send back.
                        Err(e) if savepoint.is_some() => Err(ApiError::from(e)),
                        Err(e) => return Err(e),
                    };
                    match savepoint {
                        Some(sp) if result.is_ok() => sp.commit()?,
                        _ => {}
                    }
                    if let Ok((accepted_at, seqs)) = &result {
                        notices
                            .stored
                            .extend(envelopes.into_iter().zip(seqs).map(|(e, &seq)| {
                                let envelope = DeliveredEnvelope {
                                    seq,
                                    sender_user: sender_user.clone(),
                                    sender_device: sender_device.clone(),
                                    accepted_at: *accepted_at,
                                    payload: e.payload,
                                };
                                (e.device_id, envelope)
                            }));
                    }
                    replies.push((reply, result));
                }
                Job::Flush(_) => {}
                Job::Ack { device_id, seq } => {
                    if let Some(sender) = queue::acknowledge(&tx, &device_id, seq)? {
                        notices.delivered.push((sender, seq));
                    }
                }
                Job::Retry {
                    user_id,
                    device_id,
                    seq,
                } => {
                    if let Some(sender) = queue::ask_again(&tx, &user_id, &device_id, seq)? {
                        notices.woken.push(sender);
                    }
                }
            }
        }
        tx.commit()
    })();
    crate::metrics::metrics()
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    if let Err(e) = committed {
        tracing::error!(error = %e, "queue commit failed");
        notices = Notices::default();
        for (_, result) in replies.iter_mut() {
            *result = Err(ApiError::internal("the queue could not be written"));
        }
    }
    (replies, notices)
}
