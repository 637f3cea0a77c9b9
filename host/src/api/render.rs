//! The JSON of conversations and statuses, field for field as the real integration point
//! writes them (`NON_NULL`: absent values are left out).

use serde_json::{Map, Value, json};

use crate::sbd::primary_identifier;
use crate::store::{Conversation, MessageStatus};
use crate::timefmt;

fn put(object: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), json!(value));
    }
}

/// A status inside a conversation.
fn conversation_status(status: &MessageStatus) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), json!(status.id));
    object.insert(
        "lastUpdate".into(),
        json!(timefmt::format_millis(status.last_update)),
    );
    object.insert("status".into(), json!(status.status.as_str()));
    put(&mut object, "description", status.description.as_deref());
    Value::Object(object)
}

/// `Conversation`.
pub fn conversation(conversation: &Conversation) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), json!(conversation.id));
    object.insert("conversationId".into(), json!(conversation.conversation_id));
    object.insert("messageId".into(), json!(conversation.message_id));
    put(&mut object, "sender", conversation.sender.as_deref());
    put(
        &mut object,
        "senderIdentifier",
        conversation.sender_identifier.as_deref(),
    );
    put(&mut object, "receiver", conversation.receiver.as_deref());
    put(
        &mut object,
        "receiverIdentifier",
        conversation.receiver_identifier.as_deref(),
    );
    put(
        &mut object,
        "processIdentifier",
        conversation.process_identifier.as_deref(),
    );
    put(
        &mut object,
        "documentIdentifier",
        conversation.document_identifier.as_deref(),
    );
    put(
        &mut object,
        "messageReference",
        conversation.message_reference.as_deref(),
    );
    put(
        &mut object,
        "messageTitle",
        conversation.message_title.as_deref(),
    );
    object.insert(
        "lastUpdate".into(),
        json!(timefmt::format_millis(conversation.last_update)),
    );
    object.insert("finished".into(), json!(conversation.finished));
    if let Some(expiry) = conversation.expiry {
        object.insert("expiry".into(), json!(timefmt::format_millis(expiry)));
    }
    object.insert("direction".into(), json!(conversation.direction.as_str()));
    put(
        &mut object,
        "serviceIdentifier",
        conversation.service_identifier.as_deref(),
    );
    put(
        &mut object,
        "externalSystemReference",
        conversation.external_system_reference.as_deref(),
    );
    object.insert(
        "messageStatuses".into(),
        Value::Array(
            conversation
                .statuses
                .iter()
                .map(conversation_status)
                .collect(),
        ),
    );
    Value::Object(object)
}

/// `MessageStatus` of the statuses API.
pub fn status(status: &MessageStatus) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), json!(status.id));
    object.insert(
        "lastUpdate".into(),
        json!(timefmt::format_millis(status.last_update)),
    );
    object.insert("status".into(), json!(status.status.as_str()));
    put(&mut object, "description", status.description.as_deref());
    put(&mut object, "rawReceipt", status.raw_receipt.as_deref());
    object.insert("convId".into(), json!(status.conv_id));
    object.insert("conversationId".into(), json!(status.conversation_id));
    object.insert("messageId".into(), json!(status.message_id));
    Value::Object(object)
}

/// The identifiers a conversation keeps for a qualified party.
pub fn party_columns(qualified: Option<&str>) -> (Option<String>, Option<String>) {
    match qualified {
        Some(qualified) => (
            Some(qualified.to_owned()),
            Some(primary_identifier(qualified)),
        ),
        None => (None, None),
    }
}

/// A stored SBD as the API returns it.
pub fn stored_sbd(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}
