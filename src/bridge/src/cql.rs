//! CQL through ScyllaDB's Rust driver: sessions, prepared statements, typed values, paging,
//! batches, LWT results and typed errors. See commentd_bridge.h for the C contract.
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use openssl::error::ErrorStack;
use openssl::ssl::{SslContext, SslContextBuilder, SslFiletype, SslMethod, SslVerifyMode};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{ExecutionError, NewSessionError, PrepareError, RequestAttemptError};
use scylla::frame::response::result::{ColumnType, NativeType};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{Counter, CqlTimestamp, CqlTimeuuid, CqlValue};
use tokio::sync::watch;

use crate::cql_rows::into_result;
use crate::*;

// Value tags: keep in sync with CB_VALUE_* in commentd_bridge.h.
pub const V_NULL: i32 = 0;
pub const V_BOOLEAN: i32 = 1;
pub const V_INT: i32 = 2;
pub const V_BIGINT: i32 = 3;
pub const V_COUNTER: i32 = 4;
pub const V_TEXT: i32 = 5;
pub const V_BLOB: i32 = 6;
pub const V_UUID: i32 = 7;
pub const V_TIMESTAMP: i32 = 8;
pub const V_SMALLINT: i32 = 9;
pub const V_TINYINT: i32 = 10;
pub const V_TIMEUUID: i32 = 11;
pub const V_ASCII: i32 = 12;
pub const V_OTHER: i32 = 100;

// Getter answers (cb_cql_get_*).
pub const GET_OK: i32 = 0;
pub const GET_NULL: i32 = 1;
pub const GET_TYPE_MISMATCH: i32 = -1;
pub const GET_OUT_OF_RANGE: i32 = -2;

#[repr(C)]
pub struct cb_value {
    pub kind: i32,
    pub i64_: i64,
    pub data: *const u8,
    pub len: usize,
}

#[repr(C)]
pub struct cb_cql_config {
    pub contact_points: *const c_char,
    pub local_datacenter: *const c_char,
    pub username: *const c_char,
    pub password: *const c_char,
    pub keyspace: *const c_char,
    pub request_timeout_ms: u32,
    pub connect_timeout_ms: u32,
    pub default_consistency: i32,
    pub tls: i32,
    pub tls_ca_file: *const c_char,
    pub tls_cert_file: *const c_char,
    pub tls_key_file: *const c_char,
}

#[repr(C)]
pub struct cb_cql_exec_options {
    pub consistency: i32,
    pub serial_consistency: i32,
    pub page_size: i32,
    pub paging_state: *const u8,
    pub paging_state_len: usize,
    pub timeout_ms: u32,
    pub idempotent: i32,
    pub timestamp_us: i64,
}

pub struct cb_cql_session {
    session: Arc<Session>,
    handle: Rt,
    cancel: watch::Sender<StopState>,
}

pub struct cb_cql_prepared {
    stmt: PreparedStatement,
}

// ---------------------------------------------------------------- errors

fn attempt_error(e: &RequestAttemptError) -> BErr {
    use scylla::errors::DbError as D;
    let code = match e {
        RequestAttemptError::DbError(db, _) => match db {
            D::SyntaxError => CB_SYNTAX,
            D::Invalid | D::ConfigError | D::FunctionFailure { .. } => CB_INVALID,
            D::AlreadyExists { .. } => CB_ALREADY_EXISTS,
            D::AuthenticationError | D::Unauthorized => CB_AUTH,
            D::Unavailable { .. } | D::IsBootstrapping => CB_UNAVAILABLE,
            D::Overloaded | D::RateLimitReached { .. } => CB_OVERLOADED,
            D::ReadTimeout { .. } | D::ReadFailure { .. } => CB_TIMEOUT,
            D::WriteTimeout { .. } | D::WriteFailure { .. } => CB_WRITE_TIMEOUT,
            _ => CB_SERVER,
        },
        RequestAttemptError::SerializationError(_) | RequestAttemptError::CqlRequestSerialization(_) => {
            CB_BAD_ARGUMENT
        }
        RequestAttemptError::BrokenConnectionError(_) | RequestAttemptError::UnableToAllocStreamId => CB_CONNECTION,
        _ => CB_SERVER,
    };
    BErr::new(code, e.to_string())
}

