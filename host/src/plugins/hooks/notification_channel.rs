//! notification-channel: the tenant's channels deliver the messages the
//! core sends (password-reset mail today). Channels are tried in order: one
//! that does not support the message kind is skipped, a transient failure
//! (`unavailable`) is retried once, any other failure moves on to the next
//! channel; the send fails only when no channel delivered.

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use uuid::Uuid;

use super::super::activation::OutputSize;
use super::super::bindings::v0_1_0::notification_channel::exports::vaultaris::plugin::notification_channel as api;
use super::super::error::PluginCallError;
use super::super::manifest::{Category, FailureMode};
use super::super::runtime::PluginRuntime;

/// A rendered message.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Email (SMS is not sent by the core yet).
    pub template: String,
    /// Recipient address.
    pub to: String,
    /// Recipient name.
    pub to_name: Option<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text_body: String,
    /// HTML body.
    pub html_body: Option<String>,
    /// BCP 47 locale of the text.
    pub locale: String,
}

/// Why nothing was delivered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotifyFailure {
    /// The tenant has no notification channel active.
    #[error("no notification channel is active for this tenant")]
    NoChannel,
    /// Every channel failed (the last error).
    #[error("every notification channel failed; last: {plugin_id}: {error}")]
    Failed {
        /// The last channel tried.
        plugin_id: String,
        /// Its error.
        error: PluginCallError,
    },
}

/// Which channel delivered, and the provider's id.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The plugin.
    pub plugin_id: String,
    /// The message id the host assigned.
    pub message_id: String,
    /// The provider's message id.
    pub provider_message_id: Option<String>,
}

impl OutputSize for api::DeliveryReceipt {
    fn output_size(&self) -> usize {
        self.provider_message_id.as_ref().map_or(0, |s| s.len())
    }
}

impl PluginRuntime {
    /// Sends an email through the tenant's channels; see the module docs.
    pub async fn send_email(
        &self,
        tenant: Uuid,
        n: &Notification,
    ) -> Result<Delivery, NotifyFailure> {
        let channels = self.active(tenant, Category::NotificationChannel);
        if channels.is_empty() {
            return Err(NotifyFailure::NoChannel);
        }
        let message = api::Message {
            kind: api::MessageKind::Email,
            message_id: Uuid::now_v7().to_string(),
            template: n.template.clone(),
            to: n.to.clone(),
            to_name: n.to_name.clone(),
            sender: None,
            subject: Some(n.subject.clone()),
            text_body: n.text_body.clone(),
            html_body: n.html_body.clone(),
            headers: vec![],
            locale: n.locale.clone(),
        };
        let size =
            message.text_body.len() + message.html_body.as_ref().map_or(0, |h| h.len()) + 512;
        let mut last = None;
        for act in &channels {
            for attempt in 0..2 {
                let msg = message.clone();
                let (result, _) = act
                    .invoke(
                        self.engine(),
                        Category::NotificationChannel,
                        &super::super::request_id::current(),
                        size,
                        |inst, cx| {
                            Box::pin(async move {
                                let inst = match inst {
                                    PluginInstance::Native(n) => {
                                        return n
                                            .call(
                                                native_fn::NOTIFICATION_CHANNEL_DELIVER,
                                                &(&cx, &msg),
                                            )
                                            .await;
                                    }
                                    PluginInstance::Wasm(w) => w,
                                };
                                let Some(e) = &inst.exports.notification_channel else {
                                    return Err(wasmtime::format_err!(
                                        "notification-channel export missing"
                                    ));
                                };
                                e.vaultaris_plugin_notification_channel()
                                    .call_deliver(&mut inst.store, &cx, &msg)
                                    .await
                            })
                        },
                    )
                    .await;
                match result {
                    Ok(receipt) => {
                        return Ok(Delivery {
                            plugin_id: act.context.plugin_id.clone(),
                            message_id: message.message_id.clone(),
                            provider_message_id: receipt.provider_message_id,
                        });
                    }
                    Err(PluginCallError::Reported(r)) if r.kind == "unsupported" => break,
                    Err(error) => {
                        let transient = matches!(&error, PluginCallError::Reported(r) if r.kind == "unavailable");
                        self.report_failure(
                            act,
                            Category::NotificationChannel,
                            &error,
                            FailureMode::Open,
                        );
                        last = Some((act.context.plugin_id.clone(), error));
                        if !transient || attempt == 1 {
                            break;
                        }
                    }
                }
            }
        }
        match last {
            Some((plugin_id, error)) => Err(NotifyFailure::Failed { plugin_id, error }),
            None => Err(NotifyFailure::NoChannel),
        }
    }
}
