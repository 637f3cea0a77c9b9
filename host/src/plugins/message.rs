//! The host's side of the values that carry blobs across the contract.
//!
//! An outgoing message's documents and an incoming message's package are blobs; in a call they
//! become handles in that call's resource table. These types hold the host's [`Blob`]s and are
//! turned into (and out of) the generated WIT values only inside the call.

use wasmtime::component::Resource;

use super::bindings::eformidling::transport::types as wit;
use super::bindings::{Party, ServiceRecord};
use super::sandbox::CallState;
use crate::blobs::Blob;

/// A document of an outgoing message.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file name.
    pub name: String,
    /// The title shown to the receiver.
    pub title: Option<String>,
    /// The media type.
    pub mime_type: String,
    /// Whether it is the main document.
    pub primary: bool,
    /// The bytes.
    pub content: Blob,
}

/// One message to hand to a channel.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    /// The message identifier.
    pub message_id: String,
    /// The conversation identifier.
    pub conversation_id: String,
    /// The sender.
    pub sender: Party,
    /// The receiver.
    pub receiver: Party,
    /// The process identifier.
    pub process: String,
    /// The document type identifier.
    pub document_type: String,
    /// The SBD, JSON.
    pub sbd: String,
    /// The documents.
    pub documents: Vec<Document>,
    /// The registry's record for the receiver.
    pub service: ServiceRecord,
    /// When the lifetime ends, ms since the epoch.
    pub expires_at: Option<u64>,
}

impl OutgoingMessage {
    pub(super) fn to_wit(&self, state: &mut CallState) -> wasmtime::Result<wit::Outgoing> {
        let documents = self
            .documents
            .iter()
            .map(|document| {
                Ok(wit::Document {
                    name: document.name.clone(),
                    title: document.title.clone(),
                    mime_type: document.mime_type.clone(),
                    primary: document.primary,
                    content: state.table.push(document.content.clone())?,
                })
            })
            .collect::<wasmtime::Result<_>>()?;
        Ok(wit::Outgoing {
            message_id: self.message_id.clone(),
            conversation_id: self.conversation_id.clone(),
            sender: self.sender.clone(),
            receiver: self.receiver.clone(),
            process: self.process.clone(),
            document_type: self.document_type.clone(),
            sbd: self.sbd.clone(),
            documents,
            service: self.service.clone(),
            expires_at: self.expires_at,
        })
    }
}

/// A message waiting at the provider.
#[derive(Debug)]
pub struct IncomingMessage {
    /// The provider's reference.
    pub reference: String,
    /// The SBD, JSON.
    pub sbd: String,
    /// The package, a temporary blob until the host persists it.
    pub package: Option<Blob>,
}

impl IncomingMessage {
    pub(super) fn from_wit(
        incoming: wit::Incoming,
        state: &mut CallState,
    ) -> wasmtime::Result<Self> {
        let package = incoming
            .package
            .map(|handle: Resource<Blob>| state.table.delete(handle))
            .transpose()?;
        Ok(Self {
            reference: incoming.reference,
            sbd: incoming.sbd,
            package,
        })
    }
}
