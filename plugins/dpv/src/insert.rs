//! The InsertCorrespondenceV2 request: one correspondence in the receiver's Altinn inbox, with
//! the documents as binary attachments and a notification, as the v2/v3 integration point
//! builds it (reference §6.2).
//!
//! The XML is written here; each document goes into its `Data` element as a blob the host
//! base64-encodes while it streams, so the documents never enter the plugin.

use eformidling_sdk::compose::Composer;
use eformidling_sdk::secret::secret_field_placeholder;
use eformidling_sdk::types::{Failure, Outgoing};
use serde_json::Value;

use eformidling_sdk::time;
use eformidling_sdk::xml::escape;

/// The operations' namespace.
pub const CORRESPONDENCE_NS: &str =
    "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10";
/// The correspondence's fields.
const V2_NS: &str = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2010/10";
/// Binary attachments.
const ATTACHMENT_NS: &str =
    "http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2010/10";
/// Notifications.
const NOTIFICATION_NS: &str =
    "http://schemas.altinn.no/services/ServiceEngine/Notification/2009/10";

/// Norwegian bokmål, as Altinn 2 numbers languages.
const LANGUAGE: &str = "1044";
/// The sender's reference every attachment carries, as the integration point writes it.
const ATTACHMENT_REFERENCE: &str = "AttachmentReference_as123452";
/// Altinn 2 deletes nothing before this, and notifications go out this late, so the receiver
/// sees the correspondence before being told of it.
const FIVE_MINUTES: u64 = 5 * 60 * 1000;
const DAY: u64 = 24 * 60 * 60 * 1000;
/// The service code of confidential correspondence, which gets the sensitive notification.
const SENSITIVE_SERVICE_CODE: &str = "5504";

/// What the operator chose for correspondences, from the plugin's settings.
pub struct Options {
    /// Days until the due date, when the correspondence has one.
    pub days_to_reply: Option<u64>,
    /// Whether the receiver may forward it.
    pub allow_forwarding: bool,
    /// The notification text (Altinn fills `$reporterName$` and the like).
    pub notification_text: String,
    /// The notification text for confidential correspondence.
    pub sensitive_notification_text: String,
    /// Notify by e-mail.
    pub notify_email: bool,
    /// Notify by SMS.
    pub notify_sms: bool,
}

/// The title, summary and body Altinn shows: a `digital_dpv` message's own, else the main
/// document's title (or file name).
struct Texts {
    title: String,
    summary: String,
    body: String,
}

fn texts(message: &Outgoing) -> Result<Texts, Failure> {
    let sbd: Value = serde_json::from_str(&message.sbd)
        .map_err(|e| Failure::Reject(format!("the SBD is not JSON: {e}")))?;
    if let Some(dpv) = sbd.get("digital_dpv") {
        let field = |name: &str| dpv.get(name).and_then(Value::as_str).map(str::to_owned);
        let title = field("tittel")
            .ok_or_else(|| Failure::Reject("the digital_dpv message has no tittel".to_owned()))?;
        return Ok(Texts {
            summary: field("sammendrag").unwrap_or_else(|| title.clone()),
            body: field("innhold").unwrap_or_else(|| title.clone()),
            title,
        });
    }
    let primary = message
        .documents
        .iter()
        .find(|d| d.primary)
        .or(message.documents.first())
        .ok_or_else(|| Failure::Reject("the message has no documents".to_owned()))?;
    let title = primary
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| primary.name.clone());
    Ok(Texts {
        summary: title.clone(),
        body: title.clone(),
        title,
    })
}

/// The organisation number or person number Altinn knows the receiver by.
fn reportee(identifier: &str) -> &str {
    identifier.rsplit(':').next().unwrap_or(identifier)
}

