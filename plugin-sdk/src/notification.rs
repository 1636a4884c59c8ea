//! Category `notification-channel`: delivers a rendered email or SMS
//! through a provider API. See `docs/notification-channel.md`.
//! `unavailable` errors are retried with the same `message_id`; other
//! errors move on to the next channel.

use std::marker::PhantomData;

use crate::bindings::notification_channel as raw;
use crate::types::{CallContext, KeyValue, PluginError, conv};

/// The medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// An email.
    Email,
    /// A text message.
    Sms,
}

/// A fully rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Email or SMS.
    pub kind: MessageKind,
    /// Unique id, identical across retries: use it as idempotency key.
    pub message_id: String,
    /// The template it was rendered from, e.g. `verify-email`.
    pub template: String,
    /// Email address or E.164 phone number.
    pub to: String,
    /// The recipient's display name, if known (email only).
    pub to_name: Option<String>,
    /// Sender address or id; `None` means the plugin's configured default.
    pub sender: Option<String>,
    /// Subject line (email only).
    pub subject: Option<String>,
    /// Plain-text body (the whole SMS).
    pub text_body: String,
    /// HTML body (email only).
    pub html_body: Option<String>,
    /// Extra email headers configured by the tenant.
    pub headers: Vec<KeyValue>,
    /// The locale it was rendered in.
    pub locale: String,
}

/// Proof of hand-off to the provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// The provider's id for the message, if returned.
    pub provider_message_id: Option<String>,
}

/// A notification-channel plugin.
pub trait NotificationChannel: crate::Plugin {
    /// The kinds this channel can deliver (cached per instance by the
    /// host). The WIT function cannot fail: if the plugin cannot be built
    /// from its configuration, the SDK answers an empty list (and logs
    /// the error), so the host never routes messages to it.
    fn supported_kinds(&self, ctx: &CallContext) -> Vec<MessageKind>;

    /// Hands the message to the provider.
    fn deliver(&self, ctx: &CallContext, message: Message) -> Result<DeliveryReceipt, PluginError>;
}

fn kind_in(k: raw::MessageKind) -> MessageKind {
    match k {
        raw::MessageKind::Email => MessageKind::Email,
        raw::MessageKind::Sms => MessageKind::Sms,
    }
}

fn kind_out(k: MessageKind) -> raw::MessageKind {
    match k {
        MessageKind::Email => raw::MessageKind::Email,
        MessageKind::Sms => raw::MessageKind::Sms,
    }
}

impl From<raw::Message> for Message {
    fn from(m: raw::Message) -> Self {
        Message {
            kind: kind_in(m.kind),
            message_id: m.message_id,
            template: m.template,
            to: m.to,
            to_name: m.to_name,
            sender: m.sender,
            subject: m.subject,
            text_body: m.text_body,
            html_body: m.html_body,
            headers: conv(m.headers),
            locale: m.locale,
        }
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: NotificationChannel> raw::Guest for Export<T> {
    fn supported_kinds(ctx: raw::CallContext) -> Vec<raw::MessageKind> {
        match crate::runtime::instance::<T>() {
            Ok(plugin) => plugin
                .supported_kinds(&ctx.into())
                .into_iter()
                .map(kind_out)
                .collect(),
            Err(e) => {
                crate::host::log::error(&format!("supported-kinds: plugin unavailable: {e}"));
                Vec::new()
            }
        }
    }

    fn deliver(
        ctx: raw::CallContext,
        message: raw::Message,
    ) -> Result<raw::DeliveryReceipt, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        let r = plugin.deliver(&ctx.into(), message.into())?;
        Ok(raw::DeliveryReceipt {
            provider_message_id: r.provider_message_id,
        })
    }
}
