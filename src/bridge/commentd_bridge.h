/* commentd's C ABI over ScyllaDB's Rust driver (crate `scylla`) and the Rust `pulsar` crate.
 * The contract (docs/bridge.md):
 *  - Opaque handles; plain C types only. Strings passed in are NUL-terminated UTF-8 (config)
 *    or (pointer, length); everything passed in is copied before the call returns.
 *  - Every asynchronous call takes one completion `cb_done` and invokes it EXACTLY ONCE,
 *    normally from a bridge (tokio worker) thread; argument errors on a NULL handle are
 *    reported on the calling thread before the call returns. The callback must not block
 *    and must not call cb_runtime_free.
 *  - `code` is CB_OK or a CB_* error with a message (msg, msg_len; valid during the callback).
 *  - `result` is NULL on error. On success it is what the call documents: an OWNED handle
 *    (the receiver frees it with the matching *_free) or a BORROWED struct (valid during the
 *    callback only: copy what you keep).
 *  - Cancellation: freeing a session/consumer or the runtime completes every call still
 *    pending on it with CB_CANCELLED. After cb_runtime_free returns, no callback runs.
 *  - Handles are thread-safe: any thread may call them concurrently. Free each handle once,
 *    after its last call has been issued.
 */
#ifndef COMMENTD_BRIDGE_H
#define COMMENTD_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ---- */
enum {
  CB_OK = 0,
  CB_CANCELLED = 1,      /* handle or runtime shut down before completion */
  CB_TIMEOUT = 2,        /* client request timeout, server read timeout, send timeout */
  CB_WRITE_TIMEOUT = 3,  /* server write timeout: the write MAY have been applied */
  CB_UNAVAILABLE = 4,    /* not enough replicas / service not ready */
  CB_OVERLOADED = 5,     /* server overloaded, rate limited, or a bridge queue is full */
  CB_SYNTAX = 6,         /* CQL syntax error */
  CB_INVALID = 7,        /* invalid request: unknown keyspace/table/column, bad types */
  CB_ALREADY_EXISTS = 8, /* DDL on an existing object; fenced Pulsar producer */
  CB_SERVER = 9,         /* other server-side error */
  CB_CONNECTION = 10,    /* no connection / connection broken / no host to try */
  CB_BAD_ARGUMENT = 11,  /* the caller broke the contract (wrong value kind, NULL, not UTF-8) */
  CB_AUTH = 12,          /* authentication or authorization failed */
  CB_CLOSED = 13,        /* the producer/consumer is closed */
  CB_INTERNAL = 14       /* bridge bug or unexpected driver answer */
};

typedef void (*cb_done)(void* user, int32_t code, const char* msg, size_t msg_len, void* result);

/* ---- runtime: one per process ---- */
typedef struct cb_runtime cb_runtime;
/* worker_threads clamped to 1..64. NULL on failure (message in err, NUL-terminated). */
cb_runtime* cb_runtime_new(uint32_t worker_threads, char* err, size_t err_len);
/* Drops every pending task (their callbacks get CB_CANCELLED on bridge threads) and joins the
 * threads (at most ~10 s for blocking work). REQUIRES: not on a bridge thread. */
void cb_runtime_free(cb_runtime* rt);
uint32_t cb_runtime_worker_count(const cb_runtime* rt);

/* ---- stop signal: the caller's, given to the calls that may wait on a server ---- */
typedef struct cb_stop cb_stop;
cb_stop* cb_stop_new(void);
/* What waits on a server to get going (a connect, a producer's creation, a subscribe)
 * completes with CB_CANCELLED, later such calls at once. Sends on producers that exist, in
 * flight or issued later, that the broker has not acknowledged within send_grace_ms of the
 * first fire fail with CB_CANCELLED (a sequenced producer then ends). The first fire wins;
 * thread-safe; never blocks. Freeing it never fires it. */
void cb_stop_fire(const cb_stop* s, uint32_t send_grace_ms);
void cb_stop_free(cb_stop* s);