/// The body of InsertCorrespondenceV2 for `message`, sent by the system whose credentials are
/// the secret `secret`, into `body`.
pub fn write<'a>(
    body: &mut Composer<'a>,
    message: &'a Outgoing,
    secret: &str,
    options: &Options,
) -> Result<(), Failure> {
    let service = &message.service;
    let missing = |what: &str| {
        Failure::Reject(format!(
            "the registry's DPV record for {} has no {what}",
            message.receiver.identifier
        ))
    };
    let code = service
        .service_code
        .as_deref()
        .ok_or_else(|| missing("service code"))?;
    let edition = service
        .service_edition
        .as_deref()
        .ok_or_else(|| missing("service edition"))?;
    let texts = texts(message)?;
    let now = time::now_millis();
    body.text(&format!(
        "<InsertCorrespondenceV2 xmlns=\"{CORRESPONDENCE_NS}\">\
         <SystemUserCode>{}</SystemUserCode>\
         <ExternalShipmentReference>{}</ExternalShipmentReference>\
         <Correspondence xmlns:c=\"{V2_NS}\" xmlns:att=\"{ATTACHMENT_NS}\" xmlns:n=\"{NOTIFICATION_NS}\">\
         <c:ServiceCode>{}</c:ServiceCode><c:ServiceEdition>{}</c:ServiceEdition>\
         <c:Reportee>{}</c:Reportee>\
         <c:Content><c:LanguageCode>{LANGUAGE}</c:LanguageCode>\
         <c:MessageTitle>{}</c:MessageTitle><c:MessageSummary>{}</c:MessageSummary>\
         <c:MessageBody>{}</c:MessageBody><c:Attachments><c:BinaryAttachments>",
        secret_field_placeholder(secret, "username"),
        escape(&message.message_id),
        escape(code),
        escape(edition),
        escape(reportee(&message.receiver.identifier)),
        escape(&texts.title),
        escape(&texts.summary),
        escape(&texts.body),
    ));
    for document in &message.documents {
        let name = document
            .title
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or(&document.name);
        body.text(&format!(
            "<att:BinaryAttachmentV2><att:FunctionType>Unspecified</att:FunctionType>\
             <att:FileName>{}</att:FileName><att:Name>{}</att:Name>\
             <att:Encrypted>false</att:Encrypted><att:Data>",
            escape(&document.name),
            escape(name),
        ))
        .base64(&document.content, 1)
        .text(&format!(
            "</att:Data><att:SendersReference>{ATTACHMENT_REFERENCE}</att:SendersReference>\
             </att:BinaryAttachmentV2>"
        ));
    }
    body.text("</c:BinaryAttachments></c:Attachments></c:Content>");
    body.text(&format!(
        "<c:VisibleDateTime>{}</c:VisibleDateTime>\
         <c:AllowSystemDeleteDateTime>{}</c:AllowSystemDeleteDateTime>",
        time::rfc3339(now),
        time::rfc3339(now + FIVE_MINUTES),
    ));
    if let Some(days) = options.days_to_reply {
        body.text(&format!(
            "<c:DueDateTime>{}</c:DueDateTime>",
            time::rfc3339(now + days * DAY)
        ));
    }
    body.text(&notifications(code, now, options));
    body.text(&format!(
        "<c:AllowForwarding>{}</c:AllowForwarding>",
        options.allow_forwarding
    ));
    if let Some(sender) = &message.sender.name {
        body.text(&format!(
            "<c:MessageSender>{}</c:MessageSender>",
            escape(sender)
        ));
    }
    body.text("</Correspondence></InsertCorrespondenceV2>");
    Ok(())
}

/// The notification: sent five minutes on, by e-mail, SMS or both as configured; none when
/// neither is.
fn notifications(service_code: &str, now: u64, options: &Options) -> String {
    let transport = match (options.notify_email, options.notify_sms) {
        (true, true) => "Both",
        (true, false) => "Email",
        (false, true) => "SMS",
        (false, false) => return String::new(),
    };
    let text = if service_code == SENSITIVE_SERVICE_CODE {
        &options.sensitive_notification_text
    } else {
        &options.notification_text
    };
    format!(
        "<c:Notifications><n:Notification>\
         <n:FromAddress>no-reply@altinn.no</n:FromAddress>\
         <n:ShipmentDateTime>{}</n:ShipmentDateTime>\
         <n:LanguageCode>{LANGUAGE}</n:LanguageCode>\
         <n:NotificationType>VarselDPVMedRevarsel</n:NotificationType>\
         <n:TextTokens><n:TextToken><n:TokenNum>0</n:TokenNum><n:TokenValue>{}</n:TokenValue></n:TextToken></n:TextTokens>\
         <n:ReceiverEndPoints><n:ReceiverEndPoint><n:TransportType>{transport}</n:TransportType></n:ReceiverEndPoint></n:ReceiverEndPoints>\
         </n:Notification></c:Notifications>",
        time::rfc3339(now + FIVE_MINUTES),
        escape(text),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(email: bool, sms: bool) -> Options {
        Options {
            days_to_reply: Some(7),
            allow_forwarding: true,
            notification_text: "Ny melding fra $reporterName$".into(),
            sensitive_notification_text: "Taushetsbelagt melding".into(),
            notify_email: email,
            notify_sms: sms,
        }
    }

    #[test]
    fn the_notification_follows_the_chosen_transports_and_sensitivity() {
        let both = notifications("4255", 0, &options(true, true));
        assert!(
            both.contains("<n:TransportType>Both</n:TransportType>"),
            "{both}"
        );
        assert!(both.contains("<n:TokenValue>Ny melding fra $reporterName$</n:TokenValue>"));
        assert!(both.contains("<n:ShipmentDateTime>1970-01-01T00:05:00.000Z</n:ShipmentDateTime>"));
        let sms = notifications(SENSITIVE_SERVICE_CODE, 0, &options(false, true));
        assert!(sms.contains("<n:TransportType>SMS</n:TransportType>"));
        assert!(sms.contains("Taushetsbelagt melding"));
        assert_eq!(notifications("4255", 0, &options(false, false)), "");
    }

    #[test]
    fn the_reportee_is_the_bare_number() {
        assert_eq!(reportee("0192:910077309"), "910077309");
        assert_eq!(reportee("05817012789"), "05817012789");
    }
}
