//! The broker's book of files: what was initiated, uploaded, downloaded and confirmed, per
//! recipient.
//!
//! Kept apart from the SOAP handling so that the rules (a file is uploaded once, by its
//! sender; only its recipients see and fetch it; a confirmed file leaves the `Uploaded`
//! listing) are in one place and every handler goes through them.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;
use uuid::Uuid;

use crate::soap::xs_datetime;

/// Where a file is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FileState {
    /// Initiated; its bytes have not arrived.
    Initiated,
    /// Its bytes are arriving.
    Uploading,
    /// Uploaded and available to its recipients.
    Uploaded,
}

/// A recipient of a file and what it did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientState {
    /// The recipient's organisation or person number.
    pub party_number: String,
    /// How many times it downloaded the file.
    pub downloads: u32,
    /// Whether it confirmed the download.
    pub confirmed: bool,
}

impl RecipientState {
    /// A recipient that has done nothing yet.
    pub(super) fn new(party_number: &str) -> Self {
        Self {
            party_number: party_number.to_owned(),
            downloads: 0,
            confirmed: false,
        }
    }
}

/// A file the broker holds, for assertions and the inspection listing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerFile {
    /// The file reference the broker gave it at initiation.
    pub file_reference: String,
    /// The receipt id given at upload (0 before).
    pub receipt_id: i32,
    /// The sender (the manifest's reportee).
    pub sender: String,
    /// The sender's own reference.
    pub senders_reference: String,
    /// The external service code.
    pub service_code: String,
    /// The external service edition code.
    pub service_edition: i32,
    /// The file names the manifest lists.
    pub manifest_file_names: Vec<String>,
    /// The file name given at upload.
    pub file_name: Option<String>,
    /// The recipients, in the order the initiation listed them.
    pub recipients: Vec<RecipientState>,
    /// Where the file is in its life.
    pub state: FileState,
    /// Its size in bytes, once uploaded.
    pub size: u64,
    /// The SHA-256 of its bytes, lower-case hex, once uploaded.
    pub sha256: Option<String>,
    /// When it was initiated, as an `xs:dateTime`.
    pub initiated: String,
    /// When it was uploaded, as an `xs:dateTime`.
    pub sent_date: Option<String>,
    /// When it was uploaded.
    #[serde(skip)]
    pub(super) sent_at: Option<SystemTime>,
    /// Where its bytes are; none before upload and after every recipient confirmed.
    #[serde(skip)]
    pub(super) path: Option<PathBuf>,
}

/// What an initiation asks for.
pub(super) struct Initiation {
    pub sender: String,
    pub senders_reference: String,
    pub service_code: String,
    pub service_edition: i32,
    pub file_names: Vec<String>,
    pub recipients: Vec<RecipientState>,
}

/// An upload that arrived whole.
pub(super) struct Uploaded {
    pub file_name: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// What a listing asks for.
pub(super) struct Search {
    /// Files for any of these recipients.
    pub recipients: Vec<String>,
    /// Files they confirmed (`Downloaded`) rather than not (`Uploaded`).
    pub confirmed: bool,
    /// Files of this service code and edition only.
    pub service: Option<(String, i32)>,
    /// Files sent at or after this time only.
    pub sent_after: Option<SystemTime>,
    /// Files sent at or before this time only.
    pub sent_before: Option<SystemTime>,
}

/// Every file, oldest first.
#[derive(Default)]
pub(super) struct Files {
    files: Vec<BrokerFile>,
    last_receipt: i32,
}

impl Files {
    /// Records a new file and returns its reference, unless `limit` files are already
    /// undelivered (initiated, or uploaded and not yet confirmed by every recipient).
    pub(super) fn initiate(
        &mut self,
        initiation: Initiation,
        limit: usize,
    ) -> Result<String, String> {
        let undelivered = self
            .files
            .iter()
            .filter(|f| f.state != FileState::Uploaded || f.path.is_some())
            .count();
        if undelivered >= limit {
            return Err(format!(
                "The broker service already holds its limit of {limit} undelivered files"
            ));
        }
        let reference = Uuid::new_v4().to_string();
        self.files.push(BrokerFile {
            file_reference: reference.clone(),
            receipt_id: 0,
            sender: initiation.sender,
            senders_reference: initiation.senders_reference,
            service_code: initiation.service_code,
            service_edition: initiation.service_edition,
            manifest_file_names: initiation.file_names,
            file_name: None,
            recipients: initiation.recipients,
            state: FileState::Initiated,
            size: 0,
            sha256: None,
            initiated: xs_datetime(SystemTime::now()),
            sent_date: None,
            sent_at: None,
            path: None,
        });
        Ok(reference)
    }