/* ---- CQL ---- */
enum { /* protocol consistency codes; -1 = the default */
  CB_CONSISTENCY_DEFAULT = -1,
  CB_ANY = 0, CB_ONE = 1, CB_TWO = 2, CB_THREE = 3, CB_QUORUM = 4, CB_ALL = 5,
  CB_LOCAL_QUORUM = 6, CB_EACH_QUORUM = 7, CB_SERIAL = 8, CB_LOCAL_SERIAL = 9, CB_LOCAL_ONE = 10
};

enum { /* value kinds; also what cb_cql_result_column_kind answers */
  CB_VALUE_NULL = 0,
  CB_VALUE_BOOLEAN = 1,   /* i64: 0 or 1 */
  CB_VALUE_INT = 2,       /* i64; any integer kind binds to int/bigint/counter/smallint/tinyint (range-checked) */
  CB_VALUE_BIGINT = 3,
  CB_VALUE_COUNTER = 4,
  CB_VALUE_TEXT = 5,      /* data/len, UTF-8; binds to text or ascii */
  CB_VALUE_BLOB = 6,      /* data/len */
  CB_VALUE_UUID = 7,      /* data: 16 bytes, network order; binds to uuid or timeuuid */
  CB_VALUE_TIMESTAMP = 8, /* i64: milliseconds since the Unix epoch */
  CB_VALUE_SMALLINT = 9,
  CB_VALUE_TINYINT = 10,
  CB_VALUE_TIMEUUID = 11,
  CB_VALUE_ASCII = 12,
  CB_VALUE_OTHER = 100    /* a column type the bridge does not decode */
};

typedef struct cb_value {
  int32_t kind;
  int64_t i64;
  const uint8_t* data;
  size_t len;
} cb_value;

typedef struct cb_cql_config {
  const char* contact_points;   /* "host:port,host:port" (required) */
  const char* local_datacenter; /* NULL/"": no DC preference */
  const char* username;         /* NULL/"": no authentication */
  const char* password;
  const char* keyspace;         /* NULL/"": none */
  uint32_t request_timeout_ms;  /* 0: driver default (30 s) */
  uint32_t connect_timeout_ms;  /* 0: driver default (5 s) */
  int32_t default_consistency;  /* CB_CONSISTENCY_DEFAULT: LOCAL_QUORUM */
  /* TLS (client_encryption_options on the server). tls != 0: every connection is TLS, the
   * node's certificate is verified against tls_ca_file (NULL/"": the system's roots) and must
   * name the node's address (IP in subjectAltName); a failure is CB_CONNECTION with
   * OpenSSL's reason. tls_cert_file and tls_key_file (PEM, both or neither): the client's
   * certificate chain and key, for servers that require client certificates. A file that
   * cannot be read is CB_BAD_ARGUMENT before any connect. */
  int32_t tls;
  const char* tls_ca_file;
  const char* tls_cert_file;
  const char* tls_key_file;
} cb_cql_config;

typedef struct cb_cql_exec_options {
  int32_t consistency;          /* CB_CONSISTENCY_DEFAULT: the session's */
  int32_t serial_consistency;   /* CB_SERIAL, CB_LOCAL_SERIAL or CB_CONSISTENCY_DEFAULT */
  int32_t page_size;            /* > 0: one page of at most this many rows; <= 0: unpaged */
  const uint8_t* paging_state;  /* NULL: first page */
  size_t paging_state_len;
  uint32_t timeout_ms;          /* 0: the session's */
  int32_t idempotent;           /* non-zero: the driver may retry and speculate */
  int64_t timestamp_us;         /* non-zero: the write's timestamp (µs), as USING TIMESTAMP; 0: the server's */
} cb_cql_exec_options;

typedef struct cb_cql_session cb_cql_session;
typedef struct cb_cql_prepared cb_cql_prepared;
typedef struct cb_cql_result cb_cql_result;

