//! The sequenced producer: a producer with a connection of its own to its topic's broker that
//! sends each message under the caller's sequence id, so that the broker's deduplication
//! (namespace `deduplication` on) stores a republished message once. The crate's `Producer`
//! numbers sequence ids itself, from 0 per instance, with no way to set them; its wire types
//! and frame codec are public (`pulsar::proto`, `pulsar::message::Codec`), so this speaks the
//! few commands a producer needs of Pulsar's binary protocol (PulsarApi.proto): CONNECT,
//! PRODUCER, SEND, PING/PONG, CLOSE_PRODUCER (docs/bridge.md "Sequenced producer").
//!
//! Contract:
//!  - Created with the broker's last stored sequence id for its name (PRODUCER_SUCCESS's
//!    `last_sequence_id`). A send whose sequence id is not above the highest one stored or
//!    sent completes at once as a duplicate, without a round trip. Sequence ids must be > 0.
//!  - Sends drained from the command queue together (one publish call's burst) go out as one
//!    batch entry of up to batch_max_messages, carrying its first and highest sequence ids;
//!    since every batch starts above what the broker has, a batch is never part duplicate.
//!  - Any failure (connection lost, a SEND_ERROR, a receipt later than send_timeout, the broker
//!    closing the producer, or sends still unacknowledged when the client's stop's grace ends)
//!    fails every pending send and ends the producer: later sends fail with CB_CLOSED. The
//!    caller makes a new one, which learns from the broker what was stored.
//!  - `pulsar://`, or `pulsar+ssl://` through the same TLS connector as the client's own
//!    connections (the same roots, the broker's name or IP verified); non-partitioned topics.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use prost::Message as _;
use pulsar::error::ConnectionError;
use pulsar::message::proto::{self, base_command::Type as CommandType};
use pulsar::message::{Codec, Message as Frame, Payload};
use pulsar::BrokerAddress;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::codec::Framed;

use crate::pulsar_ffi::{perr, stop_cancelled, ProducerCmd};
use crate::*;

const PRODUCER_ID: u64 = 1;
const PRODUCER_REQUEST: u64 = 1;
const CLOSE_REQUEST: u64 = 2;

pub(crate) struct SeqConfig {
    pub topic: String,
    pub name: String,
    pub token: Option<String>,
    pub broker: BrokerAddress,
    pub send_timeout: Duration,
    pub batch_max: usize,
    /// Set for a pulsar+ssl:// client (`tls_connector` in pulsar.rs).
    pub tls: Option<tokio_native_tls::TlsConnector>,
    /// The client's stop: sends not acknowledged by the end of its grace fail.
    pub stop: StopRx,
}

/// The connection's byte stream: TCP, or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Conn = Framed<Box<dyn Io>, Codec>;

fn conn_err(e: ConnectionError) -> BErr {
    perr(&e.into())
}

fn server_err(error: i32, message: String) -> BErr {
    conn_err(ConnectionError::PulsarError(proto::ServerError::try_from(error).ok(), Some(message)))
}