pub fn exec_error(e: &ExecutionError) -> BErr {
    match e {
        ExecutionError::LastAttemptError(a) => attempt_error(a),
        ExecutionError::PrepareError(p) => prepare_error(p),
        ExecutionError::RequestTimeout(_) => BErr::new(CB_TIMEOUT, e.to_string()),
        ExecutionError::BadQuery(_) => BErr::new(CB_BAD_ARGUMENT, e.to_string()),
        ExecutionError::EmptyPlan | ExecutionError::ConnectionPoolError(_) => BErr::new(CB_CONNECTION, e.to_string()),
        ExecutionError::SchemaAgreementError(_) => BErr::new(CB_TIMEOUT, e.to_string()),
        ExecutionError::UseKeyspaceError(_) => BErr::new(CB_INVALID, e.to_string()),
        _ => BErr::new(CB_SERVER, e.to_string()),
    }
}

fn prepare_error(e: &PrepareError) -> BErr {
    match e {
        PrepareError::AllAttemptsFailed { first_attempt } => {
            let mut b = attempt_error(first_attempt);
            b.msg = e.to_string();
            b
        }
        PrepareError::ConnectionPoolError(_) => BErr::new(CB_CONNECTION, e.to_string()),
        _ => BErr::new(CB_SERVER, e.to_string()),
    }
}

fn session_error(e: &NewSessionError) -> BErr {
    let code = match e {
        NewSessionError::FailedToResolveAnyHostname(_) | NewSessionError::EmptyKnownNodesList => CB_BAD_ARGUMENT,
        _ => CB_CONNECTION,
    };
    let msg = e.to_string();
    // A wrong keyspace or bad credentials surface through the connection error's text.
    let code = if msg.contains("Authentication") || msg.contains("authentication") { CB_AUTH } else { code };
    BErr::new(code, msg)
}

/// The client side of TLS to the nodes. Peer verification is always on: against `ca_file`,
/// or the system's roots without one. The driver (scylla >= 1.5) also checks that the node's
/// certificate names the address it connects to. Every file is read here, so a missing or
/// unreadable one fails the connect at once with its path, before any network I/O.
fn tls_context(ca_file: Option<String>, cert_file: Option<String>, key_file: Option<String>) -> BResult<SslContext> {
    let bad = |what: &str, path: &str, e: ErrorStack| BErr::new(CB_BAD_ARGUMENT, format!("tls: {what} {path}: {e}"));
    let mut b = SslContextBuilder::new(SslMethod::tls_client())
        .map_err(|e| BErr::new(CB_INTERNAL, format!("tls: cannot make a context: {e}")))?;
    b.set_verify(SslVerifyMode::PEER);
    match &ca_file {
        Some(ca) => b.set_ca_file(ca).map_err(|e| bad("ca_file", ca, e))?,
        None => b.set_default_verify_paths().map_err(|e| bad("the system's roots", "", e))?,
    }
    match (&cert_file, &key_file) {
        (Some(cert), Some(key)) => {
            b.set_certificate_chain_file(cert).map_err(|e| bad("cert_file", cert, e))?;
            b.set_private_key_file(key, SslFiletype::PEM).map_err(|e| bad("key_file", key, e))?;
            b.check_private_key().map_err(|e| bad("key_file (not cert_file's key)", key, e))?;
        }
        (None, None) => {}
        _ => return Err(BErr::new(CB_BAD_ARGUMENT, "tls: cert_file and key_file go together")),
    }
    Ok(b.build())
}

// ---------------------------------------------------------------- values