/* result: cb_cql_session* (owned) */
void cb_cql_connect(const cb_runtime* rt, const cb_cql_config* cfg, cb_done done, void* user);
/* Pending calls complete with CB_CANCELLED; never blocks. */
void cb_cql_session_free(cb_cql_session* s);
/* result: cb_cql_prepared* (owned; usable with any session of the same cluster) */
void cb_cql_prepare(const cb_cql_session* s, const char* cql, size_t len, cb_done done, void* user);
void cb_cql_prepared_free(cb_cql_prepared* p);
size_t cb_cql_prepared_param_count(const cb_cql_prepared* p);
int32_t cb_cql_prepared_param_kind(const cb_cql_prepared* p, size_t i);
/* Unprepared, no values (DDL; the driver awaits schema agreement after DDL).
 * result: cb_cql_result* (owned) */
void cb_cql_query(const cb_cql_session* s, const char* cql, size_t len, uint32_t timeout_ms, cb_done done,
                  void* user);
/* opts may be NULL (defaults, unpaged, not idempotent). result: cb_cql_result* (owned) */
void cb_cql_execute(const cb_cql_session* s, const cb_cql_prepared* p, const cb_value* values, size_t n_values,
                    const cb_cql_exec_options* opts, cb_done done, void* user);
enum { CB_BATCH_LOGGED = 0, CB_BATCH_UNLOGGED = 1, CB_BATCH_COUNTER = 2 };
/* Statement i binds values[i][0..counts[i]). Paging fields of opts are ignored.
 * result: cb_cql_result* (owned; rows only for conditional batches) */
void cb_cql_batch(const cb_cql_session* s, int32_t batch_type, size_t n, const cb_cql_prepared* const* stmts,
                  const cb_value* const* values, const size_t* counts, const cb_cql_exec_options* opts,
                  cb_done done, void* user);
/* result: NULL */
void cb_cql_await_schema_agreement(const cb_cql_session* s, cb_done done, void* user);
/* The driver's own counters since the session connected; never blocks. */
typedef struct cb_cql_driver_metrics {
  uint64_t requests;             /* requests sent (unpaged and single-page) */
  uint64_t errors;               /* of those, failed after the driver's retries */
  uint64_t retries;              /* times the retry policy decided to retry */
  uint64_t connections;          /* open connections now */
  uint64_t connection_timeouts;
  uint64_t request_timeouts;
} cb_cql_driver_metrics;
void cb_cql_session_metrics(const cb_cql_session* s, cb_cql_driver_metrics* out);

/* Results (not thread-safe to free while reading; reading from several threads is fine). */
enum { CB_GET_OK = 0, CB_GET_NULL = 1, CB_GET_TYPE_MISMATCH = -1, CB_GET_OUT_OF_RANGE = -2 };
void cb_cql_result_free(cb_cql_result* r);
size_t cb_cql_result_row_count(const cb_cql_result* r);
size_t cb_cql_result_column_count(const cb_cql_result* r);
int32_t cb_cql_result_column_name(const cb_cql_result* r, size_t col, const uint8_t** out, size_t* len);
int32_t cb_cql_result_column_kind(const cb_cql_result* r, size_t col);
/* 1 and the state to pass for the next page, or 0 on the last page. Borrowed from r. */
int32_t cb_cql_result_paging_state(const cb_cql_result* r, const uint8_t** out, size_t* len);
/* LWT: 1 applied, 0 not applied (row 0 holds the current values after column 0), -1 not LWT. */
int32_t cb_cql_result_applied(const cb_cql_result* r);
/* int, bigint, counter, smallint, tinyint, timestamp (ms) */
int32_t cb_cql_get_i64(const cb_cql_result* r, size_t row, size_t col, int64_t* out);
int32_t cb_cql_get_bool(const cb_cql_result* r, size_t row, size_t col, int32_t* out);
/* text, ascii, blob; borrowed from r */
int32_t cb_cql_get_bytes(const cb_cql_result* r, size_t row, size_t col, const uint8_t** out, size_t* len);
/* uuid, timeuuid; 16 bytes into out */
int32_t cb_cql_get_uuid(const cb_cql_result* r, size_t row, size_t col, uint8_t* out);

