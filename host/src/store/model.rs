//! The rows the store keeps, as the rest of the host sees them.
//!
//! Times are milliseconds since the Unix epoch (UTC) everywhere below the API, which formats them
//! as the real integration point does; one integer type reads the same from both dialects.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    jiff::Timestamp::now().as_millisecond()
}

/// Which way a conversation goes, as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Direction {
    /// Sent by this organisation.
    Outgoing,
    /// Received by this organisation.
    Incoming,
}

impl Direction {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outgoing => "OUTGOING",
            Self::Incoming => "INCOMING",
        }
    }
}

impl FromStr for Direction {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_uppercase().as_str() {
            "OUTGOING" => Ok(Self::Outgoing),
            "INCOMING" => Ok(Self::Incoming),
            other => Err(format!("unknown direction {other:?}")),
        }
    }
}

/// The integration point's status vocabulary (`ReceiptStatus` of the real one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReceiptStatus {
    /// The conversation is registered.
    Opprettet,
    /// Handed to the channel.
    Sendt,
    /// The receiver's side has it.
    Mottatt,
    /// Delivered to the receiver.
    Levert,
    /// Read by the receiver.
    Lest,
    /// Failed; the description says why.
    Feil,
    /// Any other provider status.
    Annet,
    /// An incoming message is stored here.
    InnkommendeMottatt,
    /// An incoming message was taken by the archive system.
    InnkommendeLevert,
    /// The message's lifetime ran out.
    LevetidUtlopt,
}

impl ReceiptStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 10] = [
        Self::Opprettet,
        Self::Sendt,
        Self::Mottatt,
        Self::Levert,
        Self::Lest,
        Self::Feil,
        Self::Annet,
        Self::InnkommendeMottatt,
        Self::InnkommendeLevert,
        Self::LevetidUtlopt,
    ];

    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opprettet => "OPPRETTET",
            Self::Sendt => "SENDT",
            Self::Mottatt => "MOTTATT",
            Self::Levert => "LEVERT",
            Self::Lest => "LEST",
            Self::Feil => "FEIL",
            Self::Annet => "ANNET",
            Self::InnkommendeMottatt => "INNKOMMENDE_MOTTATT",
            Self::InnkommendeLevert => "INNKOMMENDE_LEVERT",
            Self::LevetidUtlopt => "LEVETID_UTLOPT",
        }
    }

    /// Whether the conversation is over once this status is registered.
    pub fn finishes(self) -> bool {
        matches!(
            self,
            Self::Levert | Self::Lest | Self::Feil | Self::LevetidUtlopt | Self::InnkommendeLevert
        )
    }

    /// Whether status polling stops for good with this status.
    pub fn ends_polling(self) -> bool {
        matches!(
            self,
            Self::Lest | Self::Feil | Self::LevetidUtlopt | Self::InnkommendeLevert
        )
    }
}

impl fmt::Display for ReceiptStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReceiptStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("unknown status {text:?}"))
    }
}

/// A conversation: one message's life as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    /// The row's id.
    pub id: i64,
    /// The conversation identifier (a UUID).
    pub conversation_id: String,
    /// The message identifier (a UUID).
    pub message_id: String,
    /// Which way it goes.
    pub direction: Direction,
    /// The sender, qualified (`0192:…`).
    pub sender: Option<String>,
    /// The sender's organisation number or part identifier.
    pub sender_identifier: Option<String>,
    /// The receiver, qualified.
    pub receiver: Option<String>,
    /// The receiver's primary identifier.
    pub receiver_identifier: Option<String>,
    /// The process.
    pub process_identifier: Option<String>,
    /// The document type (standard).
    pub document_identifier: Option<String>,
    /// The archive's reference (`saksmappe.systemID-journalpostnummer`).
    pub message_reference: Option<String>,
    /// The title (journalpost `offentligTittel`).
    pub message_title: Option<String>,
    /// The channel's service identifier (`DPO`, …).
    pub service_identifier: Option<String>,
    /// The plugin that carries it.
    pub channel: Option<String>,
    /// The provider's reference once sent.
    pub external_system_reference: Option<String>,
    /// When its lifetime ends.
    pub expiry: Option<Millis>,
    /// The last change.
    pub last_update: Millis,
    /// Whether nothing more is expected.
    pub finished: bool,
    /// Whether its statuses are polled.
    pub pollable: bool,
    /// Its statuses, oldest first.
    pub statuses: Vec<MessageStatus>,
}

/// What a new conversation starts with.
#[derive(Clone, Debug, Default)]
pub struct NewConversation {
    /// The conversation identifier.
    pub conversation_id: String,
    /// The message identifier.
    pub message_id: String,
    /// The sender, qualified.
    pub sender: Option<String>,
    /// The sender's identifier.
    pub sender_identifier: Option<String>,
    /// The receiver, qualified.
    pub receiver: Option<String>,
    /// The receiver's identifier.
    pub receiver_identifier: Option<String>,
    /// The process.
    pub process_identifier: Option<String>,
    /// The document type.
    pub document_identifier: Option<String>,
    /// The channel's service identifier.
    pub service_identifier: Option<String>,
    /// The plugin that carries it.
    pub channel: Option<String>,
    /// When its lifetime ends.
    pub expiry: Option<Millis>,
}