fn consistency(c: i32) -> BResult<Option<Consistency>> {
    Ok(Some(match c {
        -1 => return Ok(None),
        0 => Consistency::Any,
        1 => Consistency::One,
        2 => Consistency::Two,
        3 => Consistency::Three,
        4 => Consistency::Quorum,
        5 => Consistency::All,
        6 => Consistency::LocalQuorum,
        7 => Consistency::EachQuorum,
        10 => Consistency::LocalOne,
        _ => return Err(BErr::new(CB_BAD_ARGUMENT, format!("unknown consistency {c}"))),
    }))
}

fn serial_consistency(c: i32) -> BResult<Option<SerialConsistency>> {
    Ok(Some(match c {
        -1 => return Ok(None),
        8 => SerialConsistency::Serial,
        9 => SerialConsistency::LocalSerial,
        _ => return Err(BErr::new(CB_BAD_ARGUMENT, format!("unknown serial consistency {c}"))),
    }))
}

pub fn kind_of(t: &ColumnType) -> i32 {
    match t {
        ColumnType::Native(n) => match n {
            NativeType::Boolean => V_BOOLEAN,
            NativeType::Int => V_INT,
            NativeType::BigInt => V_BIGINT,
            NativeType::Counter => V_COUNTER,
            NativeType::Text => V_TEXT,
            NativeType::Ascii => V_ASCII,
            NativeType::Blob => V_BLOB,
            NativeType::Uuid => V_UUID,
            NativeType::Timeuuid => V_TIMEUUID,
            NativeType::Timestamp => V_TIMESTAMP,
            NativeType::SmallInt => V_SMALLINT,
            NativeType::TinyInt => V_TINYINT,
            _ => V_OTHER,
        },
        _ => V_OTHER,
    }
}

fn kind_name(k: i32) -> &'static str {
    match k {
        V_NULL => "null",
        V_BOOLEAN => "boolean",
        V_INT => "int",
        V_BIGINT => "bigint",
        V_COUNTER => "counter",
        V_TEXT => "text",
        V_ASCII => "ascii",
        V_BLOB => "blob",
        V_UUID => "uuid",
        V_TIMEUUID => "timeuuid",
        V_TIMESTAMP => "timestamp",
        V_SMALLINT => "smallint",
        V_TINYINT => "tinyint",
        _ => "unsupported type",
    }
}

fn is_integer(k: i32) -> bool {
    matches!(k, V_INT | V_BIGINT | V_COUNTER | V_SMALLINT | V_TINYINT)
}

/// Converts one C value to the CQL value its column expects. Integer tags bind to any
/// integer column (range-checked), uuid to uuid or timeuuid, text to text or ascii;
/// anything else must match exactly.
pub fn to_cql(v: &cb_value, col: i32, col_name: &str) -> BResult<Option<CqlValue>> {
    let mismatch = || {
        BErr::new(
            CB_BAD_ARGUMENT,
            format!("column {col_name} is {}, bound value is {}", kind_name(col), kind_name(v.kind)),
        )
    };
    let range = || BErr::new(CB_BAD_ARGUMENT, format!("value {} out of range for {col_name} ({})", v.i64_, kind_name(col)));
    // SAFETY: the C caller promises data/len describe readable memory for this call.
    let data = unsafe { bytes(v.data, v.len) };
    Ok(Some(match v.kind {
        V_NULL => return Ok(None),
        k if is_integer(k) => match col {
            V_INT => CqlValue::Int(i32::try_from(v.i64_).map_err(|_| range())?),
            V_BIGINT => CqlValue::BigInt(v.i64_),
            V_COUNTER => CqlValue::Counter(Counter(v.i64_)),
            V_SMALLINT => CqlValue::SmallInt(i16::try_from(v.i64_).map_err(|_| range())?),
            V_TINYINT => CqlValue::TinyInt(i8::try_from(v.i64_).map_err(|_| range())?),
            _ => return Err(mismatch()),
        },
        V_BOOLEAN if col == V_BOOLEAN => CqlValue::Boolean(v.i64_ != 0),
        V_TIMESTAMP if col == V_TIMESTAMP => CqlValue::Timestamp(CqlTimestamp(v.i64_)),
        V_TEXT | V_ASCII if col == V_TEXT || col == V_ASCII => {
            let s = std::str::from_utf8(data).map_err(|_| BErr::new(CB_BAD_ARGUMENT, format!("{col_name}: text is not UTF-8")))?;
            if col == V_TEXT { CqlValue::Text(s.to_owned()) } else { CqlValue::Ascii(s.to_owned()) }
        }
        V_BLOB if col == V_BLOB => CqlValue::Blob(data.to_vec()),
        V_UUID | V_TIMEUUID if col == V_UUID || col == V_TIMEUUID => {
            let b: [u8; 16] = data.try_into().map_err(|_| BErr::new(CB_BAD_ARGUMENT, format!("{col_name}: a uuid is 16 bytes")))?;
            let u = uuid::Uuid::from_bytes(b);
            if col == V_UUID { CqlValue::Uuid(u) } else { CqlValue::Timeuuid(CqlTimeuuid::from(u)) }
        }
        _ => return Err(mismatch()),
    }))
}