/* ---- Pulsar ---- */
typedef struct cb_pulsar_config {
  const char* service_url;       /* pulsar://host:port or pulsar+ssl://host:port (required) */
  const char* token;             /* NULL/"": no authentication; else JWT token auth */
  uint32_t operation_timeout_ms; /* 0: 30 s. Lookups, producer/consumer creation, resends */
  uint32_t connect_timeout_ms;   /* 0: 10 s. Bounds cb_pulsar_connect (retries included) and
                                    each later connection attempt */
  uint32_t operation_retry_delay_ms; /* 0: 5 s. Wait before retrying a busy/not-ready answer */
  uint32_t operation_max_retries;    /* 0: unlimited (the crate's default). A subscribe to an
                                        exclusive subscription that has its consumer fails
                                        with CB_ALREADY_EXISTS after these retries */
  const char* tls_ca_file; /* NULL/"": with pulsar+ssl://, the system's roots. Else PEM
                              certificates trusted besides them (pulsar+ssl:// only; read
                              before any connect: CB_BAD_ARGUMENT names a file it cannot use).
                              The broker's chain and name (or IP) are always verified */
  const cb_stop* stop;     /* NULL: none. Once fired, this client's connect, producer creations
                              and subscribes in flight complete with CB_CANCELLED, later ones at
                              once (a stopping node need not wait for a broker that is away),
                              and its producers' sends get the fire's grace (cb_stop_fire).
                              Consumers are not affected. Read during the call: it may be freed
                              after it returns */
} cb_pulsar_config;

typedef struct cb_pulsar_producer_config {
  const char* topic;           /* required */
  const char* name;            /* NULL: broker-assigned */
  uint32_t batch_max_messages; /* <= 1: no batching */
  uint32_t batch_max_delay_ms; /* 0: 10 ms (with batching) */
  uint32_t max_pending;        /* sends awaiting receipts; 0: 1000. Beyond: CB_OVERLOADED */
  uint32_t send_timeout_ms;    /* 0: 30 s */
  int32_t sequenced;           /* non-zero: a sequenced producer (name required):
                                  its own connection, each send under the caller's sequence id,
                                  so the broker's deduplication drops a republished message;
                                  batches are the sends queued together (batch_max_delay unused);
                                  any failure ends it (later sends: CB_CLOSED) */
} cb_pulsar_producer_config;

enum { CB_SUB_EXCLUSIVE = 0, CB_SUB_SHARED = 1, CB_SUB_FAILOVER = 2, CB_SUB_KEY_SHARED = 3 };

typedef struct cb_pulsar_consumer_config {
  const char* topic;
  const char* subscription;
  int32_t sub_type;
  const char* consumer_name;             /* NULL: generated */
  uint32_t receiver_queue_size;          /* 0: crate default (1000) */
  uint32_t nack_delay_ms;                /* redelivery delay after cb_pulsar_nack; 0: at once */
  uint32_t ack_timeout_ms;               /* unacked messages redelivered after this; 0: never */
  uint32_t dead_letter_max_redeliveries; /* 0: no dead-letter policy */
  const char* dead_letter_topic;
  int32_t initial_position;              /* for a new subscription: 0 latest, 1 earliest */
} cb_pulsar_consumer_config;

typedef struct cb_pulsar_property {
  const uint8_t* key;
  size_t key_len;
  const uint8_t* value;
  size_t value_len;
} cb_pulsar_property;

typedef struct cb_pulsar_receipt {
  uint64_t ledger_id;
  uint64_t entry_id;
  int32_t partition;   /* -1: not partitioned */
  int32_t batch_index; /* -1: not batched */
  uint64_t sequence_id;
  int32_t duplicate;   /* non-zero: dropped by deduplication (an earlier copy is stored; the
                          position fields are then 0) */
} cb_pulsar_receipt;

