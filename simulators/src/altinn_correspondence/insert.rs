//! Reading an `InsertCorrespondenceV2` request into what the agency records.
//!
//! Every field the integration point sends is read and checked (required ones present, dates
//! and numbers well-formed, enumerations known, attachments valid base64), so a client that
//! builds the request wrongly is told which field is wrong, as Altinn's validation would.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::fixture::valid_orgnr;
use crate::soap::{Element, parse_xs_datetime};

/// The namespace of the `InsertCorrespondenceV2` type's fields and its content.
pub(super) const V2_NS: &str =
    "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2010/10";
/// The namespace of binary attachments.
pub(super) const ATTACHMENT_NS: &str =
    "http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2010/10";
/// The namespace of notifications.
pub(super) const NOTIFICATION_NS: &str =
    "http://schemas.altinn.no/services/ServiceEngine/Notification/2009/10";

/// The transport types a notification receiver may have.
const TRANSPORT_TYPES: [&str; 6] = [
    "SMS",
    "Email",
    "IM",
    "Both",
    "SMSPreferred",
    "EmailPreferred",
];

/// A binary attachment as received (its bytes are hashed, not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedAttachment {
    /// `FileName`.
    pub file_name: String,
    /// `Name`, the display name.
    pub name: String,
    /// `FunctionType` (`Unspecified` when not given).
    pub function_type: String,
    /// `Encrypted`.
    pub encrypted: bool,
    /// `SendersReference`.
    pub senders_reference: Option<String>,
    /// The decoded size in bytes.
    pub size: u64,
    /// The SHA-256 of the decoded bytes, lower-case hex.
    pub sha256: String,
}

/// A notification receiver: how and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverEndPoint {
    /// `TransportType`.
    pub transport_type: Option<String>,
    /// `ReceiverAddress`.
    pub receiver_address: Option<String>,
}

/// A notification as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedNotification {
    /// `NotificationType`.
    pub notification_type: Option<String>,
    /// `FromAddress`.
    pub from_address: Option<String>,
    /// `ShipmentDateTime`.
    pub shipment_date_time: Option<String>,
    /// `LanguageCode`.
    pub language_code: Option<String>,
    /// The `TokenValue`s of `TextTokens`, in `TokenNum` order.
    pub text_tokens: Vec<String>,
    /// `ReceiverEndPoints`.
    pub receivers: Vec<ReceiverEndPoint>,
}

/// What an `InsertCorrespondenceV2` asks for.
#[derive(Debug, Clone)]
pub(super) struct Insert {
    pub system_user_code: String,
    pub external_shipment_reference: String,
    pub service_code: String,
    pub service_edition: String,
    pub reportee: String,
    pub message_sender: Option<String>,
    pub language_code: Option<String>,
    pub title: String,
    pub summary: Option<String>,
    pub body: Option<String>,
    pub visible_date_time: String,
    pub due_date_time: Option<String>,
    pub allow_system_delete_date_time: Option<String>,
    pub allow_forwarding: Option<bool>,
    pub attachments: Vec<ReceivedAttachment>,
    pub notifications: Vec<ReceivedNotification>,
}

fn text(element: &Element, ns: &str, name: &str) -> Option<String> {
    element.text_of(ns, name).map(str::to_owned)
}

fn required(element: &Element, ns: &str, name: &str) -> Result<String, String> {
    element.required(ns, name).map(str::to_owned)
}

/// An optional `xs:dateTime` field, checked.
fn date(element: &Element, ns: &str, name: &str) -> Result<Option<String>, String> {
    match element.text_of(ns, name) {
        None => Ok(None),
        Some(value) if parse_xs_datetime(value).is_some() => Ok(Some(value.to_owned())),
        Some(value) => Err(format!(
            "{name} {value:?} is not an xs:dateTime with a time zone"
        )),
    }
}

/// An optional `xs:boolean` field, checked.
fn boolean(element: &Element, ns: &str, name: &str) -> Result<Option<bool>, String> {
    match element.text_of(ns, name) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(value) => Err(format!("{name} {value:?} is not an xs:boolean")),
    }
}

