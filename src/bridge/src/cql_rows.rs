//! Result pages of the CQL bridge: rows decoded once into CQL values, read through typed
//! getters by column index (commentd_bridge.h, "Results").
use std::sync::Arc;

use scylla::response::query_result::QueryResult;
use scylla::value::{CqlValue, Row};

use crate::cql::*;
use crate::*;

pub struct cb_cql_result {
    names: Vec<String>,
    kinds: Vec<i32>,
    rows: Vec<Vec<Option<CqlValue>>>,
    paging_state: Option<Arc<[u8]>>,
}

pub(crate) fn into_result(qr: QueryResult, paging: Option<Arc<[u8]>>) -> BResult<cb_cql_result> {
    if !qr.is_rows() {
        return Ok(cb_cql_result { names: vec![], kinds: vec![], rows: vec![], paging_state: paging });
    }
    let rows = qr.into_rows_result().map_err(|e| BErr::new(CB_INTERNAL, e.to_string()))?;
    let specs = rows.column_specs();
    let names = specs.iter().map(|s| s.name().to_owned()).collect();
    let kinds = specs.iter().map(|s| kind_of(s.typ())).collect();
    let mut out = Vec::with_capacity(rows.rows_num());
    for r in rows.rows::<Row>().map_err(|e| BErr::new(CB_INTERNAL, e.to_string()))? {
        out.push(r.map_err(|e| BErr::new(CB_INTERNAL, e.to_string()))?.columns);
    }
    Ok(cb_cql_result { names, kinds, rows: out, paging_state: paging })
}

// ---------------------------------------------------------------- results

#[no_mangle]
pub unsafe extern "C" fn cb_cql_result_free(r: *mut cb_cql_result) {
    if !r.is_null() {
        drop(Box::from_raw(r));
    }
}

#[no_mangle]
pub unsafe extern "C" fn cb_cql_result_row_count(r: *const cb_cql_result) -> usize {
    (*r).rows.len()
}

#[no_mangle]
pub unsafe extern "C" fn cb_cql_result_column_count(r: *const cb_cql_result) -> usize {
    (*r).names.len()
}

/// Borrowed name of column `col` (valid while `r` lives); -2 if out of range.
#[no_mangle]
pub unsafe extern "C" fn cb_cql_result_column_name(r: *const cb_cql_result, col: usize, out: *mut *const u8, out_len: *mut usize) -> i32 {
    match (&*r).names.get(col) {
        Some(n) => {
            put_bytes(n.as_bytes(), out, out_len);
            GET_OK
        }
        None => GET_OUT_OF_RANGE,
    }
}

#[no_mangle]
pub unsafe extern "C" fn cb_cql_result_column_kind(r: *const cb_cql_result, col: usize) -> i32 {
    (&*r).kinds.get(col).copied().unwrap_or(V_OTHER)
}

/// 1 and the borrowed paging state if there are more pages; 0 otherwise.
#[no_mangle]
pub unsafe extern "C" fn cb_cql_result_paging_state(r: *const cb_cql_result, out: *mut *const u8, out_len: *mut usize) -> i32 {
    match &(*r).paging_state {
        Some(p) => {
            put_bytes(p, out, out_len);
            1
        }
        None => {
            put_bytes(&[], out, out_len);
            0
        }
    }
}

/// Conditional (LWT) results: 1 applied, 0 not applied (row 0 then holds the current values
/// after the [applied] column), -1 not a conditional result.
#[no_mangle]
pub unsafe extern "C" fn cb_cql_result_applied(r: *const cb_cql_result) -> i32 {
    let r = &*r;
    if r.names.first().map(String::as_str) != Some("[applied]") {
        return -1;
    }
    match r.rows.first().and_then(|row| row.first()) {
        Some(Some(CqlValue::Boolean(b))) => *b as i32,
        _ => -1,
    }
}

unsafe fn cell<'a>(r: *const cb_cql_result, row: usize, col: usize) -> Result<&'a Option<CqlValue>, i32> {
    (&*r).rows.get(row).and_then(|x| x.get(col)).ok_or(GET_OUT_OF_RANGE)
}

macro_rules! getter {
    ($r:expr, $row:expr, $col:expr, |$v:ident| $body:expr) => {
        match cell($r, $row, $col) {
            Err(e) => e,
            Ok(None) => GET_NULL,
            Ok(Some($v)) => $body,
        }
    };
}

/// int, bigint, counter, smallint, tinyint, and timestamp (ms since the epoch).
#[no_mangle]
pub unsafe extern "C" fn cb_cql_get_i64(r: *const cb_cql_result, row: usize, col: usize, out: *mut i64) -> i32 {
    getter!(r, row, col, |v| {
        let x = match v {
            CqlValue::Int(x) => *x as i64,
            CqlValue::BigInt(x) => *x,
            CqlValue::Counter(c) => c.0,
            CqlValue::SmallInt(x) => *x as i64,
            CqlValue::TinyInt(x) => *x as i64,
            CqlValue::Timestamp(t) => t.0,
            _ => return GET_TYPE_MISMATCH,
        };
        *out = x;
        GET_OK
    })
}

#[no_mangle]
pub unsafe extern "C" fn cb_cql_get_bool(r: *const cb_cql_result, row: usize, col: usize, out: *mut i32) -> i32 {
    getter!(r, row, col, |v| match v {
        CqlValue::Boolean(b) => {
            *out = *b as i32;
            GET_OK
        }
        _ => GET_TYPE_MISMATCH,
    })
}

/// text, ascii, blob: borrowed bytes, valid while `r` lives.
#[no_mangle]
pub unsafe extern "C" fn cb_cql_get_bytes(r: *const cb_cql_result, row: usize, col: usize, out: *mut *const u8, out_len: *mut usize) -> i32 {
    getter!(r, row, col, |v| {
        match v {
            CqlValue::Text(s) | CqlValue::Ascii(s) => put_bytes(s.as_bytes(), out, out_len),
            CqlValue::Blob(b) => put_bytes(b, out, out_len),
            _ => return GET_TYPE_MISMATCH,
        }
        GET_OK
    })
}

/// uuid, timeuuid: 16 bytes in network order into out[16].
#[no_mangle]
pub unsafe extern "C" fn cb_cql_get_uuid(r: *const cb_cql_result, row: usize, col: usize, out: *mut u8) -> i32 {
    getter!(r, row, col, |v| {
        let b: &[u8; 16] = match v {
            CqlValue::Uuid(u) => u.as_bytes(),
            CqlValue::Timeuuid(t) => t.as_bytes(),
            _ => return GET_TYPE_MISMATCH,
        };
        std::ptr::copy_nonoverlapping(b.as_ptr(), out, 16);
        GET_OK
    })
}
