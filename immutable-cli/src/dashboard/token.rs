//! The secret every action needs: 32 bytes from the operating system's random source, made
//! at each start (or read from `--token-file`), compared in constant time, and never shown
//! by `Debug`.

use std::fmt;
use std::path::Path;

use subtle::ConstantTimeEq;

use crate::exit::Failure;

/// The fewest characters a token read from a file may have.
const MIN_FILE_TOKEN: usize = 16;

/// The dashboard's token.
#[derive(Clone)]
pub(crate) struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(hidden)")
    }
}

impl Token {
    /// A new token: 32 random bytes from the OS, in hex.
    pub(crate) fn generate() -> Result<Token, Failure> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| {
            Failure::error(format!(
                "cannot read the system's random source for a token: {e}"
            ))
        })?;
        Ok(Token(hex::encode(bytes)))
    }

    /// The token in `path`: its first line, without surrounding white space; refused (exit 2)
    /// when it is shorter than 16 characters or holds a character a header cannot carry.
    pub(crate) fn from_file(path: &Path) -> Result<Token, Failure> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::refused(format!("cannot read --token-file {}: {e}", path.display()))
        })?;
        Token::from_text(&text).ok_or_else(|| {
            Failure::refused(format!(
                "--token-file {} must hold a token of at least {MIN_FILE_TOKEN} printable \
                 ASCII characters without spaces on its first line",
                path.display()
            ))
        })
    }

    /// The token on the first line of `text`, trimmed, if it is long enough and printable.
    pub(crate) fn from_text(text: &str) -> Option<Token> {
        let token = text.lines().next().unwrap_or_default().trim();
        let usable =
            token.chars().count() >= MIN_FILE_TOKEN && token.chars().all(|c| c.is_ascii_graphic());
        usable.then(|| Token(token.to_owned()))
    }

    /// Whether `given` is this token, in time that does not depend on where they differ.
    pub(crate) fn matches(&self, given: &str) -> bool {
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }

    /// The token itself, to print once at start.
    pub(crate) fn reveal(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_64_hex_digits_and_new_each_time() {
        let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
        assert_eq!(a.reveal().len(), 64);
        assert!(a.reveal().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.reveal(), b.reveal());
        assert_eq!(format!("{a:?}"), "Token(hidden)");
    }

    #[test]
    fn only_the_same_token_matches() {
        let t = Token("0123456789abcdef0123".into());
        assert!(t.matches("0123456789abcdef0123"));
        assert!(!t.matches("0123456789abcdef0124"));
        assert!(!t.matches("0123456789abcdef012"));
        assert!(!t.matches(""));
    }

    #[test]
    fn a_token_file_is_read_trimmed_and_a_short_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, "  s3cret-s3cret-s3cret \n").unwrap();
        assert!(
            Token::from_file(&good)
                .unwrap()
                .matches("s3cret-s3cret-s3cret")
        );
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        assert_eq!(Token::from_file(&short).unwrap_err().code as u8, 2);
    }
}
