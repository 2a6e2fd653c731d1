//! Pulsar through the `pulsar` crate: client, producer (ordered sends, bounded pending, broker
//! receipts), consumer (awaitable receive, ack, nack with delay, dead-letter policy).
//! Each producer and consumer is one actor task that owns the crate object; C calls send it
//! commands over an unbounded channel, so their order is the order of the C calls.
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pulsar::consumer::{DeadLetterPolicy, InitialPosition};
use pulsar::message::proto::command_subscribe::SubType;
use pulsar::message::proto::MessageIdData;
use pulsar::producer::Message as OutMessage;
use pulsar::{Authentication, Consumer, ConsumerOptions, Producer, ProducerOptions, Pulsar, TokioExecutor};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::pulsar_message::{cb_pulsar_message, decode_id, to_message};
use crate::pulsar_seq;
use crate::*;

#[repr(C)]
pub struct cb_pulsar_config {
    pub service_url: *const c_char,
    pub token: *const c_char,
    pub operation_timeout_ms: u32,
    pub connect_timeout_ms: u32,
    pub operation_retry_delay_ms: u32,
    pub operation_max_retries: u32,
    pub tls_ca_file: *const c_char,
    pub stop: *const cb_stop,
}

#[repr(C)]
pub struct cb_pulsar_producer_config {
    pub topic: *const c_char,
    pub name: *const c_char,
    pub batch_max_messages: u32,
    pub batch_max_delay_ms: u32,
    pub max_pending: u32,
    pub send_timeout_ms: u32,
    pub sequenced: i32,
}

#[repr(C)]
pub struct cb_pulsar_consumer_config {
    pub topic: *const c_char,
    pub subscription: *const c_char,
    pub sub_type: i32,
    pub consumer_name: *const c_char,
    pub receiver_queue_size: u32,
    pub nack_delay_ms: u32,
    pub ack_timeout_ms: u32,
    pub dead_letter_max_redeliveries: u32,
    pub dead_letter_topic: *const c_char,
    pub initial_position: i32,
}

#[repr(C)]
pub struct cb_pulsar_property {
    pub key: *const u8,
    pub key_len: usize,
    pub value: *const u8,
    pub value_len: usize,
}

/// Borrowed by the send callback for its duration.
#[repr(C)]
pub struct cb_pulsar_receipt {
    pub ledger_id: u64,
    pub entry_id: u64,
    pub partition: i32,
    pub batch_index: i32,
    pub sequence_id: u64,
    pub duplicate: i32,
}

pub struct cb_pulsar_client {
    pulsar: Pulsar<TokioExecutor>,
    token: Option<String>,
    // pulsar+ssl://: the sequenced producers' TLS, trusting what the crate's connections trust.
    seq_tls: Option<tokio_native_tls::TlsConnector>,
    // Bounds a subscribe (a connection, the operation, and its retries of busy answers) and a
    // consumer's close. The crate's own retries have no overall bound: while the broker is
    // away it reconnects with backoff for about 40 s before a subscribe fails, and the
    // caller's stop waits that long (a Subscription joins the thread waiting on it).
    subscribe_bound: Duration,
    // The config's stop signal (cb_pulsar_config.stop): once it fires, the connect, producer
    // creations and subscribes in flight end now, later ones at once; its producers' sends
    // not acknowledged by the end of its grace fail.
    stop: Arc<watch::Sender<StopState>>,
    handle: Rt,
}

pub(crate) enum ProducerCmd {
    /// A message, its sequence id (used by sequenced producers only), and its completion.
    Send(OutMessage, u64, Completion, tokio::sync::OwnedSemaphorePermit),
    Close(Completion),
}

pub struct cb_pulsar_producer {
    tx: mpsc::UnboundedSender<ProducerCmd>,
    pending: Arc<Semaphore>,
    handle: Rt,
}

enum ConsumerCmd {
    Receive(Completion),
    Ack(MessageIdData, Completion),
    Nack(MessageIdData, Completion),
    Close(Completion),
}

pub struct cb_pulsar_consumer {
    tx: mpsc::UnboundedSender<ConsumerCmd>,
    nack_delay: Duration,
    handle: Rt,
}