    fn find_mut(&mut self, reference: &str) -> Option<&mut BrokerFile> {
        let reference = Uuid::parse_str(reference.trim()).ok()?.to_string();
        self.files
            .iter_mut()
            .find(|f| f.file_reference == reference)
    }

    /// Claims the initiated file `reference` for `sender`'s upload of `file_name`.
    pub(super) fn start_upload(
        &mut self,
        reference: &str,
        sender: &str,
        file_name: &str,
    ) -> Result<(), String> {
        let file = self
            .find_mut(reference)
            .filter(|f| f.sender == sender)
            .ok_or_else(|| {
                format!("No initiated broker service {reference} for reportee {sender}")
            })?;
        if file.state != FileState::Initiated {
            return Err(format!(
                "The broker service {reference} already has its file"
            ));
        }
        if !file.manifest_file_names.is_empty()
            && !file.manifest_file_names.iter().any(|n| n == file_name)
        {
            return Err(format!(
                "The file name {file_name:?} is not in the manifest's FileList {:?}",
                file.manifest_file_names
            ));
        }
        file.state = FileState::Uploading;
        Ok(())
    }

    /// Returns a claimed file to `Initiated` after a failed upload.
    pub(super) fn abandon_upload(&mut self, reference: &str) {
        if let Some(file) = self.find_mut(reference)
            && file.state == FileState::Uploading
        {
            file.state = FileState::Initiated;
        }
    }

    /// Completes the upload of `reference` and returns its receipt id.
    pub(super) fn finish_upload(&mut self, reference: &str, upload: Uploaded) -> i32 {
        self.last_receipt += 1;
        let receipt = 100_000 + self.last_receipt;
        if let Some(file) = self.find_mut(reference) {
            file.state = FileState::Uploaded;
            file.receipt_id = receipt;
            file.file_name = Some(upload.file_name);
            file.path = Some(upload.path);
            file.size = upload.size;
            file.sha256 = Some(upload.sha256);
            let now = SystemTime::now();
            file.sent_date = Some(xs_datetime(now));
            file.sent_at = Some(now);
        }
        receipt
    }

    /// The uploaded files `search` asks for, oldest first.
    pub(super) fn available(&self, search: &Search) -> Vec<BrokerFile> {
        self.files
            .iter()
            .filter(|f| f.state == FileState::Uploaded)
            .filter(|f| {
                search.service.as_ref().is_none_or(|(code, edition)| {
                    f.service_code == *code && f.service_edition == *edition
                })
            })
            .filter(|f| {
                f.sent_at.is_some_and(|sent| {
                    search.sent_after.is_none_or(|after| sent >= after)
                        && search.sent_before.is_none_or(|before| sent <= before)
                })
            })
            .filter(|f| {
                f.recipients.iter().any(|r| {
                    search.recipients.contains(&r.party_number) && r.confirmed == search.confirmed
                })
            })
            .cloned()
            .collect()
    }

    /// Where the bytes of `reference` are, for its recipient `reportee`, counting the download.
    pub(super) fn download(
        &mut self,
        reference: &str,
        reportee: &str,
    ) -> Result<(PathBuf, u64), String> {
        let file = self
            .find_mut(reference)
            .filter(|f| f.state == FileState::Uploaded)
            .ok_or_else(|| no_file(reference, reportee))?;
        let size = file.size;
        let path = file.path.clone();
        let recipient = file
            .recipients
            .iter_mut()
            .find(|r| r.party_number == reportee)
            .ok_or_else(|| no_file(reference, reportee))?;
        let path = path
            .filter(|_| !recipient.confirmed)
            .ok_or_else(|| format!("The file {reference} was already confirmed downloaded"))?;
        recipient.downloads += 1;
        Ok((path, size))
    }

    /// Records that `reportee` confirmed `reference`; returns the bytes' path when every
    /// recipient has now confirmed, for the caller to delete. Confirming twice is harmless.
    pub(super) fn confirm(
        &mut self,
        reference: &str,
        reportee: &str,
    ) -> Result<Option<PathBuf>, String> {
        let file = self
            .find_mut(reference)
            .filter(|f| f.state == FileState::Uploaded)
            .ok_or_else(|| no_file(reference, reportee))?;
        let recipient = file
            .recipients
            .iter_mut()
            .find(|r| r.party_number == reportee)
            .ok_or_else(|| no_file(reference, reportee))?;
        recipient.confirmed = true;
        if file.recipients.iter().all(|r| r.confirmed) {
            return Ok(file.path.take());
        }
        Ok(None)
    }

    /// Every file, oldest first.
    pub(super) fn snapshot(&self) -> Vec<BrokerFile> {
        self.files.clone()
    }
}

fn no_file(reference: &str, reportee: &str) -> String {
    format!("No file {reference} is available to reportee {reportee}")
}
