//! Replacing the whole content of a map so that a concurrent packet never sees a hole.

use std::collections::BTreeMap;

/// Makes a map hold exactly `desired`: writes every desired entry first, then removes the
/// keys in `current` that are no longer desired. Each single write is atomic in the kernel,
/// so a packet matching a key sees its old or its new value, never a missing entry in
/// between, and a moved prefix is never absent from both sides.
pub(crate) fn replace_entries<M, K: Ord, V, E>(
    map: &mut M,
    current: impl IntoIterator<Item = K>,
    desired: &BTreeMap<K, V>,
    upsert: impl Fn(&mut M, &K, &V) -> Result<(), E>,
    remove: impl Fn(&mut M, &K) -> Result<(), E>,
) -> Result<(), E> {
    // Collected before writing: iterating a BPF map while changing it may skip keys.
    let stale: Vec<K> = current
        .into_iter()
        .filter(|k| !desired.contains_key(k))
        .collect();
    for (k, v) in desired {
        upsert(map, k, v)?;
    }
    for k in &stale {
        remove(map, k)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Op {
        Upsert(u8, char),
        Remove(u8),
    }

    fn run(current: &[u8], desired: &[(u8, char)]) -> Vec<Op> {
        let desired: BTreeMap<u8, char> = desired.iter().copied().collect();
        let mut ops = Vec::new();
        replace_entries::<_, _, _, ()>(
            &mut ops,
            current.iter().copied(),
            &desired,
            |ops, k, v| {
                ops.push(Op::Upsert(*k, *v));
                Ok(())
            },
            |ops, k| {
                ops.push(Op::Remove(*k));
                Ok(())
            },
        )
        .unwrap();
        ops
    }

    #[test]
    fn writes_all_desired_before_removing_stale() {
        let ops = run(&[1, 2, 3], &[(2, 'b'), (4, 'd')]);
        assert_eq!(
            ops,
            vec![
                Op::Upsert(2, 'b'),
                Op::Upsert(4, 'd'),
                Op::Remove(1),
                Op::Remove(3)
            ]
        );
    }

    #[test]
    fn empty_desired_clears_and_empty_current_only_writes() {
        assert_eq!(run(&[5], &[]), vec![Op::Remove(5)]);
        assert_eq!(run(&[], &[(1, 'a')]), vec![Op::Upsert(1, 'a')]);
    }

    #[test]
    fn stops_at_the_first_failed_write_before_removing_anything() {
        let desired: BTreeMap<u8, char> = [(1, 'a'), (2, 'b')].into_iter().collect();
        let mut removed = Vec::new();
        let res = replace_entries(
            &mut removed,
            [9u8],
            &desired,
            |_, k, _| if *k == 2 { Err("full") } else { Ok(()) },
            |removed, k| {
                removed.push(*k);
                Ok(())
            },
        );
        assert_eq!(res, Err("full"));
        assert!(
            removed.is_empty(),
            "stale entries stay until every new one is in"
        );
    }
}
