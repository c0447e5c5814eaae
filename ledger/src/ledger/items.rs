//! Counting the items of an encoded `SubmitRecordsRequest` without decoding it: a request of
//! millions of empty items is small on the wire and huge decoded (about 130 bytes each), so
//! the item limit is checked on the bytes first.

/// Records plus observations in an encoded `SubmitRecordsRequest` (top-level fields 1 and 2),
/// or `None` when the bytes are not protobuf (decoding then refuses them).
pub fn encoded_items(mut bytes: &[u8]) -> Option<usize> {
    let mut items = 0;
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let (field, wire) = (key >> 3, key & 7);
        if wire == 2 && (field == 1 || field == 2) {
            items += 1;
        }
        skip(&mut bytes, wire)?;
    }
    Some(items)
}

/// The items of the `SubmitRecordsRequest` inside an encoded `LedgerTx` (field 1), 0 for
/// other transactions, `None` when the bytes are not protobuf.
pub fn encoded_tx_items(mut bytes: &[u8]) -> Option<usize> {
    let mut items = 0;
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let (field, wire) = (key >> 3, key & 7);
        if field == 1 && wire == 2 {
            let len = usize::try_from(varint(&mut bytes)?).ok()?;
            let inner = bytes.get(..len)?;
            items += encoded_items(inner)?;
            bytes = &bytes[len..];
        } else {
            skip(&mut bytes, wire)?;
        }
    }
    Some(items)
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn skip(bytes: &mut &[u8], wire: u64) -> Option<()> {
    let n = match wire {
        0 => return varint(bytes).map(drop),
        1 => 8,
        2 => usize::try_from(varint(bytes)?).ok()?,
        5 => 4,
        _ => return None,
    };
    *bytes = bytes.get(n..)?;
    Some(())
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use hsn_ledger_api::pb;

    #[test]
    fn counts_what_prost_decodes() {
        let request = pb::SubmitRecordsRequest {
            records: vec![pb::SignedRecord::default(); 3],
            observations: vec![pb::SignedObservation::default(); 2],
        };
        let bytes = request.encode_to_vec();
        assert_eq!(encoded_items(&bytes), Some(5));
        let tx = pb::LedgerTx {
            kind: Some(pb::ledger_tx::Kind::Submit(request)),
        };
        assert_eq!(encoded_tx_items(&tx.encode_to_vec()), Some(5));
        assert_eq!(encoded_items(&[0x0a, 0x05, 0x00]), None, "truncated");
        assert_eq!(encoded_items(&[]), Some(0));
        // A million empty items are 2 MB on the wire: counted without decoding.
        let many = [0x0a, 0x00].repeat(1_000_000);
        assert_eq!(encoded_items(&many), Some(1_000_000));
    }
}