unsafe fn bind(stmt: &PreparedStatement, values: *const cb_value, n: usize) -> BResult<Vec<Option<CqlValue>>> {
    let specs = stmt.get_variable_col_specs();
    if specs.len() != n {
        return Err(BErr::new(CB_BAD_ARGUMENT, format!("statement takes {} values, got {n}", specs.len())));
    }
    let vals = if n == 0 { &[][..] } else { std::slice::from_raw_parts(values, n) };
    specs.iter().zip(vals).map(|(spec, v)| to_cql(v, kind_of(spec.typ()), spec.name())).collect()
}

fn apply_options(stmt: &mut PreparedStatement, o: Option<&cb_cql_exec_options>) -> BResult<()> {
    let Some(o) = o else { return Ok(()) };
    if let Some(c) = consistency(o.consistency)? {
        stmt.set_consistency(c);
    }
    if let Some(s) = serial_consistency(o.serial_consistency)? {
        stmt.set_serial_consistency(Some(s));
    }
    if o.page_size > 0 {
        stmt.set_page_size(o.page_size);
    }
    if o.timeout_ms > 0 {
        stmt.set_request_timeout(Some(Duration::from_millis(o.timeout_ms as u64)));
    }
    // The driver's retry and speculative-execution policies retry a statement only when it
    // is marked idempotent (except errors that prove it was not applied, e.g. Unavailable).
    stmt.set_is_idempotent(o.idempotent != 0);
    // The protocol's default timestamp: a statement's own USING TIMESTAMP still wins.
    if o.timestamp_us != 0 {
        stmt.set_timestamp(Some(o.timestamp_us));
    }
    Ok(())
}

// ---------------------------------------------------------------- sessions

