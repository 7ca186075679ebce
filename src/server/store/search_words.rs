//! What a person typed into search, as both engines read it: its words
//! (runs of letters and digits), every one of which must appear, the last
//! one as the start of a word (so that results come while typing).

/// Hits answered at most.
pub const MAX_HITS: u32 = 100;

/// The words of `text`; none when it holds no letter or digit.
pub fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn words_are_runs_of_letters_and_digits() {
        assert_eq!(words("hello wor"), ["hello", "wor"]);
        assert_eq!(
            words(r#"a "quoted" OR-NOT (x)*"#),
            ["a", "quoted", "OR", "NOT", "x"]
        );
        assert!(words("  -- ** ").is_empty());
        assert_eq!(words("out.txt échec"), ["out", "txt", "échec"]);
    }
}
