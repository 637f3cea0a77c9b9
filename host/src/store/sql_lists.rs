//! What statements over many rows share: numbered parameter lists, and which items of a batch
//! are written.
//!
//! The batched writes (group commit on PostgreSQL, status rounds) build one statement for many
//! rows: a `VALUES` list of as many rows as there are items, an `IN` list of as many ids. Both
//! dialects take `$n` parameters, numbered across the whole statement; these spell them out,
//! so that no statement builder counts on its own. A batch may name one message twice; only
//! the first is written.

/// The most rows (or ids) one statement lists: at five parameters a row this stays far below
/// SQLite's 32,766 bound parameters and PostgreSQL's 65,535, whatever size a batch grows to
/// (`outbox.concurrency` has no upper bound).
pub(super) const ROWS_PER_STATEMENT: usize = 1000;

/// `$first, $first + 1, …`: `count` numbered parameters.
pub(super) fn parameters(first: usize, count: usize) -> String {
    let mut list = String::new();
    push_parameters(&mut list, first, count);
    list
}

/// `($1, …, $width), ($width + 1, …)`: the `VALUES` rows of `rows` rows of `width` columns,
/// bound row by row.
pub(super) fn value_rows(rows: usize, width: usize) -> String {
    let mut list = String::new();
    for row in 0..rows {
        if row > 0 {
            list.push_str(", ");
        }
        list.push('(');
        push_parameters(&mut list, row * width + 1, width);
        list.push(')');
    }
    list
}

/// Appends `$first, …, $(first + count - 1)` to `list`, in place rather than a string per
/// parameter: a batch's statement lists up to thousands, and one is built for every batch.
fn push_parameters(list: &mut String, first: usize, count: usize) {
    use std::fmt::Write as _;
    for n in first..first + count {
        if n > first {
            list.push_str(", ");
        }
        let _ = write!(list, "${n}");
    }
}

/// For each of `items`, whether it is the first with its key: a batch writes each key once,
/// and what the later ones learn is decided by the first.
pub(super) fn first_of_each<T>(items: &[T], key: impl Fn(&T) -> &str) -> Vec<bool> {
    let mut seen = std::collections::HashSet::new();
    items.iter().map(|item| seen.insert(key(item))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_numbered_across_the_statement() {
        assert_eq!(parameters(5, 3), "$5, $6, $7");
        assert_eq!(value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(value_rows(1, 1), "($1)");
        assert_eq!(parameters(1, 0), "");
        assert_eq!(value_rows(0, 3), "");
    }

    #[test]
    fn only_the_first_of_a_key_counts() {
        assert_eq!(
            first_of_each(&["a", "b", "a", "c", "b"], |s| s),
            [true, true, false, true, false]
        );
    }
}