/// Result: cb_cql_session* (owned).
#[no_mangle]
pub unsafe extern "C" fn cb_cql_connect(rt: *const cb_runtime, cfg: *const cb_cql_config, done: cb_done, user: *mut c_void) {
    let done = Completion::new(done, user);
    if rt.is_null() || cfg.is_null() {
        return done.err(BErr::new(CB_BAD_ARGUMENT, "runtime and config are required"));
    }
    let handle = (*rt).handle().clone();
    let c = &*cfg;
    let parsed = (|| -> BResult<_> {
        let points = req_str(c.contact_points, "contact_points")?;
        let dc = opt_str(c.local_datacenter)?;
        let user = opt_str(c.username)?;
        let pass = opt_str(c.password)?.unwrap_or_default();
        let ks = opt_str(c.keyspace)?;
        let cons = consistency(c.default_consistency)?.unwrap_or(Consistency::LocalQuorum);
        let tls = if c.tls != 0 {
            Some(tls_context(opt_str(c.tls_ca_file)?, opt_str(c.tls_cert_file)?, opt_str(c.tls_key_file)?)?)
        } else {
            None
        };
        Ok((points, dc, user, pass, ks, cons, c.request_timeout_ms, c.connect_timeout_ms, tls))
    })();
    let h2 = handle.clone();
    spawn_op(&handle, None, done, async move {
        let (points, dc, user, pass, ks, cons, req_ms, conn_ms, tls) = parsed?;
        let mut lbp = DefaultPolicy::builder().token_aware(true);
        if let Some(dc) = dc {
            lbp = lbp.prefer_datacenter(dc).permit_dc_failover(false);
        }
        let profile = ExecutionProfile::builder()
            .consistency(cons)
            .request_timeout(if req_ms > 0 { Some(Duration::from_millis(req_ms as u64)) } else { None })
            .load_balancing_policy(lbp.build())
            .build();
        let mut b = SessionBuilder::new()
            .known_nodes(points.split(',').map(str::trim).filter(|s| !s.is_empty()))
            .default_execution_profile_handle(profile.into_handle());
        if conn_ms > 0 {
            b = b.connection_timeout(Duration::from_millis(conn_ms as u64));
        }
        if let Some(u) = user {
            b = b.user(u, pass);
        }
        if let Some(ks) = ks {
            b = b.use_keyspace(ks, false);
        }
        if let Some(tls) = tls {
            b = b.tls_context(Some(tls));
        }
        let session = b.build().await.map_err(|e| session_error(&e))?;
        let cancel = new_stop();
        let s = cb_cql_session { session: Arc::new(session), handle: h2, cancel };
        Ok(Out::Owned(Box::into_raw(Box::new(s)) as *mut c_void))
    });
}

/// Completes every pending call on this session with CB_CANCELLED (from a bridge thread,
/// possibly after this returns) and closes the session once they are gone. Never blocks.
#[no_mangle]
pub unsafe extern "C" fn cb_cql_session_free(s: *mut cb_cql_session) {
    if s.is_null() {
        return;
    }
    let s = Box::from_raw(s);
    fire(&s.cancel, Duration::ZERO);
    // The driver's Session must be dropped inside the runtime (it spawns on drop).
    let session = s.session.clone();
    drop(s.handle.spawn(async move { drop(session) }));
}

fn session_parts(s: *const cb_cql_session) -> BResult<(&'static cb_cql_session, StopRx)> {
    if s.is_null() {
        return Err(BErr::new(CB_BAD_ARGUMENT, "session is NULL"));
    }
    // SAFETY: the caller keeps the session alive for the duration of this call.
    let s: &'static cb_cql_session = unsafe { &*s };
    Ok((s, s.cancel.subscribe()))
}

macro_rules! with_session {
    ($s:expr, $done:ident) => {
        match session_parts($s) {
            Ok(p) => p,
            Err(e) => {
                // No runtime to report on: the caller gets the error on its own thread.
                return $done.err(e);
            }
        }
    };
}

/// Result: cb_cql_prepared* (owned).
#[no_mangle]
pub unsafe extern "C" fn cb_cql_prepare(s: *const cb_cql_session, cql: *const c_char, len: usize, done: cb_done, user: *mut c_void) {
    let done = Completion::new(done, user);
    let (s, cancel) = with_session!(s, done);
    let text = std::str::from_utf8(bytes(cql as *const u8, len)).map(str::to_owned);
    let session = s.session.clone();
    spawn_op(&s.handle, Some(cancel), done, async move {
        let text = text.map_err(|_| BErr::new(CB_BAD_ARGUMENT, "statement is not UTF-8"))?;
        let stmt = session.prepare(text).await.map_err(|e| prepare_error(&e))?;
        Ok(Out::Owned(Box::into_raw(Box::new(cb_cql_prepared { stmt })) as *mut c_void))
    });
}

#[no_mangle]
pub unsafe extern "C" fn cb_cql_prepared_free(p: *mut cb_cql_prepared) {
    if !p.is_null() {
        drop(Box::from_raw(p));
    }
}

