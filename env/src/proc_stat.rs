//! Fields of a `/proc/<pid>/stat` line, numbered as proc(5) numbers them.

/// Field `n` (from 1: the pid) of a stat line. The command name (field 2)
/// may hold spaces and parentheses, so fields from 3 on are counted past
/// its last `)`; fields 1 and 2 are not asked for.
pub(crate) fn field(stat: &str, n: usize) -> Option<&str> {
    debug_assert!(n >= 3, "field {n} is the pid or the name");
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(n - 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_past_a_name_with_spaces_and_parentheses() {
        let line = "4242 (q2o (x) y) S 1 4242";
        assert_eq!(field(line, 3), Some("S"));
        assert_eq!(field(line, 4), Some("1"));
        assert_eq!(field(line, 6), None);
        assert_eq!(field("garbage", 3), None);
    }
}