/// One registered status.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageStatus {
    /// The row's id.
    pub id: i64,
    /// The conversation row it belongs to.
    pub conv_id: i64,
    /// The status.
    pub status: ReceiptStatus,
    /// Why, in words.
    pub description: Option<String>,
    /// The provider's receipt, when one came.
    pub raw_receipt: Option<String>,
    /// When it was registered.
    pub last_update: Millis,
    /// The conversation identifier.
    pub conversation_id: String,
    /// The message identifier.
    pub message_id: String,
    /// The conversation's direction.
    pub direction: Direction,
    /// The conversation's channel service identifier.
    pub service_identifier: Option<String>,
}

/// A status to register.
#[derive(Clone, Debug)]
pub struct StatusUpdate {
    /// The status.
    pub status: ReceiptStatus,
    /// Why, in words.
    pub description: Option<String>,
    /// The provider's receipt.
    pub raw_receipt: Option<String>,
    /// When it happened; now when not given.
    pub at: Option<Millis>,
}

impl StatusUpdate {
    /// A status with nothing else said.
    pub fn new(status: ReceiptStatus) -> Self {
        Self {
            status,
            description: None,
            raw_receipt: None,
            at: None,
        }
    }

    /// The same status with a description.
    pub fn described(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// A whole outgoing message to store at once, queued for sending.
#[derive(Clone, Debug)]
pub struct QueuedMessage {
    /// The message.
    pub message: OutMessage,
    /// Its conversation.
    pub conversation: NewConversation,
    /// Its files, in order.
    pub files: Vec<MessageFile>,
    /// The arkivmelding's archive reference.
    pub reference: Option<String>,
    /// The arkivmelding's title.
    pub title: Option<String>,
}

/// A send the provider accepted, to record.
#[derive(Clone, Debug)]
pub struct CompletedSend {
    /// The message sent.
    pub message_id: String,
    /// The provider's reference.
    pub reference: String,
    /// Statuses the provider implied beyond SENDT, in order.
    pub statuses: Vec<StatusUpdate>,
    /// The channel polls the message's statuses from now on.
    pub polls_statuses: bool,
    /// Its statuses go on the status queue.
    pub queue: bool,
}

/// An outgoing message before it is sent.
#[derive(Clone, Debug, PartialEq)]
pub struct OutMessage {
    /// The message identifier.
    pub message_id: String,
    /// The conversation identifier.
    pub conversation_id: String,
    /// The process.
    pub process_identifier: String,
    /// The document type (standard).
    pub document_type: String,
    /// The sender, qualified.
    pub sender_identifier: String,
    /// The receiver, qualified.
    pub receiver_identifier: Option<String>,
    /// The channel's service identifier.
    pub service_identifier: String,
    /// The plugin that carries it.
    pub channel: String,
    /// The SBD, JSON.
    pub sbd: String,
    /// The registry's record for the receiver, JSON.
    pub service_record: String,
    /// When its lifetime ends.
    pub expiry: Option<Millis>,
    /// Whether it has been handed to the outbox.
    pub queued: bool,
    /// When it was created.
    pub created: Millis,
}

/// A file of an outgoing message.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageFile {
    /// The message it belongs to.
    pub message_id: String,
    /// Its place in upload order.
    pub ordinal: i64,
    /// The file name.
    pub filename: String,
    /// The title.
    pub title: Option<String>,
    /// The media type.
    pub mime_type: String,
    /// Whether it is the main document.
    pub primary_document: bool,
    /// Its size in bytes.
    pub size: i64,
    /// Where its bytes are.
    pub content: FileContent,
}

/// Where an outgoing file's bytes are.
#[derive(Clone, PartialEq)]
pub enum FileContent {
    /// In a blob of the blob store, by its identity.
    Blob(String),
    /// In the file's row, sealed by the blob store: a small file (`blobs::INLINE_FILE`).
    Inline(Vec<u8>),
}

impl std::fmt::Debug for FileContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Blob(id) => f.debug_tuple("Blob").field(id).finish(),
            Self::Inline(sealed) => write!(f, "Inline({} sealed bytes)", sealed.len()),
        }
    }
}

/// An outbox entry claimed for sending.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    /// The message to send.
    pub message_id: String,
    /// The plugin that sends it.
    pub channel: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// When it entered the outbox.
    pub created: Millis,
}

/// A received message waiting for the archive system.
#[derive(Clone, Debug, PartialEq)]
pub struct InMessage {
    /// The message identifier.
    pub message_id: String,
    /// The conversation identifier.
    pub conversation_id: String,
    /// The process.
    pub process_identifier: Option<String>,
    /// The document type.
    pub document_type: Option<String>,
    /// The sender, qualified.
    pub sender_identifier: Option<String>,
    /// The receiver, qualified.
    pub receiver_identifier: Option<String>,
    /// The channel's service identifier.
    pub service_identifier: String,
    /// The plugin it came by.
    pub channel: String,
    /// The SBD, JSON.
    pub sbd: String,
    /// The package as it arrived, if the message has one.
    pub package_blob: Option<String>,
    /// Locked by a peek until then.
    pub lock_until: Option<Millis>,
    /// The last change.
    pub last_updated: Millis,
}

/// A webhook subscription (`Subscription` of the real API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// The id.
    #[serde(default)]
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Where events go.
    pub push_endpoint: String,
    /// `all` or `messages`.
    pub resource: String,
    /// `all` or `status`.
    pub event: String,
    /// `key=value[,value…]` parts joined by `&`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// A webhook event due for delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEvent {
    /// The event's id; events of one subscription go out in id order.
    pub id: i64,
    /// The subscription.
    pub subscription_id: i64,
    /// Where it goes.
    pub push_endpoint: String,
    /// The JSON body.
    pub payload: String,
    /// Attempts made.
    pub attempts: i64,
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many match in all.
    pub total: i64,
}