/// The driver's own counters since the session connected (scylla's `metrics` feature).
#[repr(C)]
pub struct cb_cql_driver_metrics {
    pub requests: u64,
    pub errors: u64,
    pub retries: u64,
    pub connections: u64,
    pub connection_timeouts: u64,
    pub request_timeouts: u64,
}

#[no_mangle]
pub unsafe extern "C" fn cb_cql_session_metrics(s: *const cb_cql_session, out: *mut cb_cql_driver_metrics) {
    let m = (*s).session.get_metrics();
    *out = cb_cql_driver_metrics {
        requests: m.get_requests_unpaged_num() + m.get_requests_manually_paged_num(),
        errors: m.get_errors_unpaged_num() + m.get_errors_manually_paged_num(),
        retries: m.get_retries_num(),
        connections: m.get_total_connections(),
        connection_timeouts: m.get_connection_timeouts(),
        request_timeouts: m.get_request_timeouts(),
    };
}

/// Number of bind markers and the CB_VALUE_* kind of marker `i` (CB_VALUE_OTHER if unsupported).
#[no_mangle]
pub unsafe extern "C" fn cb_cql_prepared_param_count(p: *const cb_cql_prepared) -> usize {
    (*p).stmt.get_variable_col_specs().len()
}

#[no_mangle]
pub unsafe extern "C" fn cb_cql_prepared_param_kind(p: *const cb_cql_prepared, i: usize) -> i32 {
    (*p).stmt.get_variable_col_specs().get_by_index(i).map(|s| kind_of(s.typ())).unwrap_or(V_OTHER)
}

/// Unprepared statement without values (DDL, one-off). Result: cb_cql_result* (owned).
#[no_mangle]
pub unsafe extern "C" fn cb_cql_query(s: *const cb_cql_session, cql: *const c_char, len: usize, timeout_ms: u32, done: cb_done, user: *mut c_void) {
    let done = Completion::new(done, user);
    let (s, cancel) = with_session!(s, done);
    let text = std::str::from_utf8(bytes(cql as *const u8, len)).map(str::to_owned);
    let session = s.session.clone();
    spawn_op(&s.handle, Some(cancel), done, async move {
        let text = text.map_err(|_| BErr::new(CB_BAD_ARGUMENT, "statement is not UTF-8"))?;
        let mut st = scylla::statement::Statement::new(text);
        if timeout_ms > 0 {
            st.set_request_timeout(Some(Duration::from_millis(timeout_ms as u64)));
        }
        let qr = session.query_unpaged(st, ()).await.map_err(|e| exec_error(&e))?;
        Ok(Out::Owned(Box::into_raw(Box::new(into_result(qr, None)?)) as *mut c_void))
    });
}

/// Result: cb_cql_result* (owned). `values` are copied before this returns.
#[no_mangle]
pub unsafe extern "C" fn cb_cql_execute(
    s: *const cb_cql_session,
    p: *const cb_cql_prepared,
    values: *const cb_value,
    n_values: usize,
    opts: *const cb_cql_exec_options,
    done: cb_done,
    user: *mut c_void,
) {
    let done = Completion::new(done, user);
    let (s, cancel) = with_session!(s, done);
    let prepared = (|| -> BResult<_> {
        if p.is_null() {
            return Err(BErr::new(CB_BAD_ARGUMENT, "prepared statement is NULL"));
        }
        let mut stmt = (*p).stmt.clone();
        let o = opts.as_ref();
        apply_options(&mut stmt, o)?;
        let vals = bind(&stmt, values, n_values)?;
        let paged = o.map(|o| o.page_size > 0).unwrap_or(false);
        let state = o
            .filter(|o| !o.paging_state.is_null() && o.paging_state_len > 0)
            .map(|o| PagingState::new_from_raw_bytes(bytes(o.paging_state, o.paging_state_len).to_vec()));
        Ok((stmt, vals, paged, state))
    })();
    let session = s.session.clone();
    spawn_op(&s.handle, Some(cancel), done, async move {
        let (stmt, vals, paged, state) = prepared?;
        let r = if paged {
            let (qr, resp) = session
                .execute_single_page(&stmt, vals, state.unwrap_or_else(PagingState::start))
                .await
                .map_err(|e| exec_error(&e))?;
            let next = match resp {
                PagingStateResponse::HasMorePages { state } => state.as_bytes_slice().cloned(),
                PagingStateResponse::NoMorePages => None,
            };
            into_result(qr, next)?
        } else {
            into_result(session.execute_unpaged(&stmt, vals).await.map_err(|e| exec_error(&e))?, None)?
        };
        Ok(Out::Owned(Box::into_raw(Box::new(r)) as *mut c_void))
    });
}

