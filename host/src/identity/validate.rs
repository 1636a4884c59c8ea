//! Input rules shared by every write: lengths, formats, character sets.
//! Each check appends a `FieldError`; a request with any is refused whole.

use crate::error::{Error, FieldError};

/// Collects field errors for one request.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// A validator with no errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error.
    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Required, trimmed non-empty, at most `max` characters, no control characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.fail(field, "must not be empty");
        } else {
            self.optional_text(field, Some(value), max);
        }
    }

    /// Optional text: at most `max` characters, no control characters.
    pub fn optional_text(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            if v.chars().count() > max {
                self.fail(field, format!("must be at most {max} characters"));
            } else if v.chars().any(char::is_control) {
                self.fail(field, "must not contain control characters");
            }
        }
    }

    /// An email address: one `@`, a dotless-or-dotted domain, no spaces, ≤ 254.
    pub fn email(&mut self, field: &str, value: &str) {
        let v = value.trim();
        let ok = v.len() <= 254
            && !v.chars().any(|c| c.is_whitespace() || c.is_control())
            && match v.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && local.len() <= 64
                        && !domain.is_empty()
                        && !domain.contains('@')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains("..")
                }
                None => false,
            };
        if !ok {
            self.fail(field, "must be a valid email address");
        }
    }

    /// A password: 8..=256 characters.
    pub fn password(&mut self, field: &str, value: &str) {
        let n = value.chars().count();
        if n < 8 {
            self.fail(field, "must be at least 8 characters");
        } else if n > 256 {
            self.fail(field, "must be at most 256 characters");
        }
    }

    /// A slug: 1..=63 of `a-z 0-9 -`, not starting or ending with `-`.
    pub fn slug(&mut self, field: &str, value: &str) {
        let ok = !value.is_empty()
            && value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !value.starts_with('-')
            && !value.ends_with('-');
        if !ok {
            self.fail(
                field,
                "must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
            );
        }
    }

    /// An identifier such as a permission resource or action: 1..=64 of
    /// `A-Z a-z 0-9 _ - .`, or exactly `*`.
    pub fn ident(&mut self, field: &str, value: &str) {
        let ok = value == "*"
            || (!value.is_empty()
                && value.len() <= 64
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')));
        if !ok {
            self.fail(
                field,
                "must be 1-64 characters of letters, digits, '_', '-', '.', or '*'",
            );
        }
    }

    /// An absolute http(s) URL without a fragment.
    pub fn url(&mut self, field: &str, value: &str) {
        match url::Url::parse(value) {
            Ok(u)
                if (u.scheme() == "https" || u.scheme() == "http")
                    && u.fragment().is_none()
                    && value.len() <= 2048 => {}
            _ => self.fail(field, "must be an absolute http(s) URL without a fragment"),
        }
    }

    /// A redirect URI: absolute, no fragment; custom schemes allowed for native apps.
    pub fn redirect_uri(&mut self, field: &str, value: &str) {
        match url::Url::parse(value) {
            Ok(u) if u.fragment().is_none() && value.len() <= 2048 => {}
            _ => self.fail(field, "must be an absolute URI without a fragment"),
        }
    }

    /// `Ok` if nothing failed.
    pub fn finish(self) -> Result<(), Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let mut v = Validator::new();
        v.email("a", "x@example.com");
        v.slug("b", "acme-1");
        v.ident("c", "users");
        v.ident("d", "*");
        v.url("e", "https://example.com/cb");
        assert!(v.finish().is_ok());
        let mut v = Validator::new();
        v.email("a", "no-at");
        v.email("a", "a@b@c");
        v.slug("b", "Acme");
        v.text("c", &"x".repeat(300), 255);
        v.text("d", "  ", 10);
        v.password("e", "short");
        v.url("f", "javascript:alert(1)");
        match v.finish() {
            Err(Error::Validation(errs)) => assert_eq!(errs.len(), 7),
            _ => panic!(),
        }
    }
}
