//! Category `input-validator`: checks user input (passwords, usernames,
//! emails, profile attributes) before the host writes a user. See
//! `docs/input-validator.md`. Fails closed.

use std::marker::PhantomData;

use crate::bindings::input_validator as raw;
use crate::types::{CallContext, Json, PluginError, conv, json_in};

/// Which operation the input belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// An administrator creates a user through the admin API.
    UserCreate,
    /// A person signs up through self registration.
    SelfRegistration,
    /// An administrator or the user updates a profile.
    UserUpdate,
    /// A password is changed, reset or set by an administrator.
    PasswordChange,
}

/// One input field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The path: `email`, `username`, `password`, `given_name`, or
    /// `attributes/<name>`.
    pub name: String,
    /// The proposed value as JSON. For `password` it is the plaintext as a
    /// JSON string: never log, store or send it (send only a hash prefix).
    pub value: Json,
}

impl Field {
    /// The value if it is a JSON string (e.g. a password or an email).
    pub fn as_string(&self) -> Option<String> {
        self.value.parse::<String>().ok()
    }
}

/// The input to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationRequest {
    /// The operation.
    pub operation: Operation,
    /// The user id, for `UserUpdate` and `PasswordChange`.
    pub user_id: Option<String>,
    /// The complete proposed state of the fields involved.
    pub fields: Vec<Field>,
    /// Names of the fields this operation changes.
    pub changed: Vec<String>,
    /// The end user's preferred locales (BCP 47), most preferred first.
    pub locales: Vec<String>,
}

impl ValidationRequest {
    /// The field called `name`, if present.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The value of field `name` if it is a JSON string.
    pub fn string_field(&self, name: &str) -> Option<String> {
        self.field(name).and_then(Field::as_string)
    }

    /// Whether the operation changes field `name`.
    pub fn changes(&self, name: &str) -> bool {
        self.changed.iter().any(|c| c == name)
    }
}

/// One rule a field breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field path, or empty for the input as a whole.
    pub field: String,
    /// Machine-readable `snake_case` code, e.g. `too_short`.
    pub code: String,
    /// Message for the end user, shown as-is; never echo a password.
    pub message: String,
}

impl Violation {
    /// Builds a violation.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Violation {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An input-validator plugin.
pub trait InputValidator: crate::Plugin {
    /// Returns every violation found; an empty list accepts the input (the
    /// host keeps at most 64). Not retried.
    fn validate(
        &self,
        ctx: &CallContext,
        request: ValidationRequest,
    ) -> Result<Vec<Violation>, PluginError>;
}

impl From<raw::Operation> for Operation {
    fn from(o: raw::Operation) -> Self {
        match o {
            raw::Operation::UserCreate => Operation::UserCreate,
            raw::Operation::SelfRegistration => Operation::SelfRegistration,
            raw::Operation::UserUpdate => Operation::UserUpdate,
            raw::Operation::PasswordChange => Operation::PasswordChange,
        }
    }
}

impl From<raw::Field> for Field {
    fn from(f: raw::Field) -> Self {
        Field {
            name: f.name,
            value: json_in(f.value),
        }
    }
}

impl From<raw::ValidationRequest> for ValidationRequest {
    fn from(r: raw::ValidationRequest) -> Self {
        ValidationRequest {
            operation: r.operation.into(),
            user_id: r.user_id,
            fields: conv(r.fields),
            changed: r.changed,
            locales: r.locales,
        }
    }
}

impl From<Violation> for raw::Violation {
    fn from(v: Violation) -> Self {
        raw::Violation {
            field: v.field,
            code: v.code,
            message: v.message,
        }
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: InputValidator> raw::Guest for Export<T> {
    fn validate(
        ctx: raw::CallContext,
        request: raw::ValidationRequest,
    ) -> Result<Vec<raw::Violation>, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(conv(plugin.validate(&ctx.into(), request.into())?))
    }
}