/// batch_type: 0 logged, 1 unlogged, 2 counter. Statement i binds values[i][0..counts[i]].
/// Result: cb_cql_result* (owned; rows only for conditional batches).
#[no_mangle]
pub unsafe extern "C" fn cb_cql_batch(
    s: *const cb_cql_session,
    batch_type: i32,
    n: usize,
    stmts: *const *const cb_cql_prepared,
    values: *const *const cb_value,
    counts: *const usize,
    opts: *const cb_cql_exec_options,
    done: cb_done,
    user: *mut c_void,
) {
    let done = Completion::new(done, user);
    let (s, cancel) = with_session!(s, done);
    let built = (|| -> BResult<_> {
        let t = match batch_type {
            0 => BatchType::Logged,
            1 => BatchType::Unlogged,
            2 => BatchType::Counter,
            _ => return Err(BErr::new(CB_BAD_ARGUMENT, format!("unknown batch type {batch_type}"))),
        };
        if n == 0 || stmts.is_null() || counts.is_null() || values.is_null() {
            return Err(BErr::new(CB_BAD_ARGUMENT, "a batch needs at least one statement"));
        }
        let mut batch = Batch::new(t);
        let mut all = Vec::with_capacity(n);
        for i in 0..n {
            let p = *stmts.add(i);
            if p.is_null() {
                return Err(BErr::new(CB_BAD_ARGUMENT, format!("batch statement {i} is NULL")));
            }
            all.push(bind(&(*p).stmt, *values.add(i), *counts.add(i))?);
            batch.append_statement((*p).stmt.clone());
        }
        if let Some(o) = opts.as_ref() {
            if let Some(c) = consistency(o.consistency)? {
                batch.set_consistency(c);
            }
            if let Some(sc) = serial_consistency(o.serial_consistency)? {
                batch.set_serial_consistency(Some(sc));
            }
            if o.timeout_ms > 0 {
                batch.set_request_timeout(Some(Duration::from_millis(o.timeout_ms as u64)));
            }
            batch.set_is_idempotent(o.idempotent != 0);
            if o.timestamp_us != 0 {
                batch.set_timestamp(Some(o.timestamp_us));
            }
        }
        Ok((batch, all))
    })();
    let session = s.session.clone();
    spawn_op(&s.handle, Some(cancel), done, async move {
        let (batch, all) = built?;
        let qr = session.batch(&batch, all).await.map_err(|e| exec_error(&e))?;
        Ok(Out::Owned(Box::into_raw(Box::new(into_result(qr, None)?)) as *mut c_void))
    });
}

/// Waits until every reachable node reports the same schema version. Result: NULL.
#[no_mangle]
pub unsafe extern "C" fn cb_cql_await_schema_agreement(s: *const cb_cql_session, done: cb_done, user: *mut c_void) {
    let done = Completion::new(done, user);
    let (s, cancel) = with_session!(s, done);
    let session = s.session.clone();
    spawn_op(&s.handle, Some(cancel), done, async move {
        session.await_schema_agreement().await.map_err(|e| BErr::new(CB_TIMEOUT, e.to_string()))?;
        Ok(Out::Unit)
    });
}