/// A send the broker had not acknowledged when the stop's grace ended.
pub(crate) fn stop_cancelled() -> BErr {
    BErr::new(CB_CANCELLED, "the send was not acknowledged within the stop's grace (the client's stop signal fired)")
}

pub(crate) fn perr(e: &pulsar::Error) -> BErr {
    use pulsar::error::{ConnectionError as C, ConsumerError as Co, ProducerError as P};
    use pulsar::Error as E;
    let conn = |c: &C| match c {
        C::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => CB_TIMEOUT,
        C::Io(_) | C::Disconnected | C::SocketAddr(_) | C::Tls(_) => CB_CONNECTION,
        C::SlowDown => CB_OVERLOADED,
        C::PulsarError(Some(pulsar::message::proto::ServerError::AuthenticationError), _)
        | C::PulsarError(Some(pulsar::message::proto::ServerError::AuthorizationError), _) => CB_AUTH,
        C::PulsarError(Some(pulsar::message::proto::ServerError::ProducerBlockedQuotaExceededError), _)
        | C::PulsarError(Some(pulsar::message::proto::ServerError::ProducerBlockedQuotaExceededException), _) => {
            CB_OVERLOADED
        }
        // Broker-side conditions that pass (a bookie down: "not enough non-faulty bookies"
        // is a PersistenceError; a metadata store hiccup; a producer name still held by
        // the previous connection): retried by the callers like a connection loss.
        C::PulsarError(Some(pulsar::message::proto::ServerError::ServiceNotReady), _)
        | C::PulsarError(Some(pulsar::message::proto::ServerError::PersistenceError), _)
        | C::PulsarError(Some(pulsar::message::proto::ServerError::MetadataError), _)
        | C::PulsarError(Some(pulsar::message::proto::ServerError::ProducerBusy), _) => CB_UNAVAILABLE,
        C::PulsarError(Some(pulsar::message::proto::ServerError::TooManyRequests), _) => CB_OVERLOADED,
        C::PulsarError(Some(pulsar::message::proto::ServerError::InvalidTopicName), _) => CB_INVALID,
        // An exclusive subscription already has its consumer (after the crate's retries).
        C::PulsarError(Some(pulsar::message::proto::ServerError::ConsumerBusy), _) => CB_ALREADY_EXISTS,
        _ => CB_SERVER,
    };
    let code = match e {
        E::Connection(c) => conn(c),
        E::Producer(P::Connection(c)) | E::Consumer(Co::Connection(c)) => conn(c),
        E::Producer(P::Closed) | E::Consumer(Co::Closed) => CB_CLOSED,
        E::Producer(P::Fenced) => CB_CONFLICT_FENCED,
        E::Consumer(Co::ChannelFull) => CB_OVERLOADED,
        E::ServiceDiscovery(_) => CB_CONNECTION,
        E::Authentication(_) => CB_AUTH,
        _ => CB_SERVER,
    };
    let msg = e.to_string();
    // The crate reports an expired send (operation timeout) as a custom/connection error.
    let code = if msg.contains("timed out") || msg.contains("timeout") { CB_TIMEOUT } else { code };
    BErr::new(code, msg)
}

/// A fenced producer (another producer took the topic exclusively) is a conflict.
const CB_CONFLICT_FENCED: i32 = CB_ALREADY_EXISTS;

fn ms(v: u32, default_ms: u64) -> Duration {
    Duration::from_millis(if v == 0 { default_ms } else { v as u64 })
}

// ---------------------------------------------------------------- client

/// What a pulsar+ssl:// client trusts: the system's roots, and the certificates of `ca_file`
/// (PEM) besides them, as the crate does (it adds them to native-tls's roots). Read and
/// checked before any connect, so a file that cannot be used fails with its path. None for a
/// pulsar:// url, which takes no CA file.
type TlsRoots = (Option<Vec<u8>>, Vec<native_tls::Certificate>);

