//! The basic endpoint: initiating a file, listing (or polling for) the files available to a
//! recipient and confirming a download, each a plain SOAP 1.1 request and response.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use super::files::{Initiation, RecipientState, Search};
use super::{
    ARRAYS_NS, BASIC_INTERFACE, BROKER_DATA_NS, BROKER_NS, BROKER_POLL_NS, BrokerState,
    QUOTA_ERROR, check_body, media_type, ok, operation, read_envelope, required, required_element,
    soap_action, test_response, unknown_file, unsupported_media_type,
};
use crate::soap::{self, Element, Envelope, Fault, SoapVersion};

pub(super) async fn handle(State(state): State<Arc<BrokerState>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let media = media_type(&headers);
    if media != "text/xml" {
        return unsupported_media_type(&media, "text/xml; charset=utf-8");
    }
    let xml = match read_envelope(request.into_body()).await {
        Ok(xml) => xml,
        Err(fault) => return fault.into_response(),
    };
    match basic_operation(&state, &soap_action(&headers), &xml) {
        Ok(response) => response,
        Err(fault) => fault.into_response(),
    }
}

fn basic_operation(state: &BrokerState, action: &str, xml: &str) -> Result<Response, Fault> {
    let operation = operation(
        action,
        BASIC_INTERFACE,
        &[
            "Test",
            "InitiateBrokerServiceBasic",
            "GetAvailableFilesBasic",
            "CheckIfAvailableFilesBasic",
            "ConfirmDownloadedBasic",
        ],
    )?;
    let envelope =
        Envelope::parse(xml, SoapVersion::V11).map_err(|e| Fault::client(SoapVersion::V11, e))?;
    check_body(&envelope, operation)?;
    let request = &envelope.body;
    match operation {
        "Test" => Ok(test_response()),
        "InitiateBrokerServiceBasic" => initiate(state, request),
        "GetAvailableFilesBasic" => available_files(state, request),
        "CheckIfAvailableFilesBasic" => check_if_available(state, request),
        _ => confirm(state, request),
    }
}

/// Whether `party` looks like an organisation number or a national identity number.
fn valid_party(party: &str) -> bool {
    matches!(party.len(), 9 | 11) && party.bytes().all(|b| b.is_ascii_digit())
}