typedef struct cb_pulsar_client cb_pulsar_client;
typedef struct cb_pulsar_producer cb_pulsar_producer;
typedef struct cb_pulsar_consumer cb_pulsar_consumer;
typedef struct cb_pulsar_message cb_pulsar_message;

/* result: cb_pulsar_client* (owned) */
void cb_pulsar_connect(const cb_runtime* rt, const cb_pulsar_config* cfg, cb_done done, void* user);
void cb_pulsar_client_free(cb_pulsar_client* c);
/* result: cb_pulsar_producer* (owned) */
void cb_pulsar_producer_new(const cb_pulsar_client* c, const cb_pulsar_producer_config* cfg, cb_done done,
                            void* user);
/* Sends reach the broker in call order. result: const cb_pulsar_receipt* (BORROWED).
 * sequence_id: on a sequenced producer, the message's (> 0, increasing); a send not above the
 * highest the broker stored or this producer sent completes as a duplicate. Elsewhere ignored:
 * the crate numbers sequence ids itself (0, 1, ... per producer instance); see docs/bridge.md. */
void cb_pulsar_send(const cb_pulsar_producer* p, const uint8_t* key, size_t key_len, const uint8_t* payload,
                    size_t payload_len, const cb_pulsar_property* props, size_t n_props, uint64_t sequence_id,
                    cb_done done, void* user);
/* result: NULL */
void cb_pulsar_producer_close(const cb_pulsar_producer* p, cb_done done, void* user);
/* non-zero once the producer has ended (closed; a sequenced one also after a failure or the
 * broker closing it): later sends fail with CB_CLOSED */
int32_t cb_pulsar_producer_is_closed(const cb_pulsar_producer* p);
void cb_pulsar_producer_free(cb_pulsar_producer* p);
/* result: cb_pulsar_consumer* (owned) */
void cb_pulsar_subscribe(const cb_pulsar_client* c, const cb_pulsar_consumer_config* cfg, cb_done done,
                         void* user);
/* result: const cb_pulsar_message* (BORROWED) */
void cb_pulsar_receive(const cb_pulsar_consumer* c, cb_done done, void* user);
/* id: from cb_pulsar_message_id. result: NULL */
void cb_pulsar_ack(const cb_pulsar_consumer* c, const uint8_t* id, size_t len, cb_done done, void* user);
void cb_pulsar_nack(const cb_pulsar_consumer* c, const uint8_t* id, size_t len, cb_done done, void* user);
void cb_pulsar_consumer_close(const cb_pulsar_consumer* c, cb_done done, void* user);
/* Pending receives complete with CB_CANCELLED. */
void cb_pulsar_consumer_free(cb_pulsar_consumer* c);

void cb_pulsar_message_key(const cb_pulsar_message* m, const uint8_t** out, size_t* len);
void cb_pulsar_message_payload(const cb_pulsar_message* m, const uint8_t** out, size_t* len);
/* Opaque id for ack/nack. */
void cb_pulsar_message_id(const cb_pulsar_message* m, const uint8_t** out, size_t* len);
uint64_t cb_pulsar_message_publish_time_ms(const cb_pulsar_message* m);
/* The producer name the broker stored, and that producer's sequence id of the message. */
void cb_pulsar_message_producer(const cb_pulsar_message* m, const uint8_t** out, size_t* len);
uint64_t cb_pulsar_message_sequence_id(const cb_pulsar_message* m);
/* Position in the topic; batch_index and batch_size -1 when not batched. Acking any message
 * of a batch acks its whole entry (the crate has no batch-index acks). */
void cb_pulsar_message_position(const cb_pulsar_message* m, uint64_t* ledger, uint64_t* entry, int32_t* batch_index,
                                int32_t* batch_size);
size_t cb_pulsar_message_property_count(const cb_pulsar_message* m);
int32_t cb_pulsar_message_property(const cb_pulsar_message* m, size_t i, const uint8_t** key, size_t* key_len,
                                   const uint8_t** value, size_t* value_len);

#ifdef __cplusplus
}
#endif
#endif