fn tls_roots(url: &str, ca_file: Option<String>) -> BResult<Option<TlsRoots>> {
    if !url.starts_with("pulsar+ssl://") {
        return match ca_file {
            Some(_) => Err(BErr::new(CB_BAD_ARGUMENT, format!("tls: a ca_file needs a pulsar+ssl:// url, not {url}"))),
            None => Ok(None),
        };
    }
    let Some(path) = ca_file else { return Ok(Some((None, vec![]))) };
    let bad = |why: String| BErr::new(CB_BAD_ARGUMENT, format!("tls: ca_file {path}: {why}"));
    let pem = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
    let certs = openssl::x509::X509::stack_from_pem(&pem).map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    let roots = certs
        .iter()
        .map(|c| c.to_der().ok().and_then(|der| native_tls::Certificate::from_der(&der).ok()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("a certificate native-tls cannot take".into()))?;
    Ok(Some((Some(pem), roots)))
}

/// The crate reports a failed TLS handshake as "fatal error when connecting", without
/// OpenSSL's reason; a connect that failed so gets one handshake of our own with the same
/// roots (within 2 s), and its reason ("certificate verify failed") is added to the error,
/// for the operator.
async fn with_tls_reason(e: BErr, url: &str, tls: &tokio_native_tls::TlsConnector) -> BErr {
    let Some(addr) = url.strip_prefix("pulsar+ssl://").map(|a| a.trim_end_matches('/').to_owned()) else { return e };
    let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h).to_owned();
    let probe = async {
        let tcp = tokio::net::TcpStream::connect(&addr).await.ok()?;
        tls.connect(&host, tcp).await.err()
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Some(reason)) => BErr::new(e.code, format!("{} (tls: {reason})", e.msg)),
        _ => e,
    }
}

/// The connector the crate builds for its own pulsar+ssl:// connections (pulsar's
/// connection.rs): the roots added, hostname and chain verified.
fn tls_connector(roots: Vec<native_tls::Certificate>) -> BResult<tokio_native_tls::TlsConnector> {
    let mut b = native_tls::TlsConnector::builder();
    for root in roots {
        b.add_root_certificate(root);
    }
    let c = b.build().map_err(|e| BErr::new(CB_INTERNAL, format!("tls: cannot make a connector: {e}")))?;
    Ok(tokio_native_tls::TlsConnector::from(c))
}

/// Result: cb_pulsar_client* (owned). The crate reconnects by itself (backoff from
/// connect_timeout; operations retry until operation_timeout).
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_connect(rt: *const cb_runtime, cfg: *const cb_pulsar_config, done: cb_done, user: *mut c_void) {
    let done = Completion::new(done, user);
    if rt.is_null() || cfg.is_null() {
        return done.err(BErr::new(CB_BAD_ARGUMENT, "runtime and config are required"));
    }
    let handle = (*rt).handle().clone();
    let c = &*cfg;
    let parsed = (|| -> BResult<_> {
        let url = req_str(c.service_url, "service_url")?;
        let tls = tls_roots(&url, opt_str(c.tls_ca_file)?)?;
        Ok((url, opt_str(c.token)?, c.operation_timeout_ms, c.connect_timeout_ms, tls))
    })();
    let retry_delay = ms(c.operation_retry_delay_ms, 5_000);
    let max_retries = if c.operation_max_retries == 0 { None } else { Some(c.operation_max_retries) };
    let h2 = handle.clone();
    let stop = cb_stop::shared(c.stop);
    spawn_op(&handle, Some(stop.subscribe()), done, async move {
        let (url, token, op_ms, conn_ms, tls) = parsed?;
        let subscribe_bound = ms(conn_ms, 10_000) + ms(op_ms, 30_000) + retry_delay * max_retries.unwrap_or(0);
        let mut b = Pulsar::builder(url.clone(), TokioExecutor)
            .with_operation_retry_options(pulsar::OperationRetryOptions {
                operation_timeout: ms(op_ms, 30_000),
                retry_delay,
                max_retries,
            })
            .with_connection_retry_options(pulsar::ConnectionRetryOptions {
                connection_timeout: ms(conn_ms, 10_000),
                ..Default::default()
            });
        if let Some(t) = &token {
            b = b.with_auth(Authentication { name: "token".into(), data: t.clone().into_bytes() });
        }
        let seq_tls = match tls {
            None => None,
            Some((pem, roots)) => {
                if let Some(pem) = pem {
                    b = b.with_certificate_chain(pem);
                }
                Some(tls_connector(roots)?)
            }
        };
        // The crate retries a refused connection with backoff for a long time (about 40 s);
        // connect_timeout bounds the whole connect.
        let built = tokio::time::timeout(ms(conn_ms, 10_000), b.build())
            .await
            .map_err(|_| BErr::new(CB_TIMEOUT, "could not connect to Pulsar within connect_timeout"))
            .and_then(|r| r.map_err(|e| perr(&e)));
        let pulsar = match (built, &seq_tls) {
            (Ok(p), _) => p,
            // Not after a timeout: the connect has had its time (and a TLS failure ends fast).
            (Err(e), Some(tls)) if e.code != CB_TIMEOUT => return Err(with_tls_reason(e, &url, tls).await),
            (Err(e), _) => return Err(e),
        };
        let c = cb_pulsar_client { pulsar, token, seq_tls, subscribe_bound, stop, handle: h2 };
        Ok(Out::Owned(Box::into_raw(Box::new(c)) as *mut c_void))
    });
}