fn command(t: CommandType, fill: impl FnOnce(&mut proto::BaseCommand)) -> Frame {
    let mut command = proto::BaseCommand { r#type: t as i32, ..Default::default() };
    fill(&mut command);
    Frame { command, payload: None }
}

/// The next frame from the broker, answering its pings on the way.
async fn next_frame(conn: &mut Conn) -> BResult<proto::BaseCommand> {
    loop {
        let frame = match conn.next().await {
            None => return Err(BErr::new(CB_CONNECTION, "the broker closed the connection")),
            Some(f) => f.map_err(conn_err)?,
        };
        if frame.command.ping.is_some() {
            conn.send(command(CommandType::Pong, |c| c.pong = Some(proto::CommandPong {}))).await.map_err(conn_err)?;
            continue;
        }
        return Ok(frame.command);
    }
}

/// Connects to the topic's broker and registers the producer. Returns the connection and the
/// broker's last stored sequence id for the name (-1: none).
pub(crate) async fn open(cfg: &SeqConfig) -> BResult<(Conn, i64)> {
    let url = &cfg.broker.url;
    let (tls, port) = match url.scheme() {
        "pulsar" => (None, 6650),
        "pulsar+ssl" => {
            let tls = cfg.tls.as_ref().ok_or_else(|| BErr::new(CB_INVALID, format!("{url} needs a pulsar+ssl:// client")))?;
            (Some(tls), 6651)
        }
        _ => return Err(BErr::new(CB_INVALID, format!("a sequenced producer needs a pulsar:// or pulsar+ssl:// broker, not {url}"))),
    };
    let host = url.host_str().ok_or_else(|| BErr::new(CB_INVALID, format!("no host in {url}")))?;
    let tcp = TcpStream::connect((host, url.port().unwrap_or(port)))
        .await
        .map_err(|e| BErr::new(CB_CONNECTION, format!("connecting to {url}: {e}")))?;
    tcp.set_nodelay(true).map_err(|e| BErr::new(CB_CONNECTION, e.to_string()))?;
    let stream: Box<dyn Io> = match tls {
        None => Box::new(tcp),
        Some(tls) => Box::new(tls.connect(host, tcp).await.map_err(|e| BErr::new(CB_CONNECTION, format!("tls to {url}: {e}")))?),
    };
    let mut conn = Framed::new(stream, Codec);
    let proxy_to = cfg.broker.proxy.then(|| cfg.broker.broker_url.clone());
    conn.send(command(CommandType::Connect, |c| {
        c.connect = Some(proto::CommandConnect {
            client_version: proto::client_version(),
            protocol_version: Some(12),
            auth_method_name: cfg.token.as_ref().map(|_| "token".to_owned()),
            auth_data: cfg.token.as_ref().map(|t| t.clone().into_bytes()),
            proxy_to_broker_url: proxy_to,
            ..Default::default()
        })
    }))
    .await
    .map_err(conn_err)?;
    let reply = next_frame(&mut conn).await?;
    if let Some(e) = reply.error {
        return Err(server_err(e.error, e.message));
    }
    if reply.connected.is_none() {
        return Err(BErr::new(CB_SERVER, format!("expected CONNECTED, got command type {}", reply.r#type)));
    }
    conn.send(command(CommandType::Producer, |c| {
        c.producer = Some(proto::CommandProducer {
            topic: cfg.topic.clone(),
            producer_id: PRODUCER_ID,
            request_id: PRODUCER_REQUEST,
            producer_name: Some(cfg.name.clone()),
            user_provided_producer_name: Some(true),
            ..Default::default()
        })
    }))
    .await
    .map_err(conn_err)?;
    loop {
        let reply = next_frame(&mut conn).await?;
        if let Some(e) = reply.error {
            return Err(server_err(e.error, e.message));
        }
        match reply.producer_success {
            // Not ready: waiting for exclusive access (not asked for here); a later one follows.
            Some(s) if s.producer_ready == Some(false) => continue,
            Some(s) => return Ok((conn, s.last_sequence_id.unwrap_or(-1))),
            None => return Err(BErr::new(CB_SERVER, format!("expected PRODUCER_SUCCESS, got command type {}", reply.r#type))),
        }
    }
}

struct Pending {
    seq: u64,
    done: Completion,
    _permit: OwnedSemaphorePermit,
}

struct InFlight {
    first: u64,
    sends: Vec<Pending>,
    batched: bool,
    deadline: Instant,
}

fn receipt(done: Completion, ledger_id: u64, entry_id: u64, batch_index: i32, seq: u64, duplicate: bool) {
    use crate::pulsar_ffi::cb_pulsar_receipt;
    let mut r = cb_pulsar_receipt { ledger_id, entry_id, partition: -1, batch_index, sequence_id: seq, duplicate: duplicate as i32 };
    done.ok(&mut r as *mut cb_pulsar_receipt as *mut std::ffi::c_void);
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn kv(props: HashMap<String, String>) -> Vec<proto::KeyValue> {
    props.into_iter().map(|(key, value)| proto::KeyValue { key, value }).collect()
}

/// One SEND frame for `msgs` (sequence ids increasing): a plain message when alone, else a
/// batch entry (SingleMessageMetadata-prefixed payloads, as in PulsarApi.proto).
fn send_frame(name: &str, msgs: Vec<(pulsar::producer::Message, u64)>) -> Frame {
    let first = msgs[0].1;
    let last = msgs[msgs.len() - 1].1;
    let mut metadata = proto::MessageMetadata {
        producer_name: name.to_owned(),
        sequence_id: first,
        publish_time: now_ms(),
        highest_sequence_id: Some(last),
        ..Default::default()
    };
    let data = if msgs.len() == 1 {
        let (m, _) = msgs.into_iter().next().expect("one message");
        metadata.partition_key = m.partition_key;
        metadata.properties = kv(m.properties);
        m.payload
    } else {
        metadata.num_messages_in_batch = Some(msgs.len() as i32);
        let mut data = Vec::new();
        for (m, seq) in msgs.iter() {
            let single = proto::SingleMessageMetadata {
                properties: kv(m.properties.clone()),
                partition_key: m.partition_key.clone(),
                payload_size: m.payload.len() as i32,
                sequence_id: Some(*seq),
                ..Default::default()
            };
            data.extend_from_slice(&(single.encoded_len() as u32).to_be_bytes());
            single.encode(&mut data).expect("a Vec grows");
            data.extend_from_slice(&m.payload);
        }
        data
    };
    metadata.uncompressed_size = Some(data.len() as u32);
    let n = metadata.num_messages_in_batch.unwrap_or(1);
    let mut f = command(CommandType::Send, |c| {
        c.send = Some(proto::CommandSend {
            producer_id: PRODUCER_ID,
            sequence_id: first,
            num_messages: Some(n),
            highest_sequence_id: Some(last),
            ..Default::default()
        })
    });
    f.payload = Some(Payload { metadata, data });
    f
}

/// Runs the producer until it fails or is closed (see the contract above).
pub(crate) async fn actor(mut conn: Conn, cfg: SeqConfig, mut last: i64, mut rx: mpsc::UnboundedReceiver<ProducerCmd>) {
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    // Ending: closed (with the close's completion) or the handle freed (without); either way
    // the sends already issued complete first.
    let mut ending = false;
    let mut closing: Option<Completion> = None;
    // Once the client's stop fires: the end of its grace for what is in flight. One wait for
    // the fire, kept across the loop's turns (polled only until it completes).
    let mut grace_end: Option<Instant> = None;
    let stop_fired = fired(cfg.stop.clone());
    tokio::pin!(stop_fired);
    let failure: BErr = loop {
        if ending && inflight.is_empty() {
            let close = command(CommandType::CloseProducer, |c| {
                c.close_producer = Some(proto::CommandCloseProducer {
                    producer_id: PRODUCER_ID,
                    request_id: CLOSE_REQUEST,
                    ..Default::default()
                })
            });
            // Best effort: dropping the connection closes the producer on the broker too.
            let _ = tokio::time::timeout(cfg.send_timeout, conn.send(close)).await;
            if let Some(done) = closing.take() {
                done.ok(std::ptr::null_mut());
            }
            return;
        }
        // The oldest send's receipt is due by its send_timeout, or by the stop's grace's end.
        let deadline = inflight.front().map(|f| grace_end.map_or(f.deadline, |g| g.min(f.deadline)));
        tokio::select! {
            end = &mut stop_fired, if grace_end.is_none() => {
                grace_end = Some(end);
            }
            cmd = rx.recv(), if !ending => {
                let first = match cmd {
                    None => { ending = true; continue; }
                    Some(ProducerCmd::Close(done)) => { ending = true; closing = Some(done); continue; }
                    Some(c) => c,
                };
                // Take what is queued now (one publish call's burst) into one batch.
                let mut batch: Vec<(pulsar::producer::Message, u64)> = Vec::new();
                let mut sends: Vec<Pending> = Vec::new();
                let mut next = Some(first);
                while let Some(cmd) = next.take() {
                    match cmd {
                        ProducerCmd::Send(m, seq, done, permit) => {
                            if seq == 0 {
                                done.err(BErr::new(CB_BAD_ARGUMENT, "a sequenced producer's messages need a sequence id"));
                            } else if (seq as i64) <= last {
                                drop(permit);
                                receipt(done, 0, 0, -1, seq, true);
                            } else {
                                last = seq as i64;
                                batch.push((m, seq));
                                sends.push(Pending { seq, done, _permit: permit });
                            }
                        }
                        ProducerCmd::Close(done) => { ending = true; closing = Some(done); break; }
                    }
                    if batch.len() >= cfg.batch_max.max(1) { break; }
                    next = rx.try_recv().ok();
                }
                if batch.is_empty() { continue; }
                let first = batch[0].1;
                let batched = batch.len() > 1;
                inflight.push_back(InFlight { first, sends, batched, deadline: Instant::now() + cfg.send_timeout });
                if let Err(e) = conn.send(send_frame(&cfg.name, batch)).await {
                    break conn_err(e);
                }
            }
            frame = conn.next() => {
                let c = match frame {
                    None => break BErr::new(CB_CONNECTION, "the broker closed the connection"),
                    Some(Err(e)) => break conn_err(e),
                    Some(Ok(f)) => f.command,
                };
                if c.ping.is_some() {
                    if let Err(e) = conn.send(command(CommandType::Pong, |c| c.pong = Some(proto::CommandPong {}))).await {
                        break conn_err(e);
                    }
                } else if let Some(r) = c.send_receipt {
                    let Some(f) = inflight.pop_front() else {
                        break BErr::new(CB_SERVER, format!("a receipt for sequence id {} with nothing in flight", r.sequence_id));
                    };
                    if r.sequence_id != f.first {
                        let msg = format!("receipt for sequence id {} while {} was the oldest in flight", r.sequence_id, f.first);
                        inflight.push_front(f);
                        break BErr::new(CB_SERVER, msg);
                    }
                    let id = r.message_id.unwrap_or_default();
                    // The broker acknowledges a message it dropped as a duplicate at -1:-1.
                    let dup = id.ledger_id == u64::MAX && id.entry_id == u64::MAX;
                    for (i, p) in f.sends.into_iter().enumerate() {
                        let index = if f.batched && !dup { i as i32 } else { -1 };
                        receipt(p.done, if dup { 0 } else { id.ledger_id }, if dup { 0 } else { id.entry_id }, index, p.seq, dup);
                    }
                } else if let Some(e) = c.send_error {
                    break server_err(e.error, e.message);
                } else if c.close_producer.is_some() {
                    break BErr::new(CB_UNAVAILABLE, "the broker closed the producer (topic unloaded or moved)");
                }
                // Anything else (a CLOSE_PRODUCER's answer, pongs) needs nothing.
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                if grace_end.is_some_and(|g| inflight.front().is_some_and(|f| g < f.deadline)) {
                    break stop_cancelled();
                }
                break BErr::new(CB_TIMEOUT, "send timed out waiting for the broker's receipt");
            }
        }
    };
    // Ended before any caller hears of the failure: one that then asks closed() is told so.
    rx.close();
    for f in inflight {
        for p in f.sends {
            p.done.err(failure.clone());
        }
    }
    if let Some(done) = closing {
        done.ok(std::ptr::null_mut());
    }
    // Sends still queued fail with the failure too, in order, rather than as cancelled.
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            ProducerCmd::Send(_, _, done, _) => done.err(failure.clone()),
            ProducerCmd::Close(done) => done.ok(std::ptr::null_mut()),
        }
    }
}