fn initiate(state: &BrokerState, request: &Element) -> Result<Response, Fault> {
    let user = required(request, BROKER_NS, "systemUserName")?;
    let password = required(request, BROKER_NS, "systemPassword")?;
    let initiation = required_element(request, BROKER_NS, "brokerServiceInitiation")?;
    let manifest = required_element(initiation, BROKER_DATA_NS, "Manifest")?;
    let code = required(manifest, BROKER_DATA_NS, "ExternalServiceCode")?;
    let edition = required(manifest, BROKER_DATA_NS, "ExternalServiceEditionCode")?;
    let sender = required(manifest, BROKER_DATA_NS, "Reportee")?;
    let senders_reference = required(manifest, BROKER_DATA_NS, "SendersReference")?;
    let file_names: Vec<String> = manifest
        .child(BROKER_DATA_NS, "FileList")
        .map(|list| {
            list.children_named(BROKER_DATA_NS, "File")
                .map(|file| required(file, BROKER_DATA_NS, "FileName").map(str::to_owned))
                .collect::<Result<_, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let recipient_list = required_element(initiation, BROKER_DATA_NS, "RecipientList")?;
    let mut recipients = Vec::new();
    for recipient in recipient_list.children_named(BROKER_DATA_NS, "Recipient") {
        let party = required(recipient, BROKER_DATA_NS, "PartyNumber")?;
        if !valid_party(party) {
            return Err(Fault::client(
                SoapVersion::V11,
                format!("PartyNumber {party:?} is neither an organisation nor a person number"),
            ));
        }
        recipients.push(RecipientState::new(party));
    }
    if recipients.is_empty() {
        return Err(Fault::client(
            SoapVersion::V11,
            "RecipientList has no Recipient",
        ));
    }
    state.authorise(user, password, sender)?;
    state.check_service(code, edition)?;
    let initiation = Initiation {
        sender: sender.to_owned(),
        senders_reference: senders_reference.to_owned(),
        service_code: code.to_owned(),
        service_edition: state.config.service_edition,
        file_names,
        recipients,
    };
    let reference = state
        .files()
        .initiate(initiation, state.config.max_undelivered_files)
        .map_err(|e| Fault::altinn(SoapVersion::V11, QUOTA_ERROR, e))?;
    tracing::info!(%reference, %sender, "altinn broker service initiated a file");
    Ok(ok(&format!(
        "<InitiateBrokerServiceBasicResponse xmlns=\"{BROKER_NS}\">\
         <InitiateBrokerServiceBasicResult>{reference}</InitiateBrokerServiceBasicResult>\
         </InitiateBrokerServiceBasicResponse>"
    )))
}

/// The optional service code and edition filter of a search, which come together or not at all.
fn service_filter(search: &Element, ns: &str) -> Result<Option<(String, i32)>, Fault> {
    let code = search.text_of(ns, "ExternalServiceCode");
    let edition = search.text_of(ns, "ExternalServiceEditionCode");
    match (code, edition) {
        (Some(code), Some(edition)) => {
            let edition = edition.parse::<i32>().map_err(|_| {
                Fault::client(
                    SoapVersion::V11,
                    format!("ExternalServiceEditionCode {edition:?} is not an integer"),
                )
            })?;
            Ok(Some((code.to_owned(), edition)))
        }
        (None, None) => Ok(None),
        _ => Err(Fault::client(
            SoapVersion::V11,
            "ExternalServiceCode and ExternalServiceEditionCode must be given together",
        )),
    }
}

/// An optional `xs:dateTime` bound of a search.
fn time_bound(search: &Element, name: &str) -> Result<Option<SystemTime>, Fault> {
    search
        .text_of(BROKER_DATA_NS, name)
        .map(|value| {
            soap::parse_xs_datetime(value).ok_or_else(|| {
                Fault::client(
                    SoapVersion::V11,
                    format!("{name} {value:?} is not an xs:dateTime with a time zone"),
                )
            })
        })
        .transpose()
}

fn available_files(state: &BrokerState, request: &Element) -> Result<Response, Fault> {
    let user = required(request, BROKER_NS, "systemUserName")?;
    let password = required(request, BROKER_NS, "systemPassword")?;
    let search = required_element(request, BROKER_NS, "searchParameters")?;
    let status = required(search, BROKER_DATA_NS, "FileStatus")?;
    let confirmed = match status {
        "Uploaded" => false,
        "Downloaded" => true,
        other => {
            return Err(Fault::client(
                SoapVersion::V11,
                format!("FileStatus {other:?} is neither Uploaded nor Downloaded"),
            ));
        }
    };
    let reportee = required(search, BROKER_DATA_NS, "Reportee")?;
    let search = Search {
        recipients: vec![reportee.to_owned()],
        confirmed,
        service: service_filter(search, BROKER_DATA_NS)?,
        sent_after: time_bound(search, "MinSentDateTime")?,
        sent_before: time_bound(search, "MaxSentDateTime")?,
    };
    state.authorise(user, password, reportee)?;
    let listed: String = state
        .files()
        .available(&search)
        .iter()
        .map(|file| {
            format!(
                "<BrokerServiceAvailableFile xmlns=\"{BROKER_DATA_NS}\">\
                 <ExternalServiceCode>{}</ExternalServiceCode>\
                 <ExternalServiceEditionCode>{}</ExternalServiceEditionCode>\
                 <FileName>{}</FileName><FileReference>{}</FileReference>\
                 <FileSize>{}</FileSize><FileStatus>{status}</FileStatus>\
                 <IsSftpDownloadOnly>false</IsSftpDownloadOnly><ReceiptID>{}</ReceiptID>\
                 <Reportee>{}</Reportee><SendersReference>{}</SendersReference>\
                 <SentDate>{}</SentDate></BrokerServiceAvailableFile>",
                soap::escape(&file.service_code),
                file.service_edition,
                soap::escape(file.file_name.as_deref().unwrap_or_default()),
                file.file_reference,
                file.size,
                file.receipt_id,
                soap::escape(&file.sender),
                soap::escape(&file.senders_reference),
                file.sent_date.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    Ok(ok(&format!(
        "<GetAvailableFilesBasicResponse xmlns=\"{BROKER_NS}\">\
         <GetAvailableFilesBasicResult>{listed}</GetAvailableFilesBasicResult>\
         </GetAvailableFilesBasicResponse>"
    )))
}

fn check_if_available(state: &BrokerState, request: &Element) -> Result<Response, Fault> {
    let user = required(request, BROKER_NS, "systemUserName")?;
    let password = required(request, BROKER_NS, "systemPassword")?;
    let poll = required_element(request, BROKER_NS, "pollParameters")?;
    let recipients: Vec<String> = required_element(poll, BROKER_POLL_NS, "Recipients")?
        .children_named(ARRAYS_NS, "string")
        .map(|r| r.text.trim().to_owned())
        .collect();
    if recipients.is_empty() {
        return Err(Fault::client(SoapVersion::V11, "Recipients is empty"));
    }
    let search = Search {
        recipients,
        confirmed: false,
        service: service_filter(poll, BROKER_POLL_NS)?,
        sent_after: None,
        sent_before: None,
    };
    for recipient in &search.recipients {
        state.authorise(user, password, recipient)?;
    }
    let available = !state.files().available(&search).is_empty();
    Ok(ok(&format!(
        "<CheckIfAvailableFilesBasicResponse xmlns=\"{BROKER_NS}\">\
         <CheckIfAvailableFilesBasicResult>{available}</CheckIfAvailableFilesBasicResult>\
         </CheckIfAvailableFilesBasicResponse>"
    )))
}

fn confirm(state: &BrokerState, request: &Element) -> Result<Response, Fault> {
    let user = required(request, BROKER_NS, "systemUserName")?;
    let password = required(request, BROKER_NS, "systemPassword")?;
    let reference = required(request, BROKER_NS, "fileReference")?;
    let reportee = required(request, BROKER_NS, "reportee")?;
    state.authorise(user, password, reportee)?;
    let removed = state
        .files()
        .confirm(reference, reportee)
        .map_err(unknown_file)?;
    if let Some(path) = removed
        && let Err(error) = std::fs::remove_file(&path)
    {
        tracing::warn!(%error, path = %path.display(), "altinn broker service could not remove a delivered file");
    }
    tracing::info!(%reference, %reportee, "altinn broker service: download confirmed");
    Ok(ok(&format!(
        "<ConfirmDownloadedBasicResponse xmlns=\"{BROKER_NS}\"/>"
    )))
}