/// Producers and consumers keep working after the client handle is freed (they share its
/// connections); free them to close them.
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_client_free(c: *mut cb_pulsar_client) {
    if !c.is_null() {
        let c = Box::from_raw(c);
        let h = c.handle.clone();
        drop(h.spawn(async move { drop(c) }));
    }
}

// ---------------------------------------------------------------- producer

/// Result: cb_pulsar_producer* (owned).
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_producer_new(
    c: *const cb_pulsar_client,
    cfg: *const cb_pulsar_producer_config,
    done: cb_done,
    user: *mut c_void,
) {
    let done = Completion::new(done, user);
    if c.is_null() || cfg.is_null() {
        return done.err(BErr::new(CB_BAD_ARGUMENT, "client and config are required"));
    }
    let client = &*c;
    let cfg = &*cfg;
    let parsed = (|| -> BResult<_> {
        Ok((
            req_str(cfg.topic, "topic")?,
            opt_str(cfg.name)?,
            cfg.batch_max_messages,
            cfg.batch_max_delay_ms,
            cfg.max_pending,
            cfg.send_timeout_ms,
            cfg.sequenced != 0,
        ))
    })();
    let pulsar = client.pulsar.clone();
    let token = client.token.clone();
    let tls = client.seq_tls.clone();
    let handle = client.handle.clone();
    let stop = client.stop.subscribe();
    spawn_op(&client.handle, Some(client.stop.subscribe()), done, async move {
        let (topic, name, batch, delay_ms, max_pending, send_ms, sequenced) = parsed?;
        let pending = Arc::new(Semaphore::new(if max_pending == 0 { 1000 } else { max_pending as usize }));
        if sequenced {
            let name = name.ok_or_else(|| BErr::new(CB_BAD_ARGUMENT, "a sequenced producer needs a name"))?;
            let send_timeout = ms(send_ms, 30_000);
            let opened = tokio::time::timeout(send_timeout, async {
                let broker = pulsar.lookup_topic(topic.clone()).await.map_err(|e| perr(&e))?;
                let cfg = pulsar_seq::SeqConfig { topic, name, token, broker, send_timeout, batch_max: batch.max(1) as usize, tls, stop };
                let (conn, last) = pulsar_seq::open(&cfg).await?;
                Ok::<_, BErr>((conn, cfg, last))
            })
            .await
            .map_err(|_| BErr::new(CB_TIMEOUT, "could not create the producer within send_timeout"))??;
            let (conn, cfg, last) = opened;
            let (tx, rx) = mpsc::unbounded_channel();
            handle.spawn(pulsar_seq::actor(conn, cfg, last, rx));
            return Ok(Out::Owned(Box::into_raw(Box::new(cb_pulsar_producer { tx, pending, handle })) as *mut c_void));
        }
        // Backpressure, not failure, when the connection's send queue is full: a failed
        // send in the middle of a burst would reorder the burst (the caller bounds pending).
        let mut options = ProducerOptions { block_queue_if_full: true, ..Default::default() };
        if batch > 1 {
            options.batch_size = Some(batch);
            options.batch_timeout = Some(ms(delay_ms, 10));
        }
        let mut b = pulsar.producer().with_topic(topic).with_options(options);
        if let Some(n) = name {
            b = b.with_name(n);
        }
        // Bounded like a send: with the broker away the crate would retry the lookup for long.
        let producer = tokio::time::timeout(ms(send_ms, 30_000), b.build())
            .await
            .map_err(|_| BErr::new(CB_TIMEOUT, "could not create the producer within send_timeout"))?
            .map_err(|e| perr(&e))?;
        let (tx, rx) = mpsc::unbounded_channel();
        handle.spawn(producer_actor(producer, rx, ms(send_ms, 30_000), stop));
        Ok(Out::Owned(Box::into_raw(Box::new(cb_pulsar_producer { tx, pending, handle })) as *mut c_void))
    });
}