/// Whether `reportee` is an organisation number (with its control digit) or an eleven-digit
/// person number.
fn valid_reportee(reportee: &str) -> bool {
    valid_orgnr(reportee) || (reportee.len() == 11 && reportee.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads the request element `InsertCorrespondenceV2` (in `operation_ns`).
pub(super) fn read(request: &Element, operation_ns: &str) -> Result<Insert, String> {
    let system_user_code = required(request, operation_ns, "SystemUserCode")?;
    let external_shipment_reference = required(request, operation_ns, "ExternalShipmentReference")?;
    let correspondence = request
        .child(operation_ns, "Correspondence")
        .filter(|c| !c.is_nil())
        .ok_or("InsertCorrespondenceV2 is missing Correspondence")?;
    let reportee = required(correspondence, V2_NS, "Reportee")?;
    if !valid_reportee(&reportee) {
        return Err(format!(
            "Reportee {reportee:?} is neither an organisation number nor a person number"
        ));
    }
    let content = correspondence
        .child(V2_NS, "Content")
        .filter(|c| !c.is_nil())
        .ok_or("Correspondence is missing Content")?;
    let mut attachments = Vec::new();
    if let Some(list) = content
        .child(V2_NS, "Attachments")
        .and_then(|a| a.child(V2_NS, "BinaryAttachments"))
    {
        for attachment in list.children_named(ATTACHMENT_NS, "BinaryAttachmentV2") {
            attachments.push(read_attachment(attachment)?);
        }
    }
    let mut notifications = Vec::new();
    if let Some(list) = correspondence.child(V2_NS, "Notifications") {
        for notification in list.children_named(NOTIFICATION_NS, "Notification") {
            notifications.push(read_notification(notification)?);
        }
    }
    Ok(Insert {
        system_user_code,
        external_shipment_reference,
        service_code: required(correspondence, V2_NS, "ServiceCode")?,
        service_edition: required(correspondence, V2_NS, "ServiceEdition")?,
        reportee,
        message_sender: text(correspondence, V2_NS, "MessageSender"),
        language_code: text(content, V2_NS, "LanguageCode"),
        title: required(content, V2_NS, "MessageTitle")?,
        summary: text(content, V2_NS, "MessageSummary"),
        body: text(content, V2_NS, "MessageBody"),
        visible_date_time: date(correspondence, V2_NS, "VisibleDateTime")?
            .ok_or("Correspondence is missing VisibleDateTime")?,
        due_date_time: date(correspondence, V2_NS, "DueDateTime")?,
        allow_system_delete_date_time: date(correspondence, V2_NS, "AllowSystemDeleteDateTime")?,
        allow_forwarding: boolean(correspondence, V2_NS, "AllowForwarding")?,
        attachments,
        notifications,
    })
}

fn read_attachment(attachment: &Element) -> Result<ReceivedAttachment, String> {
    let file_name = required(attachment, ATTACHMENT_NS, "FileName")?;
    let function_type =
        text(attachment, ATTACHMENT_NS, "FunctionType").unwrap_or_else(|| "Unspecified".into());
    if !matches!(function_type.as_str(), "Unspecified" | "Invoice") {
        return Err(format!(
            "attachment {file_name:?}: FunctionType {function_type:?} is neither Unspecified nor Invoice"
        ));
    }
    let data = attachment
        .text_of(ATTACHMENT_NS, "Data")
        .ok_or_else(|| format!("attachment {file_name:?} is missing Data"))?;
    let compact: String = data.split_ascii_whitespace().collect();
    let bytes = BASE64
        .decode(compact)
        .map_err(|e| format!("attachment {file_name:?}: Data is not base64: {e}"))?;
    Ok(ReceivedAttachment {
        name: required(attachment, ATTACHMENT_NS, "Name")?,
        function_type,
        encrypted: boolean(attachment, ATTACHMENT_NS, "Encrypted")?.unwrap_or(false),
        senders_reference: text(attachment, ATTACHMENT_NS, "SendersReference"),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        file_name,
    })
}

fn read_notification(notification: &Element) -> Result<ReceivedNotification, String> {
    let ns = NOTIFICATION_NS;
    let mut tokens = Vec::new();
    if let Some(list) = notification.child(ns, "TextTokens") {
        for token in list.children_named(ns, "TextToken") {
            let number = match token.text_of(ns, "TokenNum") {
                None => tokens.len() as i64,
                Some(n) => n
                    .parse::<i64>()
                    .map_err(|_| format!("TokenNum {n:?} is not an integer"))?,
            };
            tokens.push((number, text(token, ns, "TokenValue").unwrap_or_default()));
        }
    }
    tokens.sort_by_key(|(number, _)| *number);
    let mut receivers = Vec::new();
    if let Some(list) = notification.child(ns, "ReceiverEndPoints") {
        for receiver in list.children_named(ns, "ReceiverEndPoint") {
            let transport_type = text(receiver, ns, "TransportType");
            if let Some(kind) = &transport_type
                && !TRANSPORT_TYPES.contains(&kind.as_str())
            {
                return Err(format!(
                    "TransportType {kind:?} is not one of {TRANSPORT_TYPES:?}"
                ));
            }
            receivers.push(ReceiverEndPoint {
                transport_type,
                receiver_address: text(receiver, ns, "ReceiverAddress"),
            });
        }
    }
    Ok(ReceivedNotification {
        notification_type: text(notification, ns, "NotificationType"),
        from_address: text(notification, ns, "FromAddress"),
        shipment_date_time: date(notification, ns, "ShipmentDateTime")?,
        language_code: text(notification, ns, "LanguageCode"),
        text_tokens: tokens.into_iter().map(|(_, value)| value).collect(),
        receivers,
    })
}
