//! Received Pulsar messages as C sees them (borrowed during the receive callback), and the
//! opaque message id that ack/nack take back: ledger, entry, partition, batch index, batch
//! size (little-endian, i32::MIN for absent) followed by the topic.
use pulsar::consumer::Message as InMessage;
use pulsar::message::proto::MessageIdData;

use crate::*;

pub struct cb_pulsar_message {
    key: Vec<u8>,
    payload: Vec<u8>,
    id: Vec<u8>,
    publish_time_ms: u64,
    properties: Vec<(String, String)>,
    producer_name: String,
    sequence_id: u64,
    ledger_id: u64,
    entry_id: u64,
    batch_index: i32,
    batch_size: i32,
}

pub(crate) fn to_message(m: &InMessage<Vec<u8>>) -> cb_pulsar_message {
    let md = m.metadata();
    cb_pulsar_message {
        key: md.partition_key.clone().unwrap_or_default().into_bytes(),
        payload: m.payload.data.clone(),
        id: encode_id(&m.topic, m.message_id()),
        publish_time_ms: md.publish_time,
        properties: md.properties.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
        producer_name: md.producer_name.clone(),
        sequence_id: md.sequence_id,
        ledger_id: m.message_id().ledger_id,
        entry_id: m.message_id().entry_id,
        batch_index: m.message_id().batch_index.unwrap_or(-1),
        batch_size: if m.message_id().batch_index.is_some() { md.num_messages_in_batch.unwrap_or(1) } else { -1 },
    }
}

pub(crate) fn encode_id(topic: &str, id: &MessageIdData) -> Vec<u8> {
    let mut v = Vec::with_capacity(32 + topic.len());
    v.extend_from_slice(&id.ledger_id.to_le_bytes());
    v.extend_from_slice(&id.entry_id.to_le_bytes());
    for f in [id.partition, id.batch_index, id.batch_size] {
        v.extend_from_slice(&f.unwrap_or(i32::MIN).to_le_bytes());
    }
    v.extend_from_slice(topic.as_bytes());
    v
}

pub(crate) fn decode_id(b: &[u8]) -> BResult<(String, MessageIdData)> {
    if b.len() < 28 {
        return Err(BErr::new(CB_BAD_ARGUMENT, "not a message id"));
    }
    let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let o = |i: usize| Some(i32::from_le_bytes(b[i..i + 4].try_into().unwrap())).filter(|x| *x != i32::MIN);
    let topic = std::str::from_utf8(&b[28..]).map_err(|_| BErr::new(CB_BAD_ARGUMENT, "not a message id"))?;
    let id = MessageIdData {
        ledger_id: u(0),
        entry_id: u(8),
        partition: o(16),
        batch_index: o(20),
        batch_size: o(24),
        ..Default::default()
    };
    Ok((topic.to_owned(), id))
}

// ---------------------------------------------------------------- messages

#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_message_key(m: *const cb_pulsar_message, out: *mut *const u8, len: *mut usize) {
    put_bytes(&(*m).key, out, len);
}

#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_message_payload(m: *const cb_pulsar_message, out: *mut *const u8, len: *mut usize) {
    put_bytes(&(*m).payload, out, len);
}

#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_message_id(m: *const cb_pulsar_message, out: *mut *const u8, len: *mut usize) {
    put_bytes(&(*m).id, out, len);
}

#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_message_publish_time_ms(m: *const cb_pulsar_message) -> u64 {
    (*m).publish_time_ms
}

/// The producer's name as the broker stored it (borrowed).
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_message_producer(m: *const cb_pulsar_message, out: *mut *const u8, len: *mut usize) {
    put_bytes((*m).producer_name.as_bytes(), out, len);
}

/// The producer's sequence id of the message (the crate numbers each producer's sends from 0).
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_message_sequence_id(m: *const cb_pulsar_message) -> u64 {
    (*m).sequence_id
}

/// The message's position in its topic: ledger, entry, batch index and the number of
/// messages in its batch (both -1: not batched). The crate acks a batched message's whole
/// entry (no batch-index acks), so callers ack an entry once all its messages are done.
#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_message_position(m: *const cb_pulsar_message, ledger: *mut u64, entry: *mut u64, batch_index: *mut i32, batch_size: *mut i32) {
    *ledger = (*m).ledger_id;
    *entry = (*m).entry_id;
    *batch_index = (*m).batch_index;
    *batch_size = (*m).batch_size;
}

#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_message_property_count(m: *const cb_pulsar_message) -> usize {
    (*m).properties.len()
}

#[no_mangle]
pub unsafe extern "C" fn cb_pulsar_message_property(m: *const cb_pulsar_message, i: usize, k: *mut *const u8, kl: *mut usize, v: *mut *const u8, vl: *mut usize) -> i32 {
    match (&*m).properties.get(i) {
        Some((key, value)) => {
            put_bytes(key.as_bytes(), k, kl);
            put_bytes(value.as_bytes(), v, vl);
            0
        }
        None => -2,
    }
}