async fn producer_actor(
    mut p: Producer<TokioExecutor>,
    mut rx: mpsc::UnboundedReceiver<ProducerCmd>,
    send_timeout: Duration,
    stop: StopRx,
) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            ProducerCmd::Send(msg, _, done, permit) => {
                // Queueing waits while the connection's queue is full (block_queue_if_full):
                // a broker that stopped reading holds it until the stop's grace is over.
                let queued = tokio::select! {
                    r = p.send_non_blocking(msg) => r.map_err(|e| perr(&e)),
                    _ = grace_over(stop.clone()) => Err(stop_cancelled()),
                };
                match queued {
                    Err(err) => {
                        // The sends queued behind this one fail with it at once: each would
                        // otherwise wait out its own operation timeout in turn (a hang of
                        // n x timeout with the broker away), and failing them keeps call order.
                        done.err(err.clone());
                        drop(permit);
                        loop {
                            match rx.try_recv() {
                                Ok(ProducerCmd::Send(_, _, d, _)) => d.err(err.clone()),
                                Ok(ProducerCmd::Close(d)) => return close_producer(&mut p, d, stop).await,
                                Err(_) => break,
                            }
                        }
                    }
                    Ok(fut) => {
                        let stop = stop.clone();
                        tokio::spawn(async move {
                            let result = tokio::select! {
                                r = tokio::time::timeout(send_timeout, fut) => match r {
                                    Err(_) => Err(BErr::new(CB_TIMEOUT, "send timed out waiting for the broker's receipt")),
                                    Ok(r) => r.map_err(|e| perr(&e)),
                                },
                                _ = grace_over(stop) => Err(stop_cancelled()),
                            };
                            // The slot is free before the caller hears back, so a caller that
                            // waited for its receipts may send max_pending more at once.
                            drop(permit);
                            match result {
                                Err(e) => done.err(e),
                                Ok(r) => {
                                    let id = r.message_id.unwrap_or_default();
                                    let mut receipt = cb_pulsar_receipt {
                                        ledger_id: id.ledger_id,
                                        entry_id: id.entry_id,
                                        partition: id.partition.unwrap_or(-1),
                                        batch_index: id.batch_index.unwrap_or(-1),
                                        sequence_id: r.sequence_id,
                                        duplicate: 0,
                                    };
                                    done.ok(&mut receipt as *mut cb_pulsar_receipt as *mut c_void);
                                }
                            }
                        });
                    }
                }
            }
            ProducerCmd::Close(done) => return close_producer(&mut p, done, stop).await,
        }
    }
    // Remaining commands are dropped with `rx`: their completions report CB_CANCELLED.
}

/// Closes the producer. With the broker away the crate's close waits out its operation
/// timeout: a fired stop ends it after the grace, as it does the sends.
async fn close_producer(p: &mut Producer<TokioExecutor>, done: Completion, stop: StopRx) {
    let closed = tokio::select! {
        r = p.close() => r.map_err(|e| perr(&e)),
        _ = grace_over(stop) => Err(stop_cancelled()),
    };
    match closed {
        Ok(()) => done.ok(std::ptr::null_mut()),
        Err(e) => done.err(e),
    }
}

/// Sends one message; completes with a borrowed cb_pulsar_receipt* once the broker has
/// persisted it. Sends on one producer reach the broker in call order. Fails at once with
/// CB_OVERLOADED when max_pending sends are awaiting receipts. Key and payload are copied.
/// `sequence_id`: the message's sequence id on a sequenced producer (> 0); ignored otherwise.
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_send(
    p: *const cb_pulsar_producer,
    key: *const u8,
    key_len: usize,
    payload: *const u8,
    payload_len: usize,
    props: *const cb_pulsar_property,
    n_props: usize,
    sequence_id: u64,
    done: cb_done,
    user: *mut c_void,
) {
    let done = Completion::new(done, user);
    if p.is_null() {
        return done.err(BErr::new(CB_BAD_ARGUMENT, "producer is NULL"));
    }
    let p = &*p;
    let done = done.on(&p.handle);
    let built = (|| -> BResult<OutMessage> {
        let mut properties = HashMap::new();
        for i in 0..n_props {
            let kv = &*props.add(i);
            let k = std::str::from_utf8(bytes(kv.key, kv.key_len)).map_err(|_| BErr::new(CB_BAD_ARGUMENT, "property key is not UTF-8"))?;
            let v = std::str::from_utf8(bytes(kv.value, kv.value_len)).map_err(|_| BErr::new(CB_BAD_ARGUMENT, "property value is not UTF-8"))?;
            properties.insert(k.to_owned(), v.to_owned());
        }
        let key = if key_len == 0 {
            None
        } else {
            Some(String::from_utf8(bytes(key, key_len).to_vec()).map_err(|_| BErr::new(CB_BAD_ARGUMENT, "key is not UTF-8"))?)
        };
        Ok(OutMessage { payload: bytes(payload, payload_len).to_vec(), properties, partition_key: key, ..Default::default() })
    })();
    let msg = match built {
        Ok(m) => m,
        Err(e) => return spawn_op(&p.handle, None, done, async move { Err(e) }),
    };
    let permit = match p.pending.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            return spawn_op(&p.handle, None, done, async {
                Err(BErr::new(CB_OVERLOADED, "producer has max_pending sends awaiting receipts"))
            })
        }
    };
    if let Err(mpsc::error::SendError(ProducerCmd::Send(_, _, done, _))) = p.tx.send(ProducerCmd::Send(msg, sequence_id, done, permit)) {
        spawn_op(&p.handle, None, done, async { Err(BErr::new(CB_CLOSED, "producer is closed")) });
    }
}

/// Flushes and closes the producer. Result: NULL. Sends issued after this are CB_CANCELLED.
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_producer_close(p: *const cb_pulsar_producer, done: cb_done, user: *mut c_void) {
    let done = Completion::new(done, user).on(&(*p).handle);
    if let Err(mpsc::error::SendError(ProducerCmd::Close(done))) = (*p).tx.send(ProducerCmd::Close(done)) {
        spawn_op(&(*p).handle, None, done, async { Ok(Out::Unit) });
    }
}

/// Non-zero once the producer has ended (closed, or a sequenced producer after a failure or
/// the broker closing it): every later send fails with CB_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_producer_is_closed(p: *const cb_pulsar_producer) -> i32 {
    if p.is_null() {
        return 1;
    }
    (*p).tx.is_closed() as i32
}

/// Frees the handle. Sends already issued still complete; the producer closes when its
/// queue drains.
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_producer_free(p: *mut cb_pulsar_producer) {
    if !p.is_null() {
        drop(Box::from_raw(p));
    }
}

// ---------------------------------------------------------------- consumer

/// Result: cb_pulsar_consumer* (owned). sub_type: 0 Exclusive, 1 Shared, 2 Failover, 3 Key_Shared.
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_subscribe(
    c: *const cb_pulsar_client,
    cfg: *const cb_pulsar_consumer_config,
    done: cb_done,
    user: *mut c_void,
) {
    let done = Completion::new(done, user);
    if c.is_null() || cfg.is_null() {
        return done.err(BErr::new(CB_BAD_ARGUMENT, "client and config are required"));
    }
    let client = &*c;
    let cfg = &*cfg;
    let parsed = (|| -> BResult<_> {
        let sub_type = match cfg.sub_type {
            0 => SubType::Exclusive,
            1 => SubType::Shared,
            2 => SubType::Failover,
            3 => SubType::KeyShared,
            t => return Err(BErr::new(CB_BAD_ARGUMENT, format!("unknown subscription type {t}"))),
        };
        let dlq = match (cfg.dead_letter_max_redeliveries, opt_str(cfg.dead_letter_topic)?) {
            (0, _) => None,
            (n, Some(t)) => Some(DeadLetterPolicy { max_redeliver_count: n as usize, dead_letter_topic: t }),
            (_, None) => return Err(BErr::new(CB_BAD_ARGUMENT, "dead_letter_topic is required with max redeliveries")),
        };
        Ok((
            req_str(cfg.topic, "topic")?,
            req_str(cfg.subscription, "subscription")?,
            sub_type,
            opt_str(cfg.consumer_name)?,
            cfg.receiver_queue_size,
            cfg.ack_timeout_ms,
            dlq,
            match cfg.initial_position {
                0 => InitialPosition::Latest,
                1 => InitialPosition::Earliest,
                p => return Err(BErr::new(CB_BAD_ARGUMENT, format!("unknown initial position {p}"))),
            },
        ))
    })();
    let nack_delay = Duration::from_millis(cfg.nack_delay_ms as u64);
    let bound = client.subscribe_bound;
    let stopped = client.stop.subscribe();
    let pulsar = client.pulsar.clone();
    let handle = client.handle.clone();
    spawn_op(&client.handle, None, done, async move {
        let (topic, sub, sub_type, name, queue, ack_timeout_ms, dlq, initial) = parsed?;
        let mut b = pulsar
            .consumer()
            .with_topic(topic)
            .with_subscription(sub)
            .with_subscription_type(sub_type)
            .with_options(ConsumerOptions::default().with_initial_position(initial));
        if let Some(n) = name {
            b = b.with_consumer_name(n);
        }
        if queue > 0 {
            b = b.with_batch_size(queue);
        }
        if ack_timeout_ms > 0 {
            b = b.with_unacked_message_resend_delay(Some(Duration::from_millis(ack_timeout_ms as u64)));
        }
        if let Some(d) = dlq {
            b = b.with_dead_letter_policy(d);
        }
        // The build runs as a task of its own: past the bound (or when cancelled) the caller
        // gets its answer, and the build goes on behind it. A broker that grants it late would
        // otherwise keep a consumer nobody reads (on Key_Shared, holding its share of the
        // keys); it is closed instead.
        let mut build = handle.spawn(async move { b.build().await });
        let outcome = tokio::select! {
            r = tokio::time::timeout(bound, &mut build) => Some(r),
            _ = fired(stopped) => None,
        };
        let was_cancelled = outcome.is_none();
        let consumer: Consumer<Vec<u8>, TokioExecutor> = match outcome {
            Some(Ok(Ok(built))) => built.map_err(|e| perr(&e))?,
            Some(Ok(Err(_))) => return Err(BErr::new(CB_INTERNAL, "the subscribe task failed")),
            Some(Err(_)) | None => {
                handle.spawn(async move {
                    if let Ok(Ok(mut late)) = build.await {
                        let _ = tokio::time::timeout(bound, late.close()).await;
                    }
                });
                return Err(if was_cancelled {
                    BErr::new(CB_CANCELLED, "the subscribe was cancelled: the client's stop signal fired")
                } else {
                    BErr::new(CB_TIMEOUT, "could not subscribe within the client's connect and operation timeouts")
                });
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        handle.spawn(consumer_actor(consumer, rx, bound));
        Ok(Out::Owned(Box::into_raw(Box::new(cb_pulsar_consumer { tx, nack_delay, handle })) as *mut c_void))
    });
}

async fn consumer_actor(mut c: Consumer<Vec<u8>, TokioExecutor>, mut rx: mpsc::UnboundedReceiver<ConsumerCmd>, bound: Duration) {
    let mut waiting: VecDeque<Completion> = VecDeque::new();
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => break,
                Some(ConsumerCmd::Receive(done)) => waiting.push_back(done),
                Some(ConsumerCmd::Ack(id, done)) => {
                    let topic = c.topics().into_iter().next().unwrap_or_default();
                    match c.ack_with_id(&topic, id).await {
                        Ok(()) => done.ok(std::ptr::null_mut()),
                        Err(e) => done.err(perr(&e.into())),
                    }
                }
                Some(ConsumerCmd::Nack(id, done)) => {
                    let topic = c.topics().into_iter().next().unwrap_or_default();
                    match c.nack_with_id(&topic, id).await {
                        Ok(()) => done.ok(std::ptr::null_mut()),
                        Err(e) => done.err(perr(&e.into())),
                    }
                }
                Some(ConsumerCmd::Close(done)) => {
                    // Pending receives end first (CB_CANCELLED): a close waiting on a broker that
                    // went away must not hold them, and it is bounded like a subscribe.
                    waiting.clear();
                    match tokio::time::timeout(bound, c.close()).await {
                        Ok(Ok(())) => done.ok(std::ptr::null_mut()),
                        Ok(Err(e)) => done.err(perr(&e)),
                        Err(_) => done.err(BErr::new(CB_TIMEOUT, "the broker did not confirm the consumer's close in time")),
                    }
                    break;
                }
            },
            // Stream::next is cancel-safe: a message is never lost when the other arm wins.
            m = c.next(), if !waiting.is_empty() => {
                let done = waiting.pop_front().expect("guarded by the arm's condition");
                match m {
                    None => { done.err(BErr::new(CB_CLOSED, "consumer stream ended")); break; }
                    Some(Err(e)) => done.err(perr(&e)),
                    Some(Ok(msg)) => {
                        let mut out = to_message(&msg);
                        done.ok(&mut out as *mut cb_pulsar_message as *mut c_void);
                        // `out` was borrowed by the callback only; C copies what it keeps.
                    }
                }
            }
        }
    }
    // Pending receives are dropped with `waiting`: CB_CANCELLED.
}

fn consumer_cmd(c: *const cb_pulsar_consumer, done: Completion, f: impl FnOnce(Completion) -> ConsumerCmd) {
    if c.is_null() {
        return done.err(BErr::new(CB_BAD_ARGUMENT, "consumer is NULL"));
    }
    // SAFETY: the caller keeps the consumer alive for this call.
    let c = unsafe { &*c };
    let done = done.on(&c.handle);
    if let Err(mpsc::error::SendError(cmd)) = c.tx.send(f(done)) {
        let done = match cmd {
            ConsumerCmd::Receive(d) | ConsumerCmd::Ack(_, d) | ConsumerCmd::Nack(_, d) | ConsumerCmd::Close(d) => d,
        };
        spawn_op(&c.handle, None, done, async { Err(BErr::new(CB_CLOSED, "consumer is closed")) });
    }
}

/// Completes with a BORROWED cb_pulsar_message* (valid during the callback only).
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_receive(c: *const cb_pulsar_consumer, done: cb_done, user: *mut c_void) {
    consumer_cmd(c, Completion::new(done, user), ConsumerCmd::Receive);
}

/// `id` as given by cb_pulsar_message_id. Result: NULL.
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_ack(c: *const cb_pulsar_consumer, id: *const u8, len: usize, done: cb_done, user: *mut c_void) {
    let done = Completion::new(done, user);
    match decode_id(bytes(id, len)) {
        Ok((_, id)) => consumer_cmd(c, done, |d| ConsumerCmd::Ack(id, d)),
        Err(e) => done.err(e),
    }
}

/// Asks for redelivery after the consumer's nack_delay_ms. Completes (NULL) once the request
/// is handed to the broker.
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_nack(c: *const cb_pulsar_consumer, id: *const u8, len: usize, done: cb_done, user: *mut c_void) {
    let done = Completion::new(done, user);
    let id = match decode_id(bytes(id, len)) {
        Ok((_, id)) => id,
        Err(e) => return done.err(e),
    };
    if c.is_null() {
        return done.err(BErr::new(CB_BAD_ARGUMENT, "consumer is NULL"));
    }
    let cons = &*c;
    let done = done.on(&cons.handle);
    if cons.nack_delay.is_zero() {
        return consumer_cmd(c, done, |d| ConsumerCmd::Nack(id, d));
    }
    // The crate redelivers a nack at once; the delay is ours.
    let tx = cons.tx.clone();
    let delay = cons.nack_delay;
    cons.handle.spawn(async move {
        tokio::time::sleep(delay).await;
        if let Err(mpsc::error::SendError(ConsumerCmd::Nack(_, d))) = tx.send(ConsumerCmd::Nack(id, done)) {
            d.err(BErr::new(CB_CLOSED, "consumer is closed"));
        }
    });
}

#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_consumer_close(c: *const cb_pulsar_consumer, done: cb_done, user: *mut c_void) {
    consumer_cmd(c, Completion::new(done, user), ConsumerCmd::Close);
}

/// Frees the handle; pending receives complete with CB_CANCELLED once the actor stops.
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_consumer_free(c: *mut cb_pulsar_consumer) {
    if !c.is_null() {
        drop(Box::from_raw(c));
    }
}
